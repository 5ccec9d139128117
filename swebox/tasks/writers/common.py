"""What writers share: options and the JSONL writer loop."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from swebox.tasks.io import atomic_text, dumps
from swebox.tasks.model import Task


class WriteOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    split: str = "train"
    data_source: str | None = None  # default: per writer, from the task's source format
    env_class: str = "null"  # SkyRL's env_class column
    max_steps: int = 6  # Graph Planner's max_steps
    sandbox_backend: str = "repoenv"  # Graph Planner's sandbox.backend
    batch_rows: int = 4096  # parquet row-group size


def write_jsonl(tasks: Iterable[Task], path: Path, row: Callable[[Task], dict[str, Any]]) -> int:
    count = 0
    with atomic_text(path) as f:
        for task in tasks:
            f.write(dumps(row(task)))
            f.write("\n")
            count += 1
    return count
