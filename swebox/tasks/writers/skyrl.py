"""SkyRL parquet, as skyrl-train's mini-swe-agent preprocessing writes it.

Columns (one fixed schema):
- data_source: str (opts.data_source, else "swebox/<source format>")
- prompt: list<struct<role, content>>, the problem statement as the one user message
- env_class: str (opts.env_class; "null" in SkyRL's SWE examples)
- instance: struct of strings, the SWE-bench / SWE-Gym row the generators read: the 12
  SWE-bench fields (FAIL_TO_PASS / PASS_TO_PASS JSON-encoded, as make_test_spec accepts),
  image_name, and swebox_task (the whole Task as JSON, so swebox reads its export back).

PromptDataset passes every column but prompt and env_class on as `env_extras`, where the
generator takes `instance` and `data_source`.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

from swebox.tasks.model import Task
from swebox.tasks.residual import residual
from swebox.tasks.writers.common import WriteOptions, write_chunked
from swebox.tasks.writers.rllm import ParquetChunks, data_source, message_type, pyarrow_modules
from swebox.tasks.writers.swebench import FIELDS, swebench_row

NAME = "skyrl"
DESCRIPTION = "SkyRL parquet (prompt, env_class, SWE-bench-shaped instance)"

_INSTANCE_KEYS = (*FIELDS, "image_name", "swebox_task")


@cache
def _schema() -> Any:
    pa, _ = pyarrow_modules()
    return pa.schema([
        ("data_source", pa.string()),
        ("prompt", message_type()),
        ("env_class", pa.string()),
        ("instance", pa.struct([(k, pa.string()) for k in _INSTANCE_KEYS])),
    ])


def _row(task: Task, opts: WriteOptions) -> dict[str, Any]:
    instance: dict[str, Any] = dict(swebench_row(task, exact=False))
    # Null, not "", when the task names no image: SkyRL's `instance.get("image_name")` then
    # falls back to its own naming convention for the data source.
    instance["image_name"] = task.run_image
    instance["swebox_task"] = residual(task)
    return {
        "data_source": data_source(task, opts),
        "prompt": [{"role": "user", "content": task.problem_statement}],
        "env_class": opts.env_class,
        "instance": instance,
    }


CHUNKS = ParquetChunks(_schema, _row)


def chunks(path: Path) -> ParquetChunks:
    return CHUNKS


def write(tasks: Iterable[Task], path: Path, opts: WriteOptions) -> int:
    return write_chunked(CHUNKS, tasks, path, opts)
