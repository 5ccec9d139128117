"""The OpenHands runtimes a swebox server holds: one record per `/start`, keyed by runtime id,
with the session id -> runtime id map the client looks runtimes up by, and the settings read
from the server (attributes) or the environment.

A record holds the sandbox (registered with the server under the owner's key, so limits,
metrics and closing work as for swebox's own sandboxes), the persistent shell and editor
history of the V0 action API (a `ToolContext`), the session API key, and the status the
client sees: running, paused or stopped.
"""

from __future__ import annotations

import os
import shlex
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from fastapi import HTTPException

from swebox.agents.tools.base import ToolContext
from swebox.sandbox import Sandbox
from swebox.server.state import Server

ACTION_THREADS = 256  # actions (commands that may run for minutes) run on a pool of their own
KEEP_STOPPED = 10_000  # stopped records remembered (for /sessions and /runtime answers)
CTX_KEY = "openhands"  # the runtime's shells, closed with the sandbox (Entry.sessions)


# -- settings ----------------------------------------------------------------------------------
def setting(server: Server, name: str, default: str | None = None) -> str | None:
    """`server.openhands_<name>` if set, else $SWEBOX_OPENHANDS_<NAME>, else the default."""
    value = getattr(server, f"openhands_{name}", None)
    if value is None:
        value = os.environ.get(f"SWEBOX_OPENHANDS_{name.upper()}") or None
    return default if value is None else str(value)


def is_skyrl(command: str | list[str]) -> bool:
    """SkyRL's OpenHands fork: its RemoteRuntime's port 88888888 is in the start command."""
    text = command if isinstance(command, str) else " ".join(command)
    return "88888888" in text


def ready_status(server: Server, command: str | list[str]) -> str:
    """What a started V0 runtime reports as pod_status: "ready" for OpenHands, "running" for
    SkyRL's fork (whose client waits for "running"; its command carries the port 88888888),
    unless the server says which one (`openhands_pod_status` / $SWEBOX_OPENHANDS_POD_STATUS)."""
    forced = setting(server, "pod_status")
    if forced in ("ready", "running"):
        return forced
    return "running" if is_skyrl(command) else "ready"


@dataclass
class Command:
    """What matters in the action server's start command (never run: swebox serves it)."""

    working_dir: str | None = None
    username: str | None = None
    user_id: int | None = None
    port: int | None = None
    plugins: list[str] = field(default_factory=list)


def parse_command(command: str | list[str]) -> Command:
    if isinstance(command, str):
        try:
            argv = shlex.split(command)
        except ValueError:  # an unbalanced quote: words are enough here
            argv = command.split()
    else:
        argv = [str(a) for a in command]
    out = Command()
    i = 0
    while i < len(argv):
        arg = argv[i]
        name, eq, inline = arg.partition("=")
        value = inline if eq else (argv[i + 1] if i + 1 < len(argv) else None)
        step = 1 if eq else 2
        if name == "--working-dir" and value is not None:
            out.working_dir = value
        elif name == "--username" and value is not None:
            out.username = value
        elif name == "--user-id" and value is not None and value.lstrip("-").isdigit():
            out.user_id = int(value)
        elif name == "--plugins":
            j = i + 1
            while j < len(argv) and not argv[j].startswith("--"):
                out.plugins.append(argv[j])
                j += 1
            i = j
            continue
        elif arg.isdigit() and out.port is None:
            out.port = int(arg)
            step = 1
        else:
            step = 1
        i += step
    return out


# -- records -----------------------------------------------------------------------------------
class Closer:
    """Closes what it holds once, and swallows every error (the server's close loop only
    expects SweboxError, and must go on to close the sandbox)."""

    def __init__(self, thing: Any) -> None:
        self.thing: Any = thing

    def close(self) -> None:
        thing, self.thing = self.thing, None
        if thing is not None:
            try:
                thing.close()
            except Exception:
                pass


@dataclass
class Runtime:
    runtime_id: str
    session_id: str
    owner: str
    image: str  # what the sandbox runs
    requested: str  # what /start named (a build tag stands for the image it was built from)
    sandbox: Sandbox
    session_key: str
    url: str
    workdir: str
    ready: str = "ready"  # pod_status once up: "ready", or "running" for SkyRL's fork
    skyrl: bool = False  # SkyRL's fork: its observations lack some later fields
    command: Command = field(default_factory=Command)
    status: str = "running"  # running | paused | stopped
    why: str = ""  # why it stopped
    ctx: ToolContext | None = None  # V0: the persistent shell and the editor's history
    agent: Any = None  # V1: the AgentServer inside the sandbox
    agent_state: str = "pending"  # V1: pending | ready | failed
    username: str | None = None  # who the shell runs as (`id -un`)
    hostname: str | None = None
    lease: float = 3600.0
    expires: float = 0.0
    started: float = field(default_factory=time.time)
    last_action: float = field(default_factory=time.time)
    lock: threading.Lock = field(default_factory=threading.Lock)  # one action at a time
    closers: list[Closer] = field(default_factory=list)  # its shells and agent server

    def pod_status(self) -> str:
        if self.status == "paused":
            return "paused"
        if self.status != "running":
            return "failed"
        if self.agent is not None:
            if self.agent_state == "pending":
                failed = _call(self.agent, "failure")
                if failed:
                    self.agent_state, self.why = "failed", str(failed)
                elif _call(self.agent, "healthy"):
                    self.agent_state = "ready"
            return self.agent_state
        return self.ready

    def describe(self) -> dict[str, Any]:
        """The runtime as /runtime, /sessions, /list and /sessions/batch show it."""
        pod = self.pod_status()
        out = {"runtime_id": self.runtime_id, "session_id": self.session_id,
               "url": self.url, "session_api_key": self.session_key, "work_hosts": {},
               "status": self.status, "pod_status": pod,
               "restart_count": 0, "restart_reasons": [], "image": self.requested}
        if self.why:  # why it failed or stopped
            out["error"] = self.why
        return out


