"""swebox JSONL: the stable form of the Task model, one task a line (round-trips exactly)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from swebox.tasks.model import Task
from swebox.tasks.writers.common import JsonlChunks, WriteOptions, write_chunked

NAME = "swebox"
DESCRIPTION = "swebox JSONL (every field, round-trips)"


CHUNKS = JsonlChunks(Task.to_json_dict)


def chunks(path: Path) -> JsonlChunks:
    return CHUNKS


def write(tasks: Iterable[Task], path: Path, opts: WriteOptions) -> int:
    return write_chunked(CHUNKS, tasks, path, opts)
