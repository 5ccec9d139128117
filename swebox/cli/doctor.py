"""`swebox doctor`: what this machine offers swebox and what is wrong with it."""

from __future__ import annotations

import json

import typer
from rich.table import Table
from rich.text import Text

from swebox.cli import out_console

_STYLES = {"ok": "green", "warn": "yellow", "FAIL": "bold red"}


def doctor(
    backend: str = typer.Option("docker", "--backend", "-b",
                                help="The default engine to judge: docker or podman."),
    json_out: bool = typer.Option(False, "--json", help="Print the checks as a JSON list of "
                                  "{check, status, detail} instead of a table."),
    server: str = typer.Option(None, "--server", help="Check a runtime server instead: "
                               "reachable, version, auth (key from SWEBOX_API_KEY), capacity."),
) -> None:
    """Check the engines, disk, bubblewrap, cgroups and GPUs; exit 4 if the engine is unusable."""
    from swebox.doctor import default_engine_ok, run_checks
    from swebox.errors import EngineUnavailable

    if server:
        from swebox.doctor_server import server_checks

        checks = server_checks(server)
        backend = f"the server at {server}"
    else:
        checks = run_checks(backend)
    usable = default_engine_ok(checks)
    if json_out:
        # Plain print, not the rich console: it would wrap long lines and break the JSON.
        print(json.dumps([c.as_dict() for c in checks], indent=2))
    else:
        table = Table("check", "status", "detail")
        for c in checks:
            # Text, not markup: details contain shell snippets like `[[ ... ]]`.
            # Fold, not ellipsis: a cut-off path or command is of no use to the reader.
            table.add_row(c.name, Text(c.status, style=_STYLES[c.status]),
                          Text(c.detail, overflow="fold"))
        out_console.print(table)
        if not usable:
            out_console.print(f"[bold red]{backend} is unusable[/]: swebox cannot start "
                              "sandboxes on it (see its row above)")
    if not usable:
        raise typer.Exit(EngineUnavailable.exit_code)
