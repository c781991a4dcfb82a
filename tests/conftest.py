"""Shared pytest configuration: the loopback fakes are plugins, so their fixtures reach every test directory."""

pytest_plugins = ["tests.fakes.toapis"]
