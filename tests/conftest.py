"""Shared fixtures for kubedrill's own tests."""

pytest_plugins = ["pytester"]
