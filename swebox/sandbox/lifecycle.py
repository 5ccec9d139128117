"""Ownership, leases and garbage collection of sandboxes.

Three independent mechanisms make sure nothing is left behind:
1. the owner closes its sandboxes (context managers; an atexit hook for the rest; the CLI turns
   SIGTERM/SIGHUP into a normal exit so these run);
2. every sandbox's PID 1 is its lease: it exits when the lease expires and the engine removes
   the container (AutoRemove), even if the owner was killed with SIGKILL;
3. `swebox gc` removes what is stopped, whose owner process is gone, or whose lease expired.
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import threading
import time
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from docker.errors import APIError, NotFound

from swebox import __version__
from swebox.sandbox import scripts

if TYPE_CHECKING:
    import docker

    from swebox.sandbox.base import Sandbox


L_OWNER = "swebox.owner"
L_OWNER_START = "swebox.owner_start"
L_LEASE = "swebox.lease"
L_TASK = "swebox.task"
L_KIND = "swebox.kind"
L_VERSION = "swebox.version"

HOST = socket.gethostname()


def _proc_start(pid: int) -> str:
    """Start time of a process in clock ticks (tells a reused pid from the original)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def owner_labels(kind: str, lease_seconds: float, task_id: str | None) -> dict[str, str]:
    pid = os.getpid()
    labels = {
        L_OWNER: f"{HOST}:{pid}",
        L_OWNER_START: _proc_start(pid),
        L_LEASE: f"{time.time() + lease_seconds:.0f}",
        L_KIND: kind,
        L_VERSION: __version__,
    }
    if task_id:
        labels[L_TASK] = task_id
    return labels


def owner_alive(labels: dict[str, str]) -> bool | None:
    """True/False when the owner ran on this host; None when it ran elsewhere (unknown)."""
    host, _, pid_s = labels.get(L_OWNER, "").rpartition(":")
    if host != HOST or not pid_s.isdigit():
        return None
    pid = int(pid_s)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    want = labels.get(L_OWNER_START)
    return not (want and _proc_start(pid) != want)


# -- in-process registry: close whatever the owner forgot, at exit --------------------------
_live: weakref.WeakSet[Sandbox] = weakref.WeakSet()
_live_lock = threading.Lock()


def track(sb: Sandbox) -> None:
    with _live_lock:
        _live.add(sb)


def untrack(sb: Sandbox) -> None:
    with _live_lock:
        _live.discard(sb)


def close_all() -> None:
    with _live_lock:
        boxes = list(_live)
    for sb in boxes:
        try:
            sb.close()
        except Exception:
            pass


atexit.register(close_all)


def install_signal_cleanup() -> None:
    """Turn SIGTERM and SIGHUP into SystemExit so `with` blocks and atexit clean up (the CLI
    calls this; SIGINT already raises KeyboardInterrupt)."""

    def _exit(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, _exit)


# -- garbage collection ---------------------------------------------------------------------
@dataclass
class Collected:
    kind: str  # "container" or "image"
    id: str
    name: str
    reason: str
    removed: bool


def _lease_expired(labels: dict[str, str], now: float) -> bool:
    try:
        return float(labels.get(L_LEASE, "inf")) <= now
    except ValueError:
        return True


def _container_reason(client: docker.DockerClient, info: dict[str, Any], now: float,
                      everything: bool) -> str | None:
    labels = info.get("Labels") or {}
    if everything:
        return "asked to remove all"
    if info.get("State") != "running":
        return f"not running ({info.get('State')})"
    if owner_alive(labels) is False:
        return "owner process is gone"
    if _lease_expired(labels, now):
        # The owner may have renewed the lease inside the sandbox: read the live value.
        try:
            ex = client.api.exec_create(info["Id"], ["/bin/sh", "-c", f"cat {scripts.LEASE_FILE}"])
            out = client.api.exec_start(ex["Id"]).decode().strip()
            if out and float(out) > now:
                return None
        except (APIError, ValueError):
            pass
        return "lease expired"
    return None


def collect(client: docker.DockerClient, *, everything: bool = False, dry_run: bool = False,
            now: float | None = None) -> list[Collected]:
    """Remove swebox containers that are stopped, orphaned or expired, then snapshot images
    nobody uses whose lease expired or whose owner is gone."""
    now = time.time() if now is None else now
    done: list[Collected] = []
    for info in client.api.containers(all=True, filters={"label": L_OWNER}):
        reason = _container_reason(client, info, now, everything)
        if reason is None:
            continue
        name = (info.get("Names") or [info["Id"][:12]])[0].lstrip("/")
        removed = False
        if not dry_run:
            try:
                client.api.remove_container(info["Id"], force=True)
                removed = True
            except NotFound:
                removed = True
            except APIError:
                removed = False
        done.append(Collected("container", info["Id"][:12], name, reason, removed))
    in_use = {c.get("ImageID") for c in client.api.containers(all=True)}
    for img in client.api.images(filters={"label": f"{L_KIND}=snapshot"}):
        labels = img.get("Labels") or {}
        if img["Id"] in in_use:
            continue
        if everything:
            reason = "asked to remove all"
        elif owner_alive(labels) is False:
            reason = "owner process is gone"
        elif _lease_expired(labels, now):
            reason = "lease expired"
        else:
            continue
        name = (img.get("RepoTags") or [img["Id"][7:19]])[0]
        removed = False
        if not dry_run:
            try:
                client.api.remove_image(img["Id"], force=True)
                removed = True
            except NotFound:
                removed = True
            except APIError:
                removed = False
        done.append(Collected("image", img["Id"][7:19], name, reason, removed))
    return done

