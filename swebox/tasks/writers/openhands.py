"""Placeholder: being written."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from swebox.tasks.model import Task
from swebox.tasks.writers.common import WriteOptions

NAME = "openhands"
DESCRIPTION = "openhands"


def write(tasks: Iterable[Task], path: Path, opts: WriteOptions) -> int:
    raise NotImplementedError
