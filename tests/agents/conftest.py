"""Fixtures of the agent tests: the sample tasks' images and the scripted model server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from swebox.tasks.model import Task
from tests.agents.modelserver import ScriptedServer, sample_scripts


@pytest.fixture(scope="session")
def sample_tasks() -> dict[str, Task]:
    """Every sample task by short name, images built if missing (needs docker)."""
    from swebox.samples import load_tasks
    from swebox.samples.builder import build
    from tests.conftest import _require

    _require("docker")
    out = {}
    for s in load_tasks():
        build(s)
        out[s.name] = s.to_task()
    return out


@pytest.fixture(scope="session")
def model_server() -> Iterator[ScriptedServer]:
    server = ScriptedServer(sample_scripts()).start()
    yield server
    server.stop()