def _call(agent: Any, method: str) -> Any:
    """agent.method(), None when it has no such method or it fails."""
    try:
        fn = getattr(agent, method, None)
        return fn() if fn is not None else None
    except Exception:
        return None


class Runtimes:
    """Every runtime of this server. Thread-safe (routes run in FastAPI's thread pool)."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.lock = threading.Lock()
        self.by_id: dict[str, Runtime] = {}
        self.sessions: dict[tuple[str, str], str] = {}  # (owner, session id) -> runtime id
        self.pool = ThreadPoolExecutor(ACTION_THREADS, thread_name_prefix="swebox-openhands")

    def add(self, rt: Runtime) -> None:
        with self.lock:
            self.by_id[rt.runtime_id] = rt
            self.sessions[(rt.owner, rt.session_id)] = rt.runtime_id
            stopped = [k for k, r in self.by_id.items() if r.status == "stopped"]
            for k in stopped[:max(0, len(stopped) - KEEP_STOPPED)]:
                old = self.by_id.pop(k)
                if self.sessions.get((old.owner, old.session_id)) == k:
                    del self.sessions[(old.owner, old.session_id)]

    def find(self, runtime_id: str) -> Runtime | None:
        with self.lock:
            rt = self.by_id.get(runtime_id)
        if rt is not None:
            self.check(rt)
        return rt

    def get(self, owner: str, runtime_id: str) -> Runtime:
        """The owner's runtime, or 404 (another key's runtime does not exist for this key)."""
        rt = self.find(runtime_id)
        if rt is None or rt.owner != owner:
            raise HTTPException(404, f"no runtime {runtime_id}")
        return rt

    def by_session(self, owner: str, session_id: str) -> Runtime | None:
        with self.lock:
            rid = self.sessions.get((owner, session_id))
        return self.find(rid) if rid else None

    def mine(self, owner: str) -> list[Runtime]:
        with self.lock:
            rts = [r for r in self.by_id.values() if r.owner == owner]
        for rt in rts:
            self.check(rt)
        return rts

    def check(self, rt: Runtime) -> None:
        """A runtime whose sandbox the server no longer holds (closed through swebox's own API,
        or the server stopped) is stopped."""
        if rt.status != "stopped":
            with self.server.lock:
                gone = rt.sandbox.id not in self.server.boxes
            if gone:
                self._closed(rt, "its sandbox was closed")

    def stop(self, rt: Runtime, why: str) -> None:
        """Close the runtime's sandbox (its shells and agent server with it)."""
        if rt.status == "stopped":
            return
        self._closed(rt, why)
        self.server.close(rt.sandbox.id, why)

    def _closed(self, rt: Runtime, why: str) -> None:
        rt.status, rt.why = "stopped", why
        for closer in rt.closers:
            closer.close()
        rt.ctx = None

    def clear(self) -> None:
        """At server shutdown (after the server closed its sandboxes): forget everything."""
        with self.lock:
            rts = list(self.by_id.values())
            self.by_id.clear()
            self.sessions.clear()
        for rt in rts:
            if rt.status != "stopped":
                self._closed(rt, "the server stopped")
        self.pool.shutdown(wait=False, cancel_futures=True)

    def renew_if_due(self, rt: Runtime) -> None:
        """Keep a used runtime's lease going: renewed once less than half of it is left."""
        now = time.time()
        rt.last_action = now
        if rt.expires - now < rt.lease / 2:
            try:
                rt.expires = rt.sandbox.renew(rt.lease)
            except Exception:
                pass


def register_context(server: Server, rt: Runtime) -> None:
    """Hang the runtime's shells (and agent server) on the server's entry of its sandbox, so
    the server closes them when it closes the sandbox."""
    rt.closers = [Closer(thing) for thing in (rt.ctx, rt.agent) if thing is not None]
    with server.lock:
        entry = server.boxes.get(rt.sandbox.id)
        if entry is not None:
            for i, closer in enumerate(rt.closers):
                entry.sessions[f"{CTX_KEY}-{i}"] = closer
