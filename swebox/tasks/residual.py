"""The part of a task that SWE-bench-shaped columns do not carry, for lossless exports.

The rLLM and SkyRL exports hold the 12 SWE-bench fields as columns; repeating the whole task
as JSON beside them would double what is encoded and written. `residual(task)` is everything
else (image names, workdir, test command, expected map, language, source format, the rest of
`extra`), and `rebuild(columns, residual)` puts the task back together exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic_core import to_jsonable_python

from swebox.tasks.io import dumps, loads
from swebox.tasks.model import Task

# Task field -> the SWE-bench column that carries it verbatim.
_COLUMNS = {"instance_id": "instance_id", "repo": "repo", "base_commit": "base_commit",
            "problem_statement": "problem_statement", "gold_patch": "patch",
            "test_patch": "test_patch"}
_LISTS = {"fail_to_pass": "FAIL_TO_PASS", "pass_to_pass": "PASS_TO_PASS"}
# Extra keys that have a column of their own (kept there when they are plain strings).
_EXTRA_COLUMNS = ("hints_text", "environment_setup_commit")


_REST = tuple(f for f in Task.model_fields if f not in _COLUMNS and f not in _LISTS
              and f != "extra")


def residual(task: Task) -> str:
    # Attribute reads, not model_dump: this runs once per exported row.
    data: dict[str, Any] = {f: getattr(task, f) for f in _REST}
    moved = [k for k in _EXTRA_COLUMNS if isinstance(task.extra.get(k), str)]
    data["extra"] = ({k: v for k, v in task.extra.items() if k not in moved} if moved
                     else task.extra)
    if moved:
        data["extra_columns"] = moved
    try:
        return dumps(data)
    except TypeError:  # values orjson does not know (numpy scalars, dates...): convert first
        return dumps(to_jsonable_python(data))


def rebuild(columns: Mapping[str, Any], encoded: str) -> Task:
    data: dict[str, Any] = loads(encoded)
    if "instance_id" in data:  # an export that carried the whole task
        return Task.model_validate(data)
    for field, column in _COLUMNS.items():
        data[field] = columns[column]
    for field, column in _LISTS.items():
        data[field] = loads(columns[column])
    for key in data.pop("extra_columns", []):
        data["extra"][key] = columns[key]
    return Task.model_validate(data)
