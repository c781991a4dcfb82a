"""Imagine's database: the only package with SQL. Imports nothing from Discord or the rest of Imagine."""
