"""Killing a container's processes from the host, for when nothing inside can: a fork bomb at
the pids limit refuses even the kill's own exec. Both need the engine on this machine (the
pids are the host's)."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from typing import Any

from docker.errors import APIError

from swebox.errors import SandboxError


def kill_exec_group(api: Any, exec_id: str) -> None:
    """SIGKILL an exec's process group (a last resort when the in-sandbox watcher did not
    act)."""
    try:
        pid = int(api.exec_inspect(exec_id).get("Pid") or 0)
        if pid > 0:
            os.killpg(os.getpgid(pid), signal.SIGKILL)
    except (APIError, OSError, ValueError):
        pass


def kill_all_but_init(api: Any, container: str, name: str) -> int:
    """Kill every process of `container` but its init; returns how many. The container is
    frozen, each process SIGKILLed, then thawed; repeated while any is left."""
    killed = 0
    try:
        init = int(api.inspect_container(container)["State"]["Pid"])
        for _ in range(20):
            # The freezer can fail while processes fork as fast as they can ("unable to
            # freeze"): then kill without it, and freeze on the next round.
            try:
                api.pause(container)
                paused = True
            except APIError:
                paused = False
            try:
                top = api.top(container)
                col = top["Titles"].index("PID")
                pids = [int(p[col]) for p in top.get("Processes") or [] if int(p[col]) != init]
                for pid in pids:
                    with contextlib.suppress(OSError):
                        os.kill(pid, signal.SIGKILL)
            finally:
                if paused:
                    api.unpause(container)
            killed += len(pids)
            if not pids:
                break
            time.sleep(0.05)
    except (APIError, KeyError, ValueError) as e:
        raise SandboxError(f"cannot kill the processes of {name}: {e}") from e
    return killed
