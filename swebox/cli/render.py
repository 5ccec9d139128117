"""Listings on stdout: a rich table by default, JSON lines with `--json`.

With `--json` stdout carries nothing but JSON, one object per line, written with plain `print`
(the rich console would wrap long lines and read `[...]` as markup). Whatever a command says
around its table goes to `notes(json_out)`: stdout normally, stderr under `--json`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import typer
from rich.console import Console, RenderableType
from rich.table import Table

from swebox.cli import err_console, out_console

T = TypeVar("T")

JSON_LINES = typer.Option(False, "--json", help="Print JSON lines, one object per row, "
                          "instead of a table.")


def as_dict(item: Any) -> dict[str, Any]:
    """The JSON object of a pydantic model, dataclass or mapping."""
    if hasattr(item, "model_dump"):
        return dict(item.model_dump(mode="json"))
    if dataclasses.is_dataclass(item) and not isinstance(item, type):
        return dataclasses.asdict(item)
    return dict(item)


def json_line(obj: Any) -> None:
    """One JSON value on one line of stdout."""
    print(json.dumps(obj))


def emit(items: Iterable[T], json_out: bool, table: Table,
         cells: Callable[[T], Sequence[RenderableType] | None],
         as_json: Callable[[T], dict[str, Any]] = as_dict) -> None:
    """Print `items`: one JSON line each (`as_json`), or one table row each (`cells`).

    `cells` may return None for an item that only the JSON lists (say a failure, which the
    command reports on stderr instead)."""
    if json_out:
        for item in items:
            json_line(as_json(item))
        return
    for item in items:
        row = cells(item)
        if row is not None:
            table.add_row(*row)
    out_console.print(table)


def notes(json_out: bool) -> Console:
    """Where the lines around a listing go: stdout, or stderr when stdout carries JSON."""
    return err_console if json_out else out_console
