"""`swebox integrations ...`: what the framework adapters need from the command line."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from swebox.cli import err_console
from swebox.cli.evaluate import BACKEND, _load_tasks
from swebox.cli.render import JSON_LINES, emit, notes

app = typer.Typer(help="Set-up for training and agent frameworks (see docs/integrations.md).",
                  no_args_is_help=True)


@app.command("openhands-images")
def openhands_images(
    tasks: Path = typer.Option(None, "--tasks", "-t", help="Task file (default: the bundled "
                               "sample tasks)."),
    benchmark: str = typer.Option("swe_bench", "--benchmark", help="OpenHands runner: "
                                  "swe_bench, swe_bench_official or multi_swe_bench."),
    prefix: str = typer.Option(None, "--prefix", help="EVAL_DOCKER_IMAGE_PREFIX you run "
                               "OpenHands with (default: the runner's own)."),
    language: str = typer.Option(None, "--language", help="multi_swe_bench's LANGUAGE (default:"
                                 " each task's language)."),
    backend: str = BACKEND,
    json_out: bool = JSON_LINES,
) -> None:
    """Tag each task's local image with the name OpenHands' run_infer computes for it."""
    from swebox.integrations.openhands import tag_for_openhands

    done = tag_for_openhands(_load_tasks(tasks, build_samples=tasks is None),
                             benchmark=benchmark, prefix=prefix, language=language,
                             backend=backend)
    table = Table("instance", "local image", "OpenHands name")
    emit(done, json_out, table,
         lambda t: None if t.error else (t.instance_id, t.source, t.target))
    failed = [t for t in done if t.error]
    for t in failed:
        err_console.print(f"[red]error[/]: {t.error}")
    notes(json_out).print(f"tagged {len(done) - len(failed)} of {len(done)} images")
    if failed:
        raise typer.Exit(1)
