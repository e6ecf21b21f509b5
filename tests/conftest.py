"""Shared pytest configuration."""

from tests.ircd.fixtures import *  # noqa: F403  (IRC server fixtures and their hooks)
