"""`swebox sandbox run|shell`: start a sandbox from any image and use it."""

from __future__ import annotations

import signal
import sys
from typing import Any

import typer

from swebox.sandbox import start_sandbox
from swebox.sandbox.models import make_limits

app = typer.Typer(help="Run commands in a sandbox started from any image.", no_args_is_help=True)

BACKEND = typer.Option("docker", "--backend", "-b", help="docker, podman or bwrap (no "
                       "engine: needs root and bubblewrap).")
WORKDIR = typer.Option("/testbed", "--workdir", "-w", help="Working directory in the sandbox.")
NETWORK = typer.Option(False, "--network/--no-network", help="Give the sandbox network access.")
CPUS = typer.Option(None, "--cpus", help="CPU limit, e.g. 1.5.")
MEMORY = typer.Option(None, "--memory", help="Memory limit, e.g. 2g.")
PIDS = typer.Option(None, "--pids", help="Process limit.")
ENV = typer.Option([], "--env", "-e", help="KEY=VALUE, repeatable.")
PULL = typer.Option("missing", "--pull", help="missing, never or always.")


def _options(backend: str, workdir: str, network: bool, cpus: float | None, memory: str | None,
             pids: int | None, env: list[str], pull: str) -> dict[str, Any]:
    from swebox.errors import BadInput

    pairs = {}
    for item in env:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise BadInput(f"--env {item!r} is not KEY=VALUE")
        pairs[key] = value
    limits = make_limits(cpus=cpus, memory=memory, pids=pids, network=network)
    return dict(backend=backend, workdir=workdir, limits=limits, env=pairs, pull=pull)


@app.command("run", context_settings={"allow_extra_args": True,
                                      "ignore_unknown_options": True})
def run(
    image: str = typer.Argument(..., help="Image to start."),
    command: list[str] = typer.Argument(None, help="Command (after --)."),
    timeout: float | None = typer.Option(None, "--timeout", "-t",
                                         help="Seconds; the command's process group is killed."),
    backend: str = BACKEND, workdir: str = WORKDIR, network: bool = NETWORK,
    cpus: float | None = CPUS, memory: str | None = MEMORY, pids: int | None = PIDS,
    env: list[str] = ENV, pull: str = PULL,
) -> None:
    """Run one command; print its output; exit with its exit code (124 on timeout)."""
    from swebox.errors import BadInput

    if not command:
        raise BadInput("no command given", hint="usage: swebox sandbox run IMAGE -- CMD...")
    opts = _options(backend, workdir, network, cpus, memory, pids, env, pull)
    line = command[0] if len(command) == 1 else command
    with start_sandbox(image, **opts) as sb:
        res = sb.exec(line, timeout=timeout)
    sys.stdout.write(res.stdout)
    sys.stderr.write(res.stderr)
    if res.timed_out:
        sys.stderr.write(f"swebox: command timed out after {timeout:g}s; its process group "
                         "was killed\n")
    raise typer.Exit(124 if res.timed_out else res.exit_code)


@app.command("shell")
def shell(
    image: str = typer.Argument(..., help="Image to start."),
    backend: str = BACKEND, workdir: str = WORKDIR, network: bool = NETWORK,
    cpus: float | None = CPUS, memory: str | None = MEMORY, pids: int | None = PIDS,
    env: list[str] = ENV, pull: str = PULL,
) -> None:
    """An interactive persistent shell (Ctrl-C interrupts the command, Ctrl-D leaves)."""
    opts = _options(backend, workdir, network, cpus, memory, pids, env, pull)
    with start_sandbox(image, **opts) as sb, sb.shell() as session:
        session.run(f"cd {workdir} 2>/dev/null || cd /")
        running = {"on": False}

        def on_sigint(_sig: int, _frame: Any) -> None:
            if running["on"]:
                session.interrupt()
            else:
                raise KeyboardInterrupt

        previous = signal.signal(signal.SIGINT, on_sigint)
        try:
            while True:
                try:
                    line = input(f"{session.cwd}$ ")
                except (EOFError, KeyboardInterrupt):
                    print()
                    break
                if not line.strip():
                    continue
                running["on"] = True
                try:
                    res = session.run(line)
                finally:
                    running["on"] = False
                sys.stdout.write(res.output)
                sys.stdout.flush()
        finally:
            signal.signal(signal.SIGINT, previous)

