"""The `swebox` command: a thin shell over the library.

Each command group lives in its own module and only parses options, calls one library function
and renders the result. Errors from the library arrive as `SweboxError` and become one line on
stderr and the error's exit code; `--debug` shows the traceback instead.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from swebox import __version__
from swebox.errors import SweboxError

app = typer.Typer(
    name="swebox",
    help="Sandboxes, datasets, grading and rollouts for software-engineering agents.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
err_console = Console(stderr=True, highlight=False)
# Piped into another program, a table must not cut values with "…" to fit 80 columns (a
# `| grep` would miss them): full width then; a terminal keeps its own width.
out_console = Console(highlight=False, width=None if sys.stdout.isatty() else 10_000)
_state = {"debug": False}


def _version(value: bool) -> None:
    if value:
        print(f"swebox {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    _state["debug"] = debug


def _register() -> None:
    from swebox.cli import (
        cache,
        doctor,
        evaluate,
        gc,
        images,
        integrations,
        parse_log,
        rollout,
        samples,
        sandbox,
        serve,
        tasks,
    )

    app.add_typer(sandbox.app, name="sandbox")
    app.add_typer(images.app, name="images")
    app.add_typer(cache.app, name="cache")
    app.add_typer(tasks.app, name="tasks")
    app.add_typer(evaluate.app, name="eval")
    evaluate.app.command("parse-log")(parse_log.parse_log)
    app.command("validate")(evaluate.validate)
    app.add_typer(samples.app, name="samples")
    app.command("gc")(gc.gc)
    app.command("doctor")(doctor.doctor)
    app.command("rollout")(rollout.rollout)
    app.add_typer(rollout.trajectories_app, name="trajectories")
    app.add_typer(integrations.app, name="integrations")
    app.add_typer(serve.app, name="serve")


_register()


def main() -> None:
    """Entry point: run the app, turning library errors into one-line messages."""
    from swebox.sandbox.lifecycle import close_all, install_signal_cleanup

    install_signal_cleanup()
    debug = "--debug" in sys.argv[1:]
    try:
        # Without standalone mode click returns (not raises) the code of a `typer.Exit`.
        rc = app(standalone_mode=False)
        if isinstance(rc, int) and rc:
            close_all()
            if rc == 130:  # click turned Ctrl-C into Abort, and that into exit code 130
                err_console.print("[yellow]interrupted; sandboxes cleaned up[/]")
            sys.exit(rc)
    except SweboxError as e:
        close_all()
        if debug:
            raise
        err_console.print(f"[bold red]error:[/] {e}", soft_wrap=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        close_all()
        err_console.print("[yellow]interrupted; sandboxes cleaned up[/]")
        sys.exit(130)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except typer.Abort:
        close_all()
        sys.exit(130)
    except SystemExit:
        close_all()
        raise
    except Exception as e:  # click usage errors and the unexpected
        # Usage errors: typer vendors its own click, so match the exception by its interface.
        show, code = getattr(e, "show", None), getattr(e, "exit_code", None)
        if callable(show) and isinstance(code, int):
            show()
            sys.exit(code)
        close_all()
        if debug:
            raise
        err_console.print(f"[bold red]internal error:[/] {type(e).__name__}: {e} "
                          "(rerun with --debug for the traceback and report it)", soft_wrap=True)
        sys.exit(70)
