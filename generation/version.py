"""Imagine's version, as pyproject.toml gives it (tests/test_operations.py keeps the two equal)."""

from typing import Final

VERSION: Final = "0.1.0"
