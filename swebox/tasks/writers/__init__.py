"""Writers: one file per export format, each a `write(tasks, path, opts) -> count`.

Writers stream: they take an iterator of tasks and write as they go (JSONL line by line,
parquet in row batches), into a temporary file that replaces the target only at the end. A
writer that needs side files (Graph Planner's r2e_ds_json per task) writes them into a
directory beside the target, also replaced only at the end.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from swebox.errors import BadInput
from swebox.tasks.model import Task
from swebox.tasks.writers import graphplanner, openhands, rllm, skyrl, swebench, swebox_jsonl
from swebox.tasks.writers.common import Chunks, WriteOptions

WriteFn = Callable[[Iterable[Task], Path, WriteOptions], int]


@dataclass(frozen=True)
class Writer:
    name: str
    write: WriteFn
    description: str
    # The encode/sink halves for a given target (None: this target is written by one stream).
    chunks: Callable[[Path], Chunks | None]


WRITERS: dict[str, Writer] = {
    m.NAME: Writer(m.NAME, m.write, m.DESCRIPTION, m.chunks)
    for m in (swebox_jsonl, openhands, rllm, skyrl, graphplanner, swebench)
}


def write_tasks(tasks: Iterable[Task], path: str | Path, fmt: str,
                opts: WriteOptions | None = None) -> int:
    """Write `tasks` to `path` in `fmt`; returns how many were written."""
    if fmt not in WRITERS:
        raise BadInput(f"unknown output format {fmt!r}", hint=f"use one of {', '.join(WRITERS)}")
    return WRITERS[fmt].write(tasks, Path(path), opts or WriteOptions())


__all__ = ["WRITERS", "WriteOptions", "write_tasks"]
