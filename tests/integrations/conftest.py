"""The agent tests' fixtures: sample task images and the scripted model server."""

from tests.agents.conftest import model_server, sample_tasks  # noqa: F401
