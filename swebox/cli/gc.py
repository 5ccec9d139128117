"""`swebox gc`: remove stopped, orphaned and expired sandboxes and snapshot images."""

from __future__ import annotations

import dataclasses

import typer
from rich.table import Table

from swebox.cli import out_console
from swebox.cli.render import JSON_LINES, emit


def gc(
    backend: list[str] = typer.Option(["docker"], "--backend", "-b",
                                      help="Backends to clean (repeatable): docker, podman, "
                                      "bwrap."),
    everything: bool = typer.Option(False, "--all", help="Remove every swebox sandbox, live "
                                    "or not (other runs on this engine lose theirs)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only list what would be removed."),
    json_out: bool = JSON_LINES,
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
    if not rows and not json_out:
        out_console.print("nothing to collect")
        return
    emit(rows, json_out, Table("engine", "kind", "id", "name", "reason", "removed"),
         lambda r: (r[0], r[1].kind, r[1].id, r[1].name, r[1].reason,
                    "dry run" if dry_run else ("yes" if r[1].removed else "[red]failed[/]")),
         lambda r: {"engine": r[0], **dataclasses.asdict(r[1])})
    if any(not c.removed for _, c in rows) and not dry_run:
        raise typer.Exit(1)
