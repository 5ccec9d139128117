"""What writers share: options, the chunk protocol (encode / sink) and the JSONL form of it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from itertools import islice
from pathlib import Path
from typing import IO, Any, Protocol

from pydantic import BaseModel, ConfigDict

from swebox.tasks.io import atomic_path, dumps
from swebox.tasks.model import Task


class WriteOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    split: str = "train"
    data_source: str | None = None  # default: per writer, from the task's source format
    env_class: str = "null"  # SkyRL's env_class column
    max_steps: int = 6  # Graph Planner's max_steps
    sandbox_backend: str = "repoenv"  # Graph Planner's sandbox.backend
    batch_rows: int = 2048  # rows per chunk (and parquet row group)


class Sink(Protocol):
    """Appends encoded chunks to an output, in order."""

    def write(self, chunk: Any, keep: list[bool] | None, start: int) -> int:
        """Write the rows of `chunk` whose `keep` flag is set (all when None), numbering them
        from `start`; returns how many were written."""

    def close(self) -> None: ...


class Chunks(Protocol):
    """A writer split in two: `encode` turns a batch of tasks into a picklable chunk (pure, so
    it can run in a worker process), and `open` gives the sink that appends chunks in order.
    Serial writes and parallel conversions share both halves."""

    def encode(self, tasks: list[Task], opts: WriteOptions) -> Any: ...

    def open(self, tmp: Path, opts: WriteOptions) -> Sink: ...


def write_chunked(chunks: Chunks, tasks: Iterable[Task], path: Path, opts: WriteOptions) -> int:
    """Encode and write `tasks` batch by batch into a temp file renamed onto `path`."""
    count = 0
    size = max(1, opts.batch_rows)
    it = iter(tasks)
    with atomic_path(path) as tmp:
        sink = chunks.open(tmp, opts)
        try:
            while batch := list(islice(it, size)):
                count += sink.write(chunks.encode(batch, opts), None, count)
        finally:
            sink.close()
    return count


class JsonlChunks:
    """JSONL: a chunk is the encoded lines."""

    def __init__(self, row: Callable[[Task], dict[str, Any]]) -> None:
        self.row = row

    def encode(self, tasks: list[Task], opts: WriteOptions) -> list[str]:
        return [dumps(self.row(t)) for t in tasks]

    def open(self, tmp: Path, opts: WriteOptions) -> Sink:
        return _JsonlSink(open(tmp, "w", encoding="utf-8", newline="\n"))


class _JsonlSink:
    def __init__(self, f: IO[str]) -> None:
        self.f = f

    def write(self, chunk: list[str], keep: list[bool] | None, start: int) -> int:
        lines = chunk if keep is None else [ln for ln, k in zip(chunk, keep, strict=True) if k]
        if lines:
            self.f.write("\n".join(lines) + "\n")
        return len(lines)

    def close(self) -> None:
        self.f.close()


def write_jsonl(tasks: Iterable[Task], path: Path, row: Callable[[Task], dict[str, Any]]) -> int:
    return write_chunked(JsonlChunks(row), tasks, path, WriteOptions())
