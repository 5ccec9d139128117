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


@app.command("verl-tools")
def verl_tools(
    out: Path = typer.Option(..., "--out", "-o", help="The YAML for multi_turn.tool_config_path."),
    dialect: str = typer.Option("swebox", "--dialect", "-d", help="swebox, r2e, sweagent, "
                                "openhands: tool names, schemas and texts."),
    backend: str = BACKEND,
    max_steps: int = typer.Option(50, "--max-steps", min=1),
    lease: float = typer.Option(900.0, "--lease", help="Seconds without a call after which an "
                                "abandoned trajectory's sandbox is reclaimed."),
) -> None:
    """Write the tool config verl's ToolAgentLoop loads (swebox tools over one sandbox per
    trajectory)."""
    from swebox.integrations.verl import write_tool_config

    path = write_tool_config(out, dialect=dialect, backend=backend, max_steps=max_steps,
                             lease=lease)
    err_console.print(f"wrote {path}; also set multi_turn.max_tool_response_length (verl's "
                      "default is 256 characters) and custom_reward_function.path="
                      "pkg://swebox.integrations.verl, name=compute_score")


@app.command("verl-rows")
def verl_rows(
    src: Path = typer.Argument(..., help="Rows written by `swebox tasks convert --to rllm`."),
    out: Path = typer.Option(..., "--out", "-o", help="Parquet for verl's tool agent."),
    dialect: str = typer.Option("swebox", "--dialect", "-d"),
) -> None:
    """Add each row's tools_kwargs, agent_name and the dialect's prompt for verl."""
    from swebox.errors import BadInput
    from swebox.integrations.verl import convert_rllm_parquet

    if not src.is_file():
        raise BadInput(f"no such file: {src}", hint="write it with `swebox tasks convert "
                       "--to rllm`")
    n = convert_rllm_parquet(src, out, dialect=dialect)
    err_console.print(f"wrote {n} rows to {out}")
