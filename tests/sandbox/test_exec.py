"""Stateless exec on real engines: output, exit codes, process-group timeouts, output caps."""

from __future__ import annotations

import time

from swebox.sandbox import Sandbox, start_sandbox
from tests.conftest import BASE_IMAGE, image_for


def _count(sb: Sandbox, pattern: str) -> int:
    # `pgrep -f` would match this probe itself; count processes by their argv instead.
    res = sb.exec(f"for d in /proc/[0-9]*; do tr '\\0' ' ' < $d/cmdline 2>/dev/null; echo; done"
                  f" | grep -c '^{pattern}' || true")
    return int(res.stdout.strip() or 0)


def test_output_streams_and_exit_code(sandbox: Sandbox) -> None:
    res = sandbox.exec("echo out; echo err >&2; exit 3", timeout=20)
    assert res.exit_code == 3 and not res.ok and not res.timed_out
    assert res.stdout == "out\n" and res.stderr == "err\n"
    assert sorted(res.output.splitlines()) == ["err", "out"]
    assert res.duration > 0


def test_argv_commands_are_quoted(sandbox: Sandbox) -> None:
    res = sandbox.exec(["printf", "%s|", "a b", "$HOME", "it's"])
    assert res.stdout == "a b|$HOME|it's|"


def test_cwd_and_env(sandbox: Sandbox) -> None:
    res = sandbox.exec('echo "$PWD $FOO"', cwd="/tmp", env={"FOO": "bar baz"}, timeout=10)
    assert res.stdout == "/tmp bar baz\n"


def test_timeout_kills_the_whole_process_group(sandbox: Sandbox) -> None:
    cmd = ("trap '' TERM; (sleep 301 &); for i in 1 2 3; do sh -c 'trap \"\" TERM; sleep 301' & "
           "done; sleep 301")
    start = time.monotonic()
    res = sandbox.exec(cmd, timeout=1.5)
    elapsed = time.monotonic() - start
    assert res.timed_out and res.exit_code == 124
    assert elapsed < 1.5 + 2 + 3  # generous: the contract is timeout + 2 s inside the sandbox
    deadline = time.monotonic() + 3
    while _count(sandbox, "sleep 301") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _count(sandbox, "sleep 301") == 0


def test_command_finishing_in_time_keeps_its_daemons(sandbox: Sandbox) -> None:
    res = sandbox.exec("nohup sleep 302 >/dev/null 2>&1 & echo started", timeout=1)
    assert res.ok and res.stdout == "started\n"
    time.sleep(2.5)  # past the deadline: the watcher must have left without killing
    assert _count(sandbox, "sleep 302") == 1


def test_exit_code_124_without_timeout_is_not_a_timeout(sandbox: Sandbox) -> None:
    res = sandbox.exec("exit 124", timeout=30)
    assert res.exit_code == 124 and not res.timed_out


def test_output_is_capped_with_head_and_tail(backend: str) -> None:
    with start_sandbox(image_for(backend, BASE_IMAGE), backend=backend, pull="never",
                       workdir="/", output_limit=4096) as sb:
        res = sb.exec("echo FIRST; head -c 1000000 /dev/zero | tr '\\0' x; echo; echo LAST")
    assert res.truncated and res.exit_code == 0
    assert res.output.startswith("FIRST") and res.output.rstrip().endswith("LAST")
    assert len(res.output) < 4096 + 100
    assert "bytes of output truncated" in res.output


def test_binary_and_invalid_utf8_output(sandbox: Sandbox) -> None:
    res = sandbox.exec("printf 'a\\377b'")
    assert res.stdout == "a\ufffdb"
