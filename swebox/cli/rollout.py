"""`swebox rollout` (tasks x n samples through an agent) and `swebox trajectories export`."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from swebox.cli import err_console, out_console
from swebox.cli.evaluate import BACKEND, _load_tasks
from swebox.cli.render import JSON_LINES, json_line

trajectories_app = typer.Typer(help="Work with rollouts' trajectories.jsonl files.",
                               no_args_is_help=True)


def rollout(
    tasks: Path = typer.Option(None, "--tasks", "-t", help="Task file (default: the bundled "
                               "sample tasks, built if missing)."),
    agent: str = typer.Option("llm", "--agent", "-a", help="llm (a model endpoint) or rule "
                              "(no model: explore, run the tests, apply --patch, submit)."),
    model: str = typer.Option(None, "--model", "-m", help="Model name the endpoint serves."),
    base_url: str = typer.Option(None, "--base-url", "-u", help="OpenAI-compatible endpoint, "
                                 "e.g. http://127.0.0.1:8000/v1 (default: $OPENAI_BASE_URL)."),
    api_key: str = typer.Option(None, "--api-key", envvar="OPENAI_API_KEY",
                                help="Key for the endpoint (default: $OPENAI_API_KEY)."),
    n: int = typer.Option(1, "-n", "--samples", min=1, help="Episodes per task (a GRPO group "
                          "starts from one prepared state)."),
    workers: int = typer.Option(4, "--workers", "-w", min=1, help="Episodes at a time."),
    max_steps: int = typer.Option(50, "--max-steps", min=1),
    wall_time: float = typer.Option(3600.0, "--wall-time", help="Seconds per episode."),
    bash_timeout: float = typer.Option(180.0, "--bash-timeout", help="Default seconds per "
                                       "shell command (killed inside the sandbox)."),
    dialect: str = typer.Option("swebox", "--dialect", "-d", help="Tool names and texts: "
                                "swebox, r2e, sweagent, openhands."),
    text_actions: bool = typer.Option(False, "--text-actions", help="The model has no tool "
                                      "calling: describe the tools in text, parse its text."),
    temperature: float = typer.Option(None, "--temperature"),
    max_tokens: int = typer.Option(None, "--max-tokens"),
    request_timeout: float = typer.Option(300.0, "--request-timeout", help="Seconds per "
                                          "model request (retried with back-off)."),
    patch: str = typer.Option(None, "--patch", help="Rule agent: 'gold' (each task's gold "
                              "patch) or a patch file applied to every task."),
    no_grade: bool = typer.Option(False, "--no-grade", help="Skip grading (reward 0)."),
    partial: bool = typer.Option(False, "--partial-reward", help="Unresolved episodes earn the "
                                 "fraction of target tests that pass."),
    out: Path = typer.Option(Path("swebox-rollouts"), "--out", "-o", help="Run directory; "
                             "reuse it to resume."),
    backend: str = BACKEND,
    json_out: bool = JSON_LINES,
) -> None:
    """Run an agent on tasks x n samples; append trajectories to OUT/trajectories.jsonl."""
    from swebox.agents import LLMAgent, LLMConfig, RuleAgent, run_rollouts
    from swebox.agents.dialects import get_dialect
    from swebox.agents.env import EpisodeLimits, RewardOptions
    from swebox.errors import BadInput

    get_dialect(dialect)  # an unknown name fails here, before anything starts
    make: Any
    if agent == "llm":
        if not model:
            raise BadInput("--agent llm needs --model", hint="the model name your endpoint "
                           "serves, with --base-url; or use --agent rule")
        cfg = LLMConfig(model=model, base_url=base_url, api_key=api_key,
                        tool_calling=not text_actions, temperature=temperature,
                        max_tokens=max_tokens, timeout=request_timeout)
        make = lambda: LLMAgent(cfg)  # noqa: E731 - one client per episode thread
    elif agent == "rule":
        given = None
        if patch and patch != "gold":
            if not Path(patch).is_file():
                raise BadInput(f"--patch {patch}: no such file", hint="give a patch file or "
                               "'gold'")
            given = Path(patch).read_text()
        make = lambda: RuleAgent(given, use_gold=patch == "gold")  # noqa: E731
    else:
        raise BadInput(f"unknown agent {agent!r}", hint="use --agent llm or --agent rule")
    task_list = _load_tasks(tasks, build_samples=tasks is None)
    env_options = {"dialect": dialect, "backend": backend,
                   "limits": EpisodeLimits(max_steps=max_steps, wall_time=wall_time,
                                           bash_timeout=bash_timeout),
                   "reward": RewardOptions(grade=not no_grade, partial=partial)}
    stats = {"done": 0, "reward": 0.0, "tokens": 0, "errors": 0}
    lock = threading.Lock()
    t0 = time.monotonic()
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[info]}"), TimeElapsedColumn(),
                        console=err_console, transient=False)
    bar: list[Any] = []

    def on_start(planned: int, todo: int) -> None:
        done = planned - todo
        bar.append(progress.add_task("rollouts", total=planned, completed=done, info=""))
        if done:
            err_console.print(f"resuming: {done} of {planned} episodes already in {out}")

    def on_done(traj: Any, error: str | None) -> None:
        with lock:
            if traj is None:
                stats["errors"] += 1
                err_console.print(f"[red]error[/]: {error}")
            else:
                stats["done"] += 1
                stats["reward"] += traj.reward
                stats["tokens"] += traj.usage.completion_tokens
                if json_out:
                    json_line({"instance_id": traj.instance_id, "sample": traj.sample,
                               "reward": traj.reward, "exit_reason": traj.exit_reason,
                               "steps": traj.steps})
            mean = stats["reward"] / max(1, stats["done"])
            rate = stats["tokens"] / max(1e-9, time.monotonic() - t0)
            progress.update(bar[0], advance=1, info=f"mean reward {mean:.3f}  {rate:.0f} tok/s"
                            f"  errors {stats['errors']}")

    with progress:
        report = run_rollouts(task_list, make, out, n=n, workers=workers,
                              env_options=env_options, on_start=on_start, on_done=on_done)
    if json_out:
        return
    table = Table(title=f"rollouts in {out}")
    for col in ("episodes", "mean reward", "resolved", "tasks resolved (any sample)",
                "exit reasons", "errors", "tokens in/out"):
        table.add_column(col)
    table.add_row(str(report.episodes), f"{report.mean_reward:.3f}", str(report.resolved),
                  f"{len(report.resolved_tasks)}/{len(task_list)}",
                  ", ".join(f"{k} {v}" for k, v in sorted(report.exit_reasons.items())),
                  str(report.errors), f"{report.prompt_tokens}/{report.completion_tokens}")
    out_console.print(table)
    out_console.print(f"trajectories: {out / 'trajectories.jsonl'}   report: "
                      f"{out / 'report.json'}")
    if report.errors:
        raise typer.Exit(1)


@trajectories_app.command("export")
def export_cmd(
    src: Path = typer.Argument(..., help="A trajectories.jsonl (or a rollout directory)."),
    to: str = typer.Option(..., "--to", help="sft (TRL rows: JSONL, or parquet by the "
                           ".parquet suffix), mini-swe-agent (.traj.json files), predictions."),
    out: Path = typer.Option(..., "--out", "-o", help="Output file (directory for "
                             "mini-swe-agent)."),
    resolved_only: bool = typer.Option(False, "--resolved-only", help="Only resolved "
                                       "episodes."),
    min_reward: float = typer.Option(None, "--min-reward", help="Only episodes with at least "
                                     "this reward."),
) -> None:
    """Write trajectories as SFT rows, mini-swe-agent trajectories or predictions."""
    from swebox.agents.export import export

    if src.is_dir():
        src = src / "trajectories.jsonl"
    n = export(src, to, out, resolved_only=resolved_only, min_reward=min_reward)
    err_console.print(f"wrote {n} {'file(s)' if to == 'mini-swe-agent' else 'row(s)'} to {out}")
