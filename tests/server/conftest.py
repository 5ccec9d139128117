"""Fixtures the server tests share with the agents' tests (the sample tasks, images built)."""

from tests.agents.conftest import sample_tasks  # noqa: F401  (a fixture, used by name)
