"""Graph Planner JSONL (seed 004) with one R2E-Gym `ds` file per task.

A line: {"task_id", "max_steps", "issue", "sandbox": {"backend", "docker_image", "workdir",
"mounts", "env", "r2e_ds_json"}}. max_steps, backend, mounts and env come from the task when
it was read from Graph Planner, else from the options / empty.

`r2e_ds_json` names a file in `<output stem>_r2e_ds/` beside the output, relative to the
output's directory. RepoEnv hands that file's object to R2E-Gym's runtime as `ds`: it holds
docker_image, repo_name, commit_hash, problem_statement, expected_output_json (a JSON string,
left out when the task has no map so the runtime reads the copy inside the image), and, for
R2E sources, every R2E field the task kept in `extra` (parsed_commit_content, which the
runtime requires, execution_result_content, modified_files, ...).

The directory is built under a temporary name and swapped in just before the JSONL is renamed
into place, so a failed run leaves both the old JSONL and the old directory as they were.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from pydantic_core import to_jsonable_python

from swebox.tasks.io import atomic_text, dumps
from swebox.tasks.model import Task
from swebox.tasks.writers.common import WriteOptions

NAME = "graphplanner"
DESCRIPTION = "Graph Planner JSONL plus an R2E-Gym ds file per task"

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_STEM = 120  # room for the hash and suffix under the usual 255-byte name limit


def side_dir(path: Path) -> Path:
    """Where the ds files of an output go: `out.jsonl` -> `out_r2e_ds/`."""
    return path.with_name(f"{path.stem}_r2e_ds")


def _file_name(instance_id: str, used: set[str]) -> str:
    """A file name for the id that cannot leave the directory ('/', '..', NUL are replaced).

    A changed or shortened id gets a hash of the original, so ids that sanitize alike ("a/b",
    "a_b") still get different files. `used` is compared case-folded because macOS and
    Windows file systems treat "A" and "a" as one file; a clash gets a counter.
    """
    stem = _UNSAFE.sub("_", instance_id).lstrip(".")[:_MAX_STEM]
    if stem != instance_id:
        stem = f"{stem or 'task'}-{hashlib.sha256(instance_id.encode()).hexdigest()[:12]}"
    name, n = f"{stem}.json", 1
    while name.casefold() in used:
        n += 1
        name = f"{stem}-{n}.json"
    used.add(name.casefold())
    return name


def _ds(task: Task) -> dict[str, Any]:
    ds: dict[str, Any] = {
        "docker_image": task.run_image or "",
        "repo_name": task.repo_name,
        "commit_hash": task.base_commit,
        "problem_statement": task.problem_statement,
    }
    if task.expected_output is not None:
        ds["expected_output_json"] = json.dumps(task.expected_output)
    if task.source_format == "r2e":
        for key, value in task.extra.items():
            ds.setdefault(key, to_jsonable_python(value))
    return ds


def _line(task: Task, ds_json: str, opts: WriteOptions) -> dict[str, Any]:
    original = task.extra.get("sandbox") if task.source_format == "graphplanner" else None
    sandbox = original if isinstance(original, dict) else {}
    max_steps = task.extra.get("max_steps") if task.source_format == "graphplanner" else None
    return {
        "task_id": task.instance_id,
        "max_steps": max_steps if isinstance(max_steps, int) else opts.max_steps,
        "issue": task.problem_statement,
        "sandbox": {
            "backend": sandbox.get("backend") or opts.sandbox_backend,
            "docker_image": task.run_image or "",
            "workdir": task.workdir,
            "mounts": to_jsonable_python(sandbox.get("mounts") or {}),
            "env": to_jsonable_python(sandbox.get("env") or {}),
            "r2e_ds_json": ds_json,
        },
    }


@contextlib.contextmanager
def _staged_dir(target: Path) -> Iterator[tuple[Path, Callable[[], None]]]:
    """A temporary directory beside `target`, and a `commit()` that swaps it in."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))

    def commit() -> None:
        # A directory cannot be renamed over a non-empty one: park the old one first and put
        # it back if the swap fails, so the target is never missing after an error.
        trash = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old",
                                      dir=target.parent))
        old = trash / "old"
        try:
            if target.exists() or target.is_symlink():
                target.rename(old)
            try:
                staging.rename(target)
            except OSError:
                if old.exists() or old.is_symlink():
                    old.rename(target)
                raise
        finally:
            shutil.rmtree(trash, ignore_errors=True)

    try:
        yield staging, commit
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def write(tasks: Iterable[Task], path: Path, opts: WriteOptions) -> int:
    final_dir = side_dir(path)
    used: set[str] = set()
    count = 0
    with _staged_dir(final_dir) as (staging, commit), atomic_text(path) as f:
        for task in tasks:
            name = _file_name(task.instance_id, used)
            # Not fsynced one by one: thousands of small fsyncs cost minutes. A failed run
            # still never shows a partial directory, because it is only renamed in at the end.
            (staging / name).write_text(dumps(_ds(task)), encoding="utf-8")
            f.write(dumps(_line(task, f"{final_dir.name}/{name}", opts)))
            f.write("\n")
            count += 1
        commit()
    return count


def chunks(path: Path) -> None:
    """Side files per task: written by one stream, never in chunks."""
    return None
