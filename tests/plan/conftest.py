"""Fixtures of the plan tests: colorize's untrained tiny generator."""

from tests.colorize.conftest import tiny_model  # noqa: F401  (a fixture, shared with the colorize tests)
