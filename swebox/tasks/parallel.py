"""Parallel conversion of a task file: workers convert and encode, the parent reads and writes.

Converting is CPU-bound per row (parse, validate, encode), so rows are cut into chunks that
worker processes turn into encoded output (JSONL lines or an Arrow table) with the writer's own
`encode`. The parent only reads raw rows, checks instance ids for duplicates, and appends the
chunks in their original order through the writer's sink. At most two chunks per worker are in
flight, so memory stays flat however big the file. The output is identical to a serial run.
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from swebox.errors import BadInput
from swebox.tasks.io import JSONL_SUFFIXES, Reject, Row, atomic_path, iter_rows, loads
from swebox.tasks.model import Task
from swebox.tasks.readers import READERS, ReadOptions, convert_row, detect_format
from swebox.tasks.writers import WRITERS, WriteOptions

log = logging.getLogger("swebox.tasks")
# (where, raw JSON bytes) for JSONL sources; (where, parsed row) or a Reject for the others.
Payload = list[tuple[str, bytes | dict[str, Any]] | Reject]


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


@dataclass
class Job:
    fmt_in: str
    fmt_out: str
    target: str
    read_opts: str  # JSON: pydantic models cross the process boundary as text
    write_opts: str
    rows: Payload


@dataclass
class Done:
    ids: list[tuple[str, str]]  # (instance_id, where) of each encoded task, in order
    rejects: list[Reject]
    chunk: Any
    warnings: list[str]


@functools.lru_cache(maxsize=4)
def _options(read_json: str, write_json: str) -> tuple[ReadOptions, WriteOptions]:
    return ReadOptions.model_validate_json(read_json), WriteOptions.model_validate_json(write_json)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _work(job: Job) -> Done:
    """Runs in a worker: rows -> tasks (or rejects) -> one encoded chunk."""
    ropts, wopts = _options(job.read_opts, job.write_opts)
    reader = READERS[job.fmt_in]
    chunks = WRITERS[job.fmt_out].chunks(Path(job.target))
    assert chunks is not None
    collect = _Collect()
    # Warnings go back to the parent, which reports them once, in order.
    log.handlers, log.propagate = [collect], False
    tasks: list[Task] = []
    ids: list[tuple[str, str]] = []
    rejects: list[Reject] = []
    for item in job.rows:
        if isinstance(item, Reject):
            rejects.append(item)
            continue
        where, raw = item
        if isinstance(raw, bytes):
            try:
                data = loads(raw)
            except ValueError as e:
                rejects.append(Reject(where, f"not valid JSON: {e}", raw[:2000].decode(
                    "utf-8", errors="replace")))
                continue
            if not isinstance(data, dict):
                rejects.append(Reject(where, "a row must be a JSON object, got "
                                      f"{type(data).__name__}"))
                continue
            raw = data
        out = convert_row(reader, Row(raw, where), ropts)
        if isinstance(out, Reject):
            rejects.append(out)
        else:
            tasks.append(out)
            ids.append((out.instance_id, where))
    return Done(ids, rejects, _pack(chunks.encode(tasks, wopts)) if tasks else None,
                collect.messages)


def _pack(chunk: Any) -> Any:
    """Arrow tables travel back as LZ4-compressed IPC: an encoded chunk repeats the statement
    and patches in several columns, and pickling it raw costs more than the work saved."""
    if type(chunk).__module__.startswith("pyarrow"):
        import pyarrow as pa

        sink = pa.BufferOutputStream()
        options = pa.ipc.IpcWriteOptions(compression="lz4")
        with pa.ipc.new_stream(sink, chunk.schema, options=options) as writer:
            writer.write_table(chunk)
        return ("arrow-ipc", sink.getvalue().to_pybytes())
    return chunk


def _unpack(chunk: Any) -> Any:
    if isinstance(chunk, tuple) and chunk and chunk[0] == "arrow-ipc":
        import pyarrow as pa

        return pa.ipc.open_stream(chunk[1]).read_all()
    return chunk


def _jsonl_chunks(path: Path, size: int) -> Iterator[Payload]:
    name = str(path)
    batch: Payload = []
    with open(path, "rb") as f:
        for n, line in enumerate(f, 1):
            if line.isspace():
                continue
            batch.append((f"{name}:{n}", line))
            if len(batch) >= size:
                yield batch
                batch = []
    if batch:
        yield batch


def _row_chunks(path: Path, size: int) -> Iterator[Payload]:
    batch: Payload = []
    for item in iter_rows(path):
        batch.append(item if isinstance(item, Reject) else (item.where, item.data))
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _detect(path: Path, fmt: str | None) -> str:
    if fmt is not None:
        if fmt not in READERS:
            raise BadInput(f"unknown format {fmt!r}", hint=f"use one of {', '.join(READERS)}")
        return fmt
    if path.suffix.lower() in (".csv", ".tsv"):
        return "csv"
    for item in iter_rows(path):
        if isinstance(item, Row):
            name = detect_format(item.data)
            if name is None:
                keys = ", ".join(sorted(item.data)[:12])
                raise BadInput(f"{item.where}: cannot tell the format of {path} from its "
                               f"fields ({keys})",
                               hint=f"force one with --from ({'|'.join(READERS)})")
            return name
    return "swebox"  # no parseable row at all: every row will be rejected anyway


def convert_parallel(src: Path, output: Path, to: str, rejects_out: IO[str], *,
                     fmt: str | None = None, read_opts: ReadOptions | None = None,
                     write_opts: WriteOptions | None = None, workers: int | None = None
                     ) -> tuple[int, int, list[str]]:
    """Convert `src` into `output`; returns (written, rejected, first few reject lines)."""
    read_opts = read_opts or ReadOptions()
    write_opts = write_opts or WriteOptions()
    chunks = WRITERS[to].chunks(output)
    if chunks is None:
        raise BadInput(f"format {to} for {output.name} is written by one stream, not chunks")
    fmt_in = _detect(src, fmt)
    size = max(64, min(write_opts.batch_rows, 2048))
    jsonl = src.name.lower().endswith(JSONL_SUFFIXES)
    payloads = _jsonl_chunks(src, size) if jsonl else _row_chunks(src, size)
    read_json, write_json = read_opts.model_dump_json(), write_opts.model_dump_json()
    n = workers or default_workers()
    seen: dict[str, str] = {}
    written = rejected = 0
    first: list[str] = []

    def reject(r: Reject) -> None:
        nonlocal rejected
        rejected += 1
        if len(first) < 5:
            first.append(f"{r.where}: {r.reason}")
        rejects_out.write(r.to_json() + "\n")

    # fork: workers start at once with everything imported (no re-import of pyarrow).
    context = multiprocessing.get_context("fork")
    with atomic_path(output) as tmp, ProcessPoolExecutor(n, mp_context=context) as pool:
        sink = chunks.open(tmp, write_opts)
        try:
            pending: deque[Future[Done]] = deque()

            def drain_one() -> None:
                nonlocal written
                done = pending.popleft().result()
                for message in done.warnings:
                    log.warning(message)
                for r in done.rejects:
                    reject(r)
                keep = []
                for iid, where in done.ids:
                    first_at = seen.setdefault(iid, where)
                    keep.append(first_at == where)
                    if first_at != where:
                        reject(Reject(where, f"duplicate instance_id {iid!r} (first at "
                                      f"{first_at}; that one was kept)"))
                if done.chunk is not None:
                    written += sink.write(_unpack(done.chunk), None if all(keep) else keep,
                                          written)

            for rows in payloads:
                pending.append(pool.submit(_work, Job(fmt_in, to, str(output), read_json,
                                                      write_json, rows)))
                if len(pending) >= 2 * n:
                    drain_one()
            while pending:
                drain_one()
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        finally:
            sink.close()
    return written, rejected, first
