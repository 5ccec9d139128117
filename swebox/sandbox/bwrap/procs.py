"""Host processes of bwrap sandboxes: /proc look-ups, killing groups and what a sandbox left,
and the thread that spawns supervisors."""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path


def _proc_start(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        return ""


def _pgrp(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return int(f.read().rsplit(b")", 1)[1].split()[2])
    except (OSError, IndexError, ValueError):
        return -1


def _state(pid: int) -> str:
    """A process's state letter ("" once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0].decode()
    except (OSError, IndexError):
        return ""


def _kill_group(pgid: int, sig: int, *, spare_leader: bool = False) -> None:
    """Signal a process group; `spare_leader` signals every member but the leader itself."""
    if pgid <= 1:
        return
    if not spare_leader:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)
        return
    # Oldest first, one at a time, each until it is dead: a shell then learns that its
    # background jobs died before its foreground command returns, and reports them with the
    # interrupted command rather than in the output of the next one (as the in-container
    # `scripts.KILL_GROUP_EXCEPT_LEADER` loop does, being slower).
    members = sorted(int(e.name) for e in os.scandir("/proc")
                     if e.name.isdigit() and int(e.name) != pgid and _pgrp(int(e.name)) == pgid)
    for pid in members:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            continue
        deadline = time.monotonic() + 0.05
        while _state(pid) not in ("", "Z", "X") and time.monotonic() < deadline:
            time.sleep(0.001)


def _wait_gone(pid: int, start: str, timeout: float) -> bool:
    """Wait until the process (told apart by its start time) is dead; a zombie is dead."""
    deadline = time.monotonic() + timeout
    while start and _proc_start(pid) == start and _state(pid) not in ("", "Z", "X"):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _kill_sandbox_processes(state: Path, cgroups: list[str]) -> None:
    """SIGKILL what is left of a sandbox whose supervisor is gone: bwrap (its command line
    names the state directory; killing the sandbox's PID 1 ends its pid namespace) and anything
    still in its cgroups."""
    needle = str(state).encode() + b"/"
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                found = needle in f.read()
        except OSError:
            continue
        if found:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(entry.name), signal.SIGKILL)
    for cg in cgroups:
        try:
            pids = Path(cg, "cgroup.procs").read_text().split()
        except OSError:
            continue
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)


# -- spawning from one long-lived thread -------------------------------------------------------
class _Spawner:
    """Starts supervisors from one daemon thread. PR_SET_PDEATHSIG fires when the parent
    *thread* exits: from a pool worker, sandboxes would die with the worker."""

    def __init__(self) -> None:
        self._jobs: queue.Queue[tuple[Callable[[], subprocess.Popen[bytes]],
                                      Future[subprocess.Popen[bytes]]]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def run(self, make: Callable[[], subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="swebox-bwrap-spawner",
                                                daemon=True)
                self._thread.start()
        fut: Future[subprocess.Popen[bytes]] = Future()
        self._jobs.put((make, fut))
        return fut.result()

    def _loop(self) -> None:
        while True:
            make, fut = self._jobs.get()
            try:
                fut.set_result(make())
            except BaseException as e:
                fut.set_exception(e)


_spawner = _Spawner()
