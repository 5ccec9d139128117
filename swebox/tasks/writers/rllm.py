"""rLLM / verl parquet: the verl row convention with the task in `extra_info`.

Columns (one fixed schema, so every row group has the same types):
- data_source: str (opts.data_source, else "swebox/<source format>")
- prompt: list<struct<role, content>>, the problem statement as the one user message
- ability: "coding"
- reward_model: struct<style: "rule", ground_truth: JSON string of
  {"expected_output": map or null, "FAIL_TO_PASS": [...], "PASS_TO_PASS": [...]}>
- extra_info: struct of strings (and an int64 index) holding what rLLM's trainer hands to
  `SWEEnv.from_dict`: the R2E-Gym `ds` keys (docker_image, repo_name, commit_hash,
  problem_statement, expected_output_json, parsed_commit_content) and the 12 SWE-bench fields,
  then split, index, and swebox_task (what those columns do not carry, as JSON: swebox reads
  its own export back losslessly; see swebox/tasks/residual.py).

The gold `patch` is kept in extra_info: for SWE-bench images rLLM's reward builds the harness'
`make_test_spec(ds)` from this dict, which wants the full SWE-bench row. The agent is given the
instruction made from problem_statement, never the dict itself.

`write_parquet` is the streaming parquet loop the SkyRL writer shares.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path
from typing import Any

from swebox.tasks.io import atomic_path, dumps
from swebox.tasks.model import Task
from swebox.tasks.residual import residual
from swebox.tasks.writers.common import WriteOptions
from swebox.tasks.writers.swebench import FIELDS, extra_text, swebench_row

NAME = "rllm"
DESCRIPTION = "rLLM / verl parquet (prompt, reward_model, extra_info for SWEEnv)"

# extra_info's string fields, in column order; `index` (int64) is added after `split`.
_R2E_KEYS = ("instance_id", "docker_image", "image_name", "repo_name", "commit_hash",
             "problem_statement", "expected_output_json", "parsed_commit_content")
_INFO_KEYS = _R2E_KEYS + tuple(k for k in FIELDS if k not in _R2E_KEYS) + ("split",)


def pyarrow_modules() -> tuple[Any, Any]:
    """pyarrow and pyarrow.parquet, imported only when a parquet format is written: pyarrow
    alone roughly doubles the CLI's start-up time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    return pa, pq


def message_type() -> Any:
    pa, _ = pyarrow_modules()
    return pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))


@cache
def _schema() -> Any:
    pa, _ = pyarrow_modules()
    info = [(k, pa.string()) for k in _INFO_KEYS]
    info += [("index", pa.int64()), ("swebox_task", pa.string())]
    return pa.schema([
        ("data_source", pa.string()),
        ("prompt", message_type()),
        ("ability", pa.string()),
        ("reward_model", pa.struct([("style", pa.string()), ("ground_truth", pa.string())])),
        ("extra_info", pa.struct(info)),
    ])


def write_parquet(tasks: Iterable[Task], path: Path, schema: Any,
                  row: Callable[[Task, int], dict[str, Any]], batch_rows: int) -> int:
    """Rows of `row(task, index)` in row groups of `batch_rows`, into a temp file renamed onto
    `path` at the end. Only one batch of rows is held at a time."""
    _, pq = pyarrow_modules()
    columns = _Columns(schema)
    count = 0
    with atomic_path(path) as tmp, pq.ParquetWriter(tmp, schema) as writer:
        for task in tasks:
            columns.add(row(task, count))
            count += 1
            if columns.rows >= max(1, batch_rows):
                writer.write_table(columns.take())
        if columns.rows:
            writer.write_table(columns.take())
    return count


class _Columns:
    """Row values gathered per leaf column, then turned into arrays column by column: much
    cheaper than `Table.from_pylist`, which converts every nested dict one by one."""

    def __init__(self, schema: Any) -> None:
        pa, _ = pyarrow_modules()
        self.schema = schema
        self.structs = {f.name: [sub.name for sub in f.type] for f in schema
                        if pa.types.is_struct(f.type)}
        self._reset()

    def _reset(self) -> None:
        self.rows = 0
        self.plain: dict[str, list[Any]] = {f.name: [] for f in self.schema
                                            if f.name not in self.structs}
        self.nested: dict[str, dict[str, list[Any]]] = {
            name: {sub: [] for sub in subs} for name, subs in self.structs.items()}

    def add(self, row: dict[str, Any]) -> None:
        for name, values in self.plain.items():
            values.append(row[name])
        for name, subs in self.nested.items():
            value = row[name]
            for sub, values in subs.items():
                values.append(value[sub])
        self.rows += 1

    def take(self) -> Any:
        pa, _ = pyarrow_modules()
        arrays = []
        for field in self.schema:
            if field.name in self.structs:
                subs = self.nested[field.name]
                children = [pa.array(subs[sub.name], type=sub.type) for sub in field.type]
                arrays.append(pa.StructArray.from_arrays(children, fields=list(field.type)))
            else:
                arrays.append(pa.array(self.plain[field.name], type=field.type))
        self._reset()
        return pa.Table.from_arrays(arrays, schema=self.schema)


def data_source(task: Task, opts: WriteOptions) -> str:
    return opts.data_source or f"swebox/{task.source_format}"


def _extra_info(task: Task, index: int, split: str) -> dict[str, Any]:
    image = task.run_image
    expected = task.expected_output
    info: dict[str, Any] = {
        "instance_id": task.instance_id,
        # rLLM reads docker_image and falls back to image_name; R2E-Gym's runtime reads either.
        "docker_image": image,
        "image_name": image,
        "repo_name": task.repo_name,
        "commit_hash": task.base_commit,
        "problem_statement": task.problem_statement,
        # "" when the source had no map (only R2E rows have one); the test lists are then in
        # FAIL_TO_PASS / PASS_TO_PASS.
        "expected_output_json": dumps(expected) if expected is not None else "",
        # R2E-Gym's runtime parses this for plain R2E images; only R2E sources have it.
        "parsed_commit_content": extra_text(task, "parsed_commit_content"),
    }
    # Compact JSON for the test lists: consumers parse them, and this is the hot loop.
    info.update((k, v) for k, v in swebench_row(task, exact=False).items() if k not in info)
    info["split"] = split
    info["index"] = index
    info["swebox_task"] = residual(task)
    return info


def _row(task: Task, index: int, opts: WriteOptions) -> dict[str, Any]:
    return {
        "data_source": data_source(task, opts),
        "prompt": [{"role": "user", "content": task.problem_statement}],
        "ability": "coding",
        "reward_model": {"style": "rule", "ground_truth": dumps({
            "expected_output": task.expected_output,
            "FAIL_TO_PASS": task.fail_to_pass,
            "PASS_TO_PASS": task.pass_to_pass,
        })},
        "extra_info": _extra_info(task, index, opts.split),
    }


def write(tasks: Iterable[Task], path: Path, opts: WriteOptions) -> int:
    return write_parquet(tasks, path, _schema(),
                         lambda task, index: _row(task, index, opts), opts.batch_rows)
