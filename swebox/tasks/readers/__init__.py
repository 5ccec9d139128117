"""Readers: one file per source format, each a `detect(row)` and a `convert(row, opts)`.

`read_tasks` streams a file's rows, picks the format (forced with `fmt`, else detected from the
first row's fields; CSV by extension), converts each row and yields a `Task` or a `Reject` that
names where the row was and why it failed (a repeated instance_id is rejected too: the first
one is kept). A bad row never stops the rows after it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from pydantic import ValidationError

from swebox.errors import BadInput
from swebox.tasks.io import Reject, Row, iter_rows
from swebox.tasks.model import Task
from swebox.tasks.readers import (
    csv_sheet,
    exports,
    graphplanner,
    multiswebench,
    r2e,
    swebench,
    swebox_jsonl,
    swesmith,
)
from swebox.tasks.readers.common import ReadOptions

# Order matters for detection: the most specific field sets first.
_MODULES: tuple[ModuleType, ...] = (swebox_jsonl, exports, graphplanner, multiswebench, r2e,
                                    swesmith, swebench, csv_sheet)


@dataclass(frozen=True)
class Reader:
    name: str
    detect: Callable[[dict[str, Any]], bool]
    convert: Callable[[dict[str, Any], ReadOptions], Task]


READERS: dict[str, Reader] = {}
for _m in _MODULES:
    for _name in _m.NAMES:
        READERS[_name] = Reader(_name, _m.detect, _m.convert_for(_name))


def detect_format(row: dict[str, Any]) -> str | None:
    for m in _MODULES:
        name = m.detect_name(row)
        if name:
            return str(name)
    return None


def convert_row(reader: Reader, row: Row, opts: ReadOptions) -> Task | Reject:
    """One row through one reader: a Task, or a Reject saying where and why."""
    try:
        return reader.convert(row.data, opts)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(x) for x in err["loc"]) or "row"
        return Reject(row.where, f"{reader.name}: {loc}: {err['msg']}")
    except (KeyError, ValueError, TypeError, BadInput) as e:
        msg = f"missing field {e}" if isinstance(e, KeyError) else str(e)
        return Reject(row.where, f"{reader.name}: {msg}")


def convert_rows(rows: Iterable[Row | Reject], fmt: str | None = None,
                 opts: ReadOptions | None = None, source: str = "input"
                 ) -> Iterator[Task | Reject]:
    opts = opts or ReadOptions()
    reader: Reader | None = None
    if fmt is not None:
        if fmt not in READERS:
            raise BadInput(f"unknown format {fmt!r}", hint=f"use one of {', '.join(READERS)}")
        reader = READERS[fmt]
    seen: dict[str, str] = {}  # instance_id -> where it was first seen
    for item in rows:
        if isinstance(item, Reject):
            yield item
            continue
        if reader is None:
            name = detect_format(item.data)
            if name is None:
                keys = ", ".join(sorted(item.data)[:12])
                raise BadInput(f"{item.where}: cannot tell the format of {source} from its "
                               f"fields ({keys})", hint=f"force one with --from "
                               f"({'|'.join(READERS)})")
            reader = READERS[name]
        out = convert_row(reader, item, opts)
        if isinstance(out, Task):
            first = seen.setdefault(out.instance_id, item.where)
            if first != item.where:
                out = Reject(item.where, f"duplicate instance_id {out.instance_id!r} (first at "
                             f"{first}; that one was kept)")
        yield out


def read_tasks(path: str | Path, fmt: str | None = None, opts: ReadOptions | None = None
               ) -> Iterator[Task | Reject]:
    """Tasks (and rejects) from a file; the format is detected unless `fmt` is given."""
    p = Path(path)
    if fmt is None and p.suffix.lower() in (".csv", ".tsv"):
        fmt = "csv"
    return convert_rows(iter_rows(p), fmt, opts, source=str(p))


def read_hf(name: str, split: str, fmt: str | None = None, opts: ReadOptions | None = None
            ) -> Iterator[Task | Reject]:
    """Tasks from a Hugging Face dataset (name or local dataset path) via `datasets`."""
    try:
        import datasets
    except ImportError as e:
        raise BadInput("reading from the hub needs the `datasets` package",
                       hint="pip install 'swebox[hf]'") from e
    try:
        ds = datasets.load_dataset(name, split=split, streaming=True)
    except Exception as e:
        raise BadInput(f"cannot load dataset {name} split {split}: {e}") from e
    rows = (Row(dict(r), f"{name}[{split}] row {i}") for i, r in enumerate(ds))
    return convert_rows(rows, fmt, opts, source=f"{name}[{split}]")


__all__ = ["READERS", "ReadOptions", "convert_row", "convert_rows", "detect_format", "read_hf",
           "read_tasks"]
