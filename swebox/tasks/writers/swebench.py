"""SWE-bench JSONL (or a JSON array for `.json` targets), the dataset form the harness reads.

Each row has the 12 `SWEbenchInstance` fields in the HF dataset's order, then every other key
the task kept in `extra`, so a SWE-bench row read and written back is the same object. A
`.json` target gets one JSON array, for harness versions that `json.load` the dataset file
whole; any other suffix gets one row a line.

The SWE-bench row is also the shape other trainers embed (SkyRL's `instance`, rLLM's
`extra_info`), so `swebench_row` and the small text helpers here are shared with them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic_core import to_jsonable_python

from swebox.tasks.io import atomic_text, dumps
from swebox.tasks.model import Task
from swebox.tasks.writers.common import JsonlChunks, WriteOptions, write_chunked

NAME = "swebench"
DESCRIPTION = "SWE-bench dataset rows for the harness (.jsonl lines, or a .json array)"

FIELDS = ("repo", "instance_id", "base_commit", "patch", "test_patch", "problem_statement",
          "hints_text", "created_at", "version", "FAIL_TO_PASS", "PASS_TO_PASS",
          "environment_setup_commit")


def encode_tests(tests: list[str], exact: bool = True) -> str:
    """A test list as a JSON string. `exact`: as the HF dataset encodes it, `json.dumps(list)`
    with default separators and ASCII escapes, so a re-encoded list is byte-identical to the
    published string; otherwise the fast compact encoding (for consumers that parse it)."""
    return json.dumps(tests) if exact else dumps(tests)


def extra_text(task: Task, key: str, default: str = "") -> str:
    """`extra[key]` as a string column value; non-strings are JSON-encoded, never guessed at."""
    value = task.extra.get(key)
    if value is None:
        return default
    return value if isinstance(value, str) else dumps(to_jsonable_python(value))


def swebench_row(task: Task, exact: bool = True) -> dict[str, str]:
    """The 12 SWE-bench fields, all strings, as `make_test_spec` and the HF loaders expect
    (`exact`: test lists encoded byte-for-byte as on the hub; see `encode_tests`)."""
    return {
        "repo": task.repo,
        "instance_id": task.instance_id,
        "base_commit": task.base_commit,
        "patch": task.gold_patch,
        "test_patch": task.test_patch,
        "problem_statement": task.problem_statement,
        "hints_text": extra_text(task, "hints_text"),
        "created_at": task.created_at or "",
        "version": task.version or "",
        "FAIL_TO_PASS": encode_tests(task.fail_to_pass, exact),
        "PASS_TO_PASS": encode_tests(task.pass_to_pass, exact),
        # SWE-Gym rows have none; the harness builds the env at this commit, and the base
        # commit is the closest stand-in.
        "environment_setup_commit": extra_text(task, "environment_setup_commit",
                                               task.base_commit),
    }


def _row(task: Task) -> dict[str, Any]:
    row: dict[str, Any] = dict(swebench_row(task))
    for key, value in task.extra.items():
        if key not in row:  # the 12 fields come from the model, never from a stale copy
            row[key] = to_jsonable_python(value)
    return row


def _write_array(tasks: Iterable[Task], path: Path) -> int:
    # Streamed by hand: one element a line, so memory stays flat and the file is still one
    # JSON array for loaders that `json.load` it whole.
    count = 0
    with atomic_text(path) as f:
        f.write("[")
        for task in tasks:
            f.write(",\n" if count else "\n")
            f.write(dumps(_row(task)))
            count += 1
        f.write("\n]\n" if count else "]\n")
    return count


_JSONL = JsonlChunks(_row)


def chunks(path: Path) -> JsonlChunks | None:
    """Chunked (and parallel) for JSONL; a `.json` array is written by one stream."""
    return None if path.suffix.lower() == ".json" else _JSONL


def write(tasks: Iterable[Task], path: Path, opts: WriteOptions) -> int:
    if path.suffix.lower() == ".json":
        return _write_array(tasks, path)
    return write_chunked(_JSONL, tasks, path, opts)
