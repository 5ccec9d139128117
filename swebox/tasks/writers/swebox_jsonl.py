"""swebox JSONL: the stable form of the Task model, one task a line (round-trips exactly)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from swebox.tasks.model import Task
from swebox.tasks.writers.common import WriteOptions, write_jsonl

NAME = "swebox"
DESCRIPTION = "swebox JSONL (every field, round-trips)"


def write(tasks: Iterable[Task], path: Path, opts: WriteOptions) -> int:
    return write_jsonl(tasks, path, Task.to_json_dict)
