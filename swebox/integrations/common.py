"""What every adapter needs: a task from whatever row the framework hands over, and the env
options a framework's config carries."""

from __future__ import annotations

from typing import Any

from swebox.errors import BadInput
from swebox.tasks.io import loads
from swebox.tasks.model import Task


def task_from_row(row: Any) -> Task:
    """The task in a dataset row as a framework passes it on: a SkyRL `extras` dict (the
    `instance` column), an rLLM/verl `extra_info`, a swebox Task (as a dict or JSON), or an
    R2E-Gym / SWE-bench row."""
    from swebox.tasks.readers import exports
    from swebox.tasks.readers.common import ReadOptions

    if isinstance(row, Task):
        return row
    if isinstance(row, str):
        row = loads(row)
    if not isinstance(row, dict):
        raise BadInput(f"cannot read a task from a {type(row).__name__}",
                       hint="pass the dataset row (or its extra_info / instance) as a dict")
    opts = ReadOptions()
    try:
        if isinstance(row.get("instance"), (dict, str)):
            return exports.convert_for("skyrl")(row, opts)
        if isinstance(row.get("extra_info"), (dict, str)):
            return exports.convert_for("rllm")(row, opts)
        if "schema_version" in row and "instance_id" in row and "source_format" in row:
            return Task.model_validate(row)
        return exports.convert_for("rllm")({"extra_info": row}, opts)
    except (ValueError, KeyError) as e:
        ident = row.get("instance_id") or (row.get("extra_info") or {}).get("instance_id") \
            if isinstance(row.get("extra_info"), dict) else row.get("instance_id")
        raise BadInput(f"row {ident or '?'}: no task in it: {e}",
                       hint="use rows written by `swebox tasks convert --to skyrl|rllm`, or "
                            "R2E-Gym / SWE-bench rows") from e
