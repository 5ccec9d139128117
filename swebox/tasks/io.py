"""Row sources, JSON codecs, and (re-exported from swebox.atomic) safe writes.

Rows stream: JSONL line by line, parquet batch by batch, CSV record by record, so memory stays
flat however big the dataset. A malformed row becomes a `Reject` naming the file and line (or
row index) and the reason; the rows around it still flow. Outputs are written to a temporary
file beside the target, fsynced, then renamed: a target is never half-written.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swebox.atomic import atomic_path, atomic_text
from swebox.errors import BadInput

try:  # orjson parses large rows (patches, logs) several times faster; optional
    import orjson

    def loads(data: str | bytes) -> Any:
        return orjson.loads(data)

    def dumps(obj: Any) -> str:
        return orjson.dumps(obj).decode()

except ImportError:  # pragma: no cover - exercised where orjson is absent
    def loads(data: str | bytes) -> Any:
        return json.loads(data)

    def dumps(obj: Any) -> str:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


@dataclass
class Row:
    data: dict[str, Any]
    where: str


@dataclass
class Reject:
    where: str
    reason: str
    raw: str | None = None

    def to_json(self) -> str:
        return dumps({"where": self.where, "reason": self.reason, "raw": self.raw})


Item = Row | Reject
__all__ = ["Item", "Reject", "Row", "atomic_path", "atomic_text", "dumps", "iter_rows",
           "loads"]
JSONL_SUFFIXES = (".jsonl", ".ndjson", ".jsonl.txt")


def iter_rows(path: str | Path) -> Iterator[Item]:
    """Rows of a JSONL, JSON, parquet or CSV file, each with where it came from."""
    p = Path(path)
    if not p.is_file():
        raise BadInput(f"{p}: no such file", hint="check the path")
    name = p.name.lower()
    if name.endswith(".parquet"):
        yield from _parquet(p)
    elif name.endswith((".csv", ".tsv")):
        yield from _csv(p, delimiter="\t" if name.endswith(".tsv") else ",")
    elif name.endswith(".json"):
        yield from _json(p)
    else:
        yield from _jsonl(p)


def _jsonl(p: Path) -> Iterator[Item]:
    with open(p, "rb") as f:
        name = str(p)
        for n, line in enumerate(f, 1):
            if line.isspace():  # stops at the first non-blank byte: no copy of a long line
                continue
            where = f"{name}:{n}"
            try:
                data = loads(line)
            except ValueError as e:
                yield Reject(where, f"not valid JSON: {e}", _clip(line))
                continue
            if not isinstance(data, dict):
                yield Reject(where, f"a row must be a JSON object, got {type(data).__name__}",
                             _clip(line))
                continue
            yield Row(data, where)


def _json(p: Path) -> Iterator[Item]:
    with open(p, "rb") as f:
        head = f.read(1).lstrip() or f.read(64).lstrip()[:1]
    if head != b"[":
        # A single object, or JSONL saved with a .json name (common for HF exports).
        with open(p, "rb") as f:
            text = f.read()
        try:
            data = loads(text)
        except ValueError:
            yield from _jsonl(p)
            return
        if isinstance(data, dict):
            yield Row(data, f"{p}:1")
            return
        yield Reject(f"{p}:1", "expected an object or an array of objects")
        return
    # A JSON array has to be parsed whole; such files are small exports in practice.
    try:
        data = loads(p.read_bytes())
    except ValueError as e:
        yield Reject(f"{p}", f"not valid JSON: {e}")
        return
    for i, item in enumerate(data):
        where = f"{p}[{i}]"
        if isinstance(item, dict):
            yield Row(item, where)
        else:
            yield Reject(where, f"a row must be a JSON object, got {type(item).__name__}")


def _parquet(p: Path) -> Iterator[Item]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(p)
    except Exception as e:
        raise BadInput(f"{p}: not a readable parquet file: {e}") from e
    index = 0
    for batch in pf.iter_batches(batch_size=2048):
        for data in batch.to_pylist():
            yield Row(data, f"{p} row {index}")
            index += 1


def _csv(p: Path, delimiter: str) -> Iterator[Item]:
    # utf-8-sig drops a BOM; newline="" lets the csv module handle quoted multi-line cells and
    # Windows line ends itself.
    with open(p, encoding="utf-8-sig", newline="", errors="replace") as f:
        reader = csv.DictReader(f, delimiter=delimiter)
        if reader.fieldnames is None:
            return
        fields = [h.strip() for h in reader.fieldnames]
        reader.fieldnames = fields
        while True:
            line = reader.line_num + 1
            try:
                record = next(reader)
            except StopIteration:
                return
            except csv.Error as e:
                yield Reject(f"{p}:{line}", f"malformed CSV: {e}")
                continue
            where = f"{p}:{line}"
            if None in record:  # more cells than headers
                yield Reject(where, f"row has {len(fields) + len(record[None])} cells but the "
                             f"header has {len(fields)}")
                continue
            yield Row({k: (v.replace("\r\n", "\n") if isinstance(v, str) else v)
                       for k, v in record.items()}, where)


def _clip(raw: bytes | str, limit: int = 2000) -> str:
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    return text if len(text) <= limit else text[:limit] + "..."
