"""Write a task file back in its own format with some values replaced (seed 000, step 4:
image references swapped for the short local names they were fetched under).

Every other byte of meaning is kept: the same columns in the same order, the same fields,
the same rows; a JSONL line with nothing to replace is copied byte for byte. Values are
replaced where a whole string equals a key, at any depth in JSON, in any string column of a
CSV or parquet file, so no reader has to say which field holds the image. Streams (parquet by
record batch), and the output is written atomically.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from swebox.atomic import atomic_path
from swebox.errors import BadInput
from swebox.tasks.io import JSONL_SUFFIXES, dumps, loads


class RewriteReport(BaseModel):
    rows: int = 0
    changed_rows: int = 0
    replaced: int = 0


def _swap(value: Any, mapping: dict[str, str], count: list[int]) -> Any:
    if isinstance(value, str):
        new = mapping.get(value.strip())
        if new is not None:
            count[0] += 1
            return new
        return value
    if isinstance(value, dict):
        return {k: _swap(v, mapping, count) for k, v in value.items()}
    if isinstance(value, list):
        return [_swap(v, mapping, count) for v in value]
    return value


def replace_values(src: str | Path, dst: str | Path, mapping: dict[str, str]) -> RewriteReport:
    """Copy `src` to `dst` in the same format, replacing every string equal to a key."""
    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise BadInput(f"{src}: no such file", hint="check the path")
    name = src.name.lower()
    if _kind(name) != _kind(dst.name.lower()):
        raise BadInput(f"{dst}: writing back keeps {src.name}'s format, so the output needs "
                       f"the same kind of name", hint="name it alike, or convert with --to")
    report = RewriteReport()
    with atomic_path(dst) as tmp:
        if name.endswith(".parquet"):
            _parquet(src, tmp, mapping, report)
        elif name.endswith((".csv", ".tsv")):
            _csv(src, tmp, "\t" if name.endswith(".tsv") else ",", mapping, report)
        elif name.endswith(".json") and _is_array(src):
            _json_array(src, tmp, mapping, report)
        elif name.endswith((*JSONL_SUFFIXES, ".json")):
            _jsonl(src, tmp, mapping, report)
        else:
            raise BadInput(f"{src}: cannot write this format back",
                           hint="use a .jsonl, .json, .csv, .tsv or .parquet file")
    return report


def _kind(name: str) -> str:
    for suffixes, kind in (((".parquet",), "parquet"), ((".csv",), "csv"), ((".tsv",), "tsv")):
        if name.endswith(suffixes):
            return kind
    return "json"  # .json and JSONL are told apart by their content


def _is_array(p: Path) -> bool:
    with open(p, "rb") as f:
        return f.read(4096).lstrip()[:1] == b"["


def _jsonl(src: Path, dst: Path, mapping: dict[str, str], report: RewriteReport) -> None:
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        for line in fin:
            if line.isspace():
                fout.write(line)
                continue
            report.rows += 1
            count = [0]
            try:
                data = _swap(loads(line), mapping, count)
            except ValueError:
                data = None  # a malformed line is the readers' business: keep it as it was
            if not count[0]:
                fout.write(line)
                continue
            report.changed_rows += 1
            report.replaced += count[0]
            fout.write(dumps(data).encode() + (b"\n" if line.endswith(b"\n") else b""))


def _json_array(src: Path, dst: Path, mapping: dict[str, str], report: RewriteReport) -> None:
    data = loads(src.read_bytes())  # an array must be parsed whole; these files are small
    out = []
    for item in data:
        count = [0]
        out.append(_swap(item, mapping, count))
        report.rows += 1
        report.changed_rows += bool(count[0])
        report.replaced += count[0]
    dst.write_text(dumps(out), encoding="utf-8")


def _csv(src: Path, dst: Path, delimiter: str, mapping: dict[str, str],
         report: RewriteReport) -> None:
    with open(src, encoding="utf-8-sig", newline="") as fin, \
            open(dst, "w", encoding="utf-8", newline="") as fout:
        reader = csv.reader(fin, delimiter=delimiter)
        writer = csv.writer(fout, delimiter=delimiter, lineterminator="\n")
        header = next(reader, None)
        if header is None:
            return
        writer.writerow(header)
        for row in reader:
            report.rows += 1
            count = [0]
            writer.writerow([_swap(cell, mapping, count) for cell in row])
            report.changed_rows += bool(count[0])
            report.replaced += count[0]


def _parquet(src: Path, dst: Path, mapping: dict[str, str], report: RewriteReport) -> None:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    keys = pa.array(list(mapping), pa.string())
    values = pa.array(list(mapping.values()), pa.string())
    pf = pq.ParquetFile(src)
    with pq.ParquetWriter(dst, pf.schema_arrow) as writer:
        for batch in pf.iter_batches(batch_size=4096):
            columns = []
            changed = pa.array([False] * batch.num_rows)
            for column in batch.columns:
                if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
                    idx = pc.index_in(pc.utf8_trim_whitespace(column), value_set=keys)
                    hit = pc.is_valid(idx)
                    if pc.any(hit).as_py():
                        swapped = pc.take(values, pc.fill_null(idx, 0)).cast(column.type)
                        column = pc.if_else(hit, swapped, column)
                        changed = pc.or_(changed, hit)
                        report.replaced += pc.sum(hit.cast(pa.int64())).as_py() or 0
                columns.append(column)
            report.rows += batch.num_rows
            report.changed_rows += pc.sum(changed.cast(pa.int64())).as_py() or 0
            writer.write_batch(pa.RecordBatch.from_arrays(columns, schema=batch.schema))
