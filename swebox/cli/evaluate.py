"""`swebox eval` (grade predictions), `swebox eval parse-log`, and `swebox validate`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from swebox.cli import err_console, out_console
from swebox.cli.render import JSON_LINES, as_dict, emit, json_line, notes
from swebox.tasks.model import Task

if TYPE_CHECKING:
    from swebox.grading.grader import GradeOptions

app = typer.Typer(help="Grade predictions against tasks; parse test logs.",
                  invoke_without_command=True, no_args_is_help=False)

BACKEND = typer.Option("docker", "--backend", "-b", help="docker, podman, bwrap (no "
                       "engine: needs root and bubblewrap) or remote (a swebox server: "
                       "SWEBOX_SERVER_URL, SWEBOX_API_KEY).")
WORKERS = typer.Option(2, "--workers", "-w", min=1, help="Instances graded in parallel.")
TIMEOUT = typer.Option(1800.0, "--timeout", help="Seconds per test run.")
TEST_COMMAND = typer.Option(None, "--test-command", help="Run this test command for every "
                            "task instead of the dataset's spec (see `swebox tasks show`).")
RULES = typer.Option(None, "--rules", help="Rules TOML: [[tests]] entries override the test "
                     "command, parser or set-up per repo or instance id.")


def _grade_options(backend: str, timeout: float, test_command: str | None,
                   rules: Path | None) -> GradeOptions:
    from swebox.grading.grader import GradeOptions
    from swebox.tasks.resolver import load_rules

    return GradeOptions(backend=backend, timeout=timeout, test_command=test_command,
                        rules=load_rules(rules).tests)


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeRemainingColumn(), console=err_console, transient=False)


def _load_tasks(path: Path | None, build_samples: bool) -> list[Task]:
    from swebox.errors import BadInput
    from swebox.tasks.readers import read_tasks

    if path is None:
        from swebox.samples import load_tasks
        from swebox.samples.builder import build

        samples = load_tasks()
        if build_samples:
            for s in samples:
                build(s)
        return [s.to_task() for s in samples]
    items = list(read_tasks(path))
    tasks = [t for t in items if isinstance(t, Task)]
    if not tasks:
        raise BadInput(f"{path}: no readable tasks", hint="check it with `swebox tasks stats`")
    rejected = len(items) - len(tasks)
    if rejected:
        err_console.print(f"[yellow]warning:[/] {rejected} task row(s) of {path} were "
                          "rejected (see `swebox tasks stats`)")
    return tasks


@app.callback()
def eval_(
    ctx: typer.Context,
    tasks: Path = typer.Option(None, "--tasks", "-t", help="Task file (default: the bundled "
                               "sample tasks)."),
    predictions: Path = typer.Option(None, "--predictions", "-p",
                                     help="SWE-bench predictions (.jsonl or .json)."),
    run_id: str = typer.Option(None, "--run-id", "-r", help="Run name; reuse it to resume."),
    out: Path = typer.Option(Path("swebox-runs"), "--out", "-o", help="Output directory."),
    workers: int = WORKERS, backend: str = BACKEND, timeout: float = TIMEOUT,
    test_command: str = TEST_COMMAND, rules: Path = RULES,
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object: the summary "
                                  "counts, by_repo and the report's path (the instance ids are "
                                  "in the report)."),
) -> None:
    """Grade predictions: per-instance reports and logs, a summary, resolved rate per repo."""
    if ctx.invoked_subcommand:
        return
    from swebox.errors import BadInput
    from swebox.eval.evaluate import evaluate
    from swebox.eval.predictions import load_predictions

    if predictions is None:
        raise BadInput("no predictions given", hint="swebox eval --tasks T --predictions P")
    task_map = {t.instance_id: t for t in _load_tasks(tasks, build_samples=tasks is None)}
    run_id = run_id or time.strftime("run-%Y%m%d-%H%M%S")
    with _progress() as progress:
        bar = progress.add_task(f"grading ({run_id})", total=None)
        report = evaluate(
            task_map, load_predictions(predictions), run_id=run_id, out=out, workers=workers,
            opts=_grade_options(backend, timeout, test_command, rules),
            on_start=lambda n: progress.update(bar, total=n),
            on_done=lambda v: progress.advance(bar))
    if json_out:
        summary = report.model_dump(mode="json", exclude={
            name for name in type(report).model_fields
            if name.endswith("_ids") or name == "rejected_predictions"})
        json_line({**summary, "report": str(out / run_id / "report.json")})
    else:
        table = Table("repository", "submitted", "resolved", "rate")
        for repo, c in sorted(report.by_repo.items()):
            rate = c["resolved"] / c["submitted"] if c["submitted"] else 0.0
            table.add_row(repo, str(c["submitted"]), str(c["resolved"]), f"{rate:.1%}")
        out_console.print(table)
    notes(json_out).print(
        f"submitted {report.submitted_instances}, completed {report.completed_instances}, "
        f"resolved {report.resolved_instances}, unresolved {report.unresolved_instances}, "
        f"empty patch {report.empty_patch_instances}, errors {report.error_instances} "
        f"-> {out / run_id / 'report.json'}")
    for label, items in (("unknown instance ids", report.unknown_ids),
                         ("rejected predictions", report.rejected_predictions)):
        if items:
            err_console.print(f"[yellow]{len(items)} {label}:[/] {', '.join(items[:5])}"
                              + (" ..." if len(items) > 5 else ""), soft_wrap=True)


def validate(
    tasks: Path = typer.Option(None, "--tasks", "-t", help="Task file (default: the bundled "
                               "sample tasks, images built if missing)."),
    runs: int = typer.Option(1, "--runs", "-k", min=1, help="Repetitions of each check."),
    out: Path = typer.Option(Path("swebox-validate"), "--out", "-o", help="Output directory."),
    workers: int = WORKERS, backend: str = BACKEND, timeout: float = TIMEOUT,
    test_command: str = TEST_COMMAND, rules: Path = RULES, json_out: bool = JSON_LINES,
) -> None:
    """Check that each task's gold patch resolves it and an empty patch does not.

    Each check runs K times; tests whose result changes between runs are reported as flaky.

    Writes valid_ids.txt, validation_report.json and a log per task. With --json, a line per
    task: its validation result as in validation_report.json."""
    from swebox.eval.validate import TaskValidation
    from swebox.eval.validate import validate as run

    task_list = _load_tasks(tasks, build_samples=tasks is None)
    with _progress() as progress:
        bar = progress.add_task("validating", total=len(task_list))

        def done(r: TaskValidation) -> None:
            progress.advance(bar)

        results = run(task_list, runs=runs, out=out, workers=workers,
                      opts=_grade_options(backend, timeout, test_command, rules), on_done=done)
    table = Table("task", "gold", "empty", "gold applied by", "flaky", "valid",
                  title=f"validation: runs resolved, of {runs} each")
    emit(results, json_out, table,
         lambda r: (r.instance_id, f"{r.gold_resolved}/{r.runs}", f"{r.empty_resolved}/{r.runs}",
                    r.gold_apply_method or "-", str(len(r.flaky_tests)),
                    "[green]yes[/]" if r.valid else "[red]no[/]"),
         as_dict)
    for r in results:
        if r.reasons:
            err_console.print(f"[red]{r.instance_id}:[/] {'; '.join(r.reasons)}", soft_wrap=True)
    valid = sum(r.valid for r in results)
    notes(json_out).print(f"{valid}/{len(results)} tasks valid -> {out / 'valid_ids.txt'}, "
                      f"{out / 'validation_report.json'}, logs in {out / 'logs'}")
    if valid < len(results):
        raise typer.Exit(1)
