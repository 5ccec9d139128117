"""`swebox samples list|build|run`: the bundled sample tasks and the main job on them."""

from __future__ import annotations

import typer
from rich.table import Table

from swebox.cli import err_console, out_console
from swebox.cli.render import JSON_LINES, emit, notes

app = typer.Typer(help="The bundled sample tasks: list, build images, run.", no_args_is_help=True)

NAMES = typer.Argument(None, help="Sample task names (default: all).")
BACKEND = typer.Option("docker", "--backend", "-b", help="docker, podman or bwrap (no "
                       "engine: needs root and bubblewrap).")


@app.command("list")
def list_(names: list[str] = NAMES, json_out: bool = JSON_LINES) -> None:
    """List the sample tasks and their image names."""
    from swebox.samples import load_tasks

    emit(load_tasks(names), json_out, Table("task", "instance_id", "image", "F2P", "P2P"),
         lambda t: (t.name, t.instance_id, t.image, str(len(t.fail_to_pass)),
                    str(len(t.pass_to_pass))),
         lambda t: {"task": t.name, "instance_id": t.instance_id, "image": t.image,
                    "fail_to_pass": len(t.fail_to_pass), "pass_to_pass": len(t.pass_to_pass)})


@app.command("build")
def build(names: list[str] = NAMES, backend: str = BACKEND,
          force: bool = typer.Option(False, "--force", help="Rebuild even if current.")) -> None:
    """Build the sample images on the base image (skipped when already current)."""
    from swebox.samples import load_tasks
    from swebox.samples.builder import build as build_one
    from swebox.sandbox.models import make_config

    make_config(image="-", backend=backend)
    for t in load_tasks(names):
        built = build_one(t, backend, force=force)  # type: ignore[arg-type]
        out_console.print(f"{'built  ' if built else 'current'} {t.image}")


@app.command("run")
def run(names: list[str] = NAMES, backend: str = BACKEND,
        workers: int = typer.Option(2, "--workers", "-j", min=1, help="Tasks in parallel."),
        json_out: bool = JSON_LINES) -> None:
    """Main job: per task, a sandbox; hidden tests in; tests before and after the gold patch."""
    from swebox.samples import load_tasks
    from swebox.samples.run import Outcome, run_samples
    from swebox.sandbox.models import make_config

    make_config(image="-", backend=backend)
    tasks = load_tasks(names)
    err_console.print(f"running {len(tasks)} sample tasks on {backend} ...")

    def progress(o: Outcome) -> None:
        mark = "[green]ok[/]" if o.as_expected else "[red]unexpected[/]"
        err_console.print(f"  {o.task}: {mark} ({o.duration:.1f}s)")

    outcomes = run_samples(tasks, backend, workers, on_done=progress)  # type: ignore[arg-type]
    table = Table("task", "before\npass/fail", "gold patch", "after\npass/fail", "F2P\nfixed",
                  "P2P\nkept", "resolved", title="sample tasks: tests before and after the gold "
                  "patch (hidden tests added)")

    def cells(o: Outcome) -> tuple[str, ...]:
        bp = sum(1 for s in o.before.values() if s in ("PASSED", "XFAIL"))
        ap = sum(1 for s in o.after.values() if s in ("PASSED", "XFAIL"))
        return (o.task, f"{bp}/{len(o.before) - bp}", o.gold_method or "-",
                f"{ap}/{len(o.after) - ap}",
                f"{o.fail_to_pass_fixed}/{o.fail_to_pass_total}",
                f"{o.pass_to_pass_kept}/{o.pass_to_pass_total}",
                "[green]yes[/]" if o.resolved else "[red]no[/]")

    emit(outcomes, json_out, table, cells,
         lambda o: {**o.model_dump(mode="json"), "as_expected": o.as_expected})
    for o in outcomes:
        if o.error:
            err_console.print(f"[red]{o.task}:[/] {o.error}", soft_wrap=True)
    bad = [o.task for o in outcomes if not o.as_expected]
    if bad:
        err_console.print(f"[red]{len(bad)} task(s) did not behave as recorded:[/] "
                          f"{', '.join(bad)}")
        raise typer.Exit(1)
    notes(json_out).print(f"all {len(outcomes)} tasks: hidden tests fail before the gold patch "
                      "and everything passes after it")
