"""Fixtures shared by the grading tests that run on a real engine."""

from __future__ import annotations

import pytest

from swebox.samples import load_tasks
from swebox.samples.builder import build
from swebox.tasks.model import Task


@pytest.fixture(scope="module")
def docker_engine() -> None:
    from tests.conftest import _require

    _require("docker")


@pytest.fixture(scope="module")
def task(docker_engine: None) -> Task:
    """The ini_loader sample task, its image built if missing."""
    sample = load_tasks(["ini_loader"])[0]
    build(sample)
    return sample.to_task()
