"""The `swebox` command as a user runs it: a real process, real engine, real exit codes."""

from __future__ import annotations

import subprocess
import sys

from swebox import __version__
from tests.conftest import BASE_IMAGE


def swebox(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "swebox.cli", *args], capture_output=True,
                          text=True, timeout=timeout)


def test_version() -> None:
    done = swebox("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"swebox {__version__}"


def test_sandbox_run_prints_output_and_exits_with_its_code(docker_backend: str) -> None:
    done = swebox("sandbox", "run", BASE_IMAGE, "--", "sh", "-c", "echo hi; echo oops >&2; exit 7")
    assert done.returncode == 7
    assert done.stdout == "hi\n" and "oops" in done.stderr


def test_sandbox_run_timeout_exits_124(docker_backend: str) -> None:
    done = swebox("sandbox", "run", BASE_IMAGE, "--timeout", "1", "--", "sleep 60")
    assert done.returncode == 124 and "timed out" in done.stderr


def test_sandbox_run_podman(backend: str) -> None:
    done = swebox("sandbox", "run", BASE_IMAGE, "--backend", backend, "-w", "/tmp", "--", "pwd")
    assert done.returncode == 0 and done.stdout == "/tmp\n"


def test_bad_limit_is_one_line_exit_2() -> None:
    done = swebox("sandbox", "run", BASE_IMAGE, "--memory", "lots", "--", "true")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "memory" in done.stderr
    assert "Traceback" not in done.stderr


def test_unknown_image_exit_3(docker_backend: str) -> None:
    done = swebox("sandbox", "run", "swebox/nope:missing", "--pull", "never", "--", "true")
    assert done.returncode == 3 and "swebox/nope:missing" in done.stderr
    assert "Traceback" not in done.stderr


def test_debug_shows_traceback(docker_backend: str) -> None:
    done = swebox("--debug", "sandbox", "run", "swebox/nope:missing", "--pull", "never", "--",
                  "true")
    assert done.returncode != 0 and "Traceback" in done.stderr


def test_unreachable_engine_exit_4() -> None:
    done = subprocess.run([sys.executable, "-m", "swebox.cli", "sandbox", "run", BASE_IMAGE,
                           "--", "true"], capture_output=True, text=True, timeout=60,
                          env={"DOCKER_HOST": "unix:///tmp/swebox-absent.sock",
                               "PATH": "/usr/bin:/bin"})
    assert done.returncode == 4 and "/tmp/swebox-absent.sock" in done.stderr


def test_shell_reads_commands_from_stdin(docker_backend: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "swebox.cli", "sandbox", "shell", BASE_IMAGE,
                           "-w", "/"], input="cd /etc\nexport A=1\necho $A $PWD\n",
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "1 /etc" in proc.stdout


def test_gc_dry_run(docker_backend: str) -> None:
    done = swebox("gc", "--dry-run")
    assert done.returncode == 0
