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

`ParquetChunks` is the streaming parquet writer the SkyRL writer shares.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path
from typing import Any

from swebox.tasks.io import dumps
from swebox.tasks.model import Task
from swebox.tasks.residual import residual
from swebox.tasks.writers.common import WriteOptions, write_chunked
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


class ParquetChunks:
    """Parquet: a chunk is an Arrow table (picklable, so workers can build it); the sink drops
    rows not kept, renumbers the `index` column (if any) from `start`, and appends a row group.
    """

    def __init__(self, schema: Callable[[], Any],
                 row: Callable[[Task, WriteOptions], dict[str, Any]],
                 index: tuple[str, str] | None = None) -> None:
        self.schema = schema
        self.row = row
        self.index = index  # (struct column, child) holding the row number

    def encode(self, tasks: list[Task], opts: WriteOptions) -> Any:
        columns = _Columns(self.schema())
        for task in tasks:
            columns.add(self.row(task, opts))
        return columns.take()

    def open(self, tmp: Path, opts: WriteOptions) -> _ParquetSink:
        _, pq = pyarrow_modules()
        return _ParquetSink(pq.ParquetWriter(tmp, self.schema()), self.index, opts.batch_rows)


class _ParquetSink:
    """Appends tables as row groups of exactly `rows_per_group` rows (the last may be short),
    so the file's bytes do not depend on how the rows were chunked on their way here."""

    def __init__(self, writer: Any, index: tuple[str, str] | None, rows_per_group: int) -> None:
        self.writer = writer
        self.index = index
        self.rows_per_group = max(1, rows_per_group)
        self.pending: list[Any] = []
        self.pending_rows = 0

    def write(self, chunk: Any, keep: list[bool] | None, start: int) -> int:
        pa, _ = pyarrow_modules()
        table = chunk if keep is None else chunk.filter(pa.array(keep, type=pa.bool_()))
        if self.index and table.num_rows:
            table = _renumber(table, *self.index, start)
        if table.num_rows:
            self.pending.append(table)
            self.pending_rows += table.num_rows
            self._flush(final=False)
        return int(table.num_rows)

    def _flush(self, final: bool) -> None:
        pa, _ = pyarrow_modules()
        if self.pending_rows < self.rows_per_group and not (final and self.pending_rows):
            return
        table = pa.concat_tables(self.pending)
        offset = 0
        while table.num_rows - offset >= self.rows_per_group:
            self.writer.write_table(table.slice(offset, self.rows_per_group))
            offset += self.rows_per_group
        if final and offset < table.num_rows:
            self.writer.write_table(table.slice(offset))
            offset = table.num_rows
        rest = table.slice(offset)
        self.pending = [rest] if rest.num_rows else []
        self.pending_rows = int(rest.num_rows)

    def close(self) -> None:
        try:
            self._flush(final=True)
        finally:
            self.writer.close()


def _renumber(table: Any, column: str, child: str, start: int) -> Any:
    """Replace `column.child` with start, start+1, ...: rows are numbered where they are
    written, since a worker encoding a chunk cannot know how many rows came before it."""
    pa, _ = pyarrow_modules()
    pos = table.schema.get_field_index(column)
    struct = table.column(pos).combine_chunks()
    fields = list(struct.type)
    children = [pa.array(range(start, start + table.num_rows), type=f.type) if f.name == child
                else struct.field(i) for i, f in enumerate(fields)]
    return table.set_column(pos, table.schema.field(pos),
                            pa.StructArray.from_arrays(children, fields=fields))


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


def _extra_info(task: Task, split: str) -> dict[str, Any]:
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
    info["index"] = 0  # numbered by the sink
    info["swebox_task"] = residual(task)
    return info


def _row(task: Task, opts: WriteOptions) -> dict[str, Any]:
    return {
        "data_source": data_source(task, opts),
        "prompt": [{"role": "user", "content": task.problem_statement}],
        "ability": "coding",
        "reward_model": {"style": "rule", "ground_truth": dumps({
            "expected_output": task.expected_output,
            "FAIL_TO_PASS": task.fail_to_pass,
            "PASS_TO_PASS": task.pass_to_pass,
        })},
        "extra_info": _extra_info(task, opts.split),
    }


CHUNKS = ParquetChunks(_schema, _row, index=("extra_info", "index"))


def chunks(path: Path) -> ParquetChunks:
    return CHUNKS


def write(tasks: Iterable[Task], path: Path, opts: WriteOptions) -> int:
    return write_chunked(CHUNKS, tasks, path, opts)
