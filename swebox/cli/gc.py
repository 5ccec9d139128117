"""`swebox gc`: remove stopped, orphaned and expired sandboxes and snapshot images."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from swebox.cli import out_console


def gc(
    backend: list[str] = typer.Option(["docker"], "--backend", "-b",
                                      help="Backends to clean (repeatable): docker, podman, "
                                      "bwrap."),
    everything: bool = typer.Option(False, "--all", help="Remove every swebox sandbox, live "
                                    "or not (other runs on this engine lose theirs)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only list what would be removed."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON lines."),
) -> None:
    """Remove swebox sandboxes whose lease expired or whose owner process is gone."""
    from swebox.sandbox.engine import connect
    from swebox.sandbox.lifecycle import collect
    from swebox.sandbox.models import make_config

    rows = []
    for name in backend:
        make_config(image="-", backend=name)  # validates the backend name
        if name == "bwrap":
            from swebox.sandbox import bwrap

            rows += [(name, c) for c in bwrap.collect(everything=everything, dry_run=dry_run)]
            continue
        client = connect(name)  # type: ignore[arg-type]
        rows += [(name, c) for c in collect(client, everything=everything, dry_run=dry_run)]
    if json_out:
        import json

        for name, c in rows:
            print(json.dumps({"engine": name, "kind": c.kind, "id": c.id, "name": c.name,
                              "reason": c.reason, "removed": c.removed}))
    elif not rows:
        out_console.print("nothing to collect")
        return
    else:
        _render(rows, dry_run)
    if any(not c.removed for _, c in rows) and not dry_run:
        raise typer.Exit(1)


def _render(rows: list[tuple[str, Any]], dry_run: bool) -> None:
    table = Table("engine", "kind", "id", "name", "reason", "removed")
    for name, c in rows:
        table.add_row(name, c.kind, c.id, c.name, c.reason,
                      "dry run" if dry_run else ("yes" if c.removed else "[red]failed[/]"))
    out_console.print(table)
