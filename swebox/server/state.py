"""What the runtime server holds: its keys, its sandboxes (each with its owner), admission
limits and metrics. Thread-safe: routes run in FastAPI's thread pool."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import Header, HTTPException
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from swebox.errors import PatchFailed, SandboxError, SweboxError
from swebox.sandbox import Sandbox, Snapshot
from swebox.server.keys import KeyStore
from swebox.server.placement import LocalPlacement, Placement

ANONYMOUS = "-"
L_SERVER = "swebox.server"  # which server (by name) started a sandbox
L_KEY = "swebox.server.key"  # under which key


@dataclass
class Entry:
    owner: str
    sandbox: Sandbox
    sessions: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.time)


class Server:
    def __init__(self, keys: KeyStore | None, backend: str = "docker",
                 max_sandboxes: int = 64, max_per_key: int = 32, name: str = "default",
                 placement: Placement | None = None) -> None:
        self.placement = placement or LocalPlacement(backend)
        self.keys, self.backend, self.name = keys, self.placement.backend, name
        self.max_sandboxes, self.max_per_key = max_sandboxes, max_per_key
        self.boxes: dict[str, Entry] = {}
        self.snapshots: dict[str, tuple[str, Snapshot]] = {}
        self.episodes: dict[str, tuple[str, Any, float]] = {}  # id -> owner, SweEnv, started
        self.periodic: list[Callable[[], None]] = []  # run by the reaper every few seconds
        self.max_upload = 4 * 1024**3  # bytes of one upload; past it, 413
        self.dead: dict[str, str] = {}  # sandbox id -> why it ended (answered with 410)
        self.pending: dict[str, int] = {}  # starts admitted and under way, per key
        self.lock = threading.Lock()
        self.registry = CollectorRegistry()
        self.live = Gauge("swebox_sandboxes_live", "Sandboxes running", registry=self.registry)
        self.starts = Counter("swebox_sandbox_starts", "Sandboxes started", ["outcome"],
                              registry=self.registry)
        self.refused = Counter("swebox_admission_refused", "Starts refused with 429",
                               registry=self.registry)
        self.exec_seconds = Histogram("swebox_exec_seconds", "Exec latency",
                                      registry=self.registry)

    # -- auth ---------------------------------------------------------------------------------
    async def owner(self, authorization: str | None = Header(None),
                    x_api_key: str | None = Header(None)) -> str:
        """The key's name (a FastAPI dependency): `Authorization: Bearer` or `X-API-Key`.
        Async because it never blocks: a sync dependency costs a thread-pool hop per call."""
        return self.who(authorization, x_api_key)

    def who(self, authorization: str | None, x_api_key: str | None) -> str:
        if self.keys is None:
            return ANONYMOUS
        key = x_api_key or (authorization[7:] if authorization and
                            authorization.lower().startswith("bearer ") else None)
        name = self.keys.verify(key)
        if name is None:
            raise HTTPException(401, "missing or wrong API key",
                                headers={"WWW-Authenticate": "Bearer"})
        return name

    # -- the sandboxes --------------------------------------------------------------------
    def entry(self, owner: str, sid: str) -> Entry:
        with self.lock:
            entry = self.boxes.get(sid)
            why = self.dead.get(sid)
        if entry is None or entry.owner != owner:
            if why is not None and why.startswith(owner + "\0"):
                raise HTTPException(410, f"sandbox {sid} is gone: {why.split(chr(0), 1)[1]}")
            raise HTTPException(404, f"no sandbox {sid}")
        return entry

    def get(self, owner: str, sid: str) -> Sandbox:
        return self.entry(owner, sid).sandbox

    @contextlib.contextmanager
    def using(self, owner: str, sid: str) -> Iterator[Sandbox]:
        """The sandbox, for one operation; if the operation fails because the sandbox died
        (lease, OOM, stopped from outside), it is dropped and the answer is 410 with why."""
        entry = self.entry(owner, sid)
        try:
            yield entry.sandbox
        except PatchFailed:  # the patch's fault, never the sandbox's
            raise
        except SandboxError as e:
            why = death(entry.sandbox)
            if why is None:
                raise
            with contextlib.suppress(SweboxError):
                self.close(sid, why)
            raise HTTPException(410, f"sandbox {sid} is gone: {why}") from e

    def session(self, owner: str, sid: str, name: str) -> Any:
        sess = self.entry(owner, sid).sessions.get(name)
        if sess is None:
            raise HTTPException(404, f"no session {name} in sandbox {sid}")
        return sess

    def snapshot(self, owner: str, name: str) -> Snapshot:
        with self.lock:
            got = self.snapshots.get(name)
        if got is None or got[0] != owner:
            raise HTTPException(404, f"no snapshot {name}")
        return got[1]

    def drop_snapshot(self, name: str) -> None:
        with self.lock:
            got = self.snapshots.pop(name, None)
        if got is not None:
            got[1].remove()  # storage goes once its last sandbox closes

    def start_many(self, owner: str, snap: Snapshot, n: int,
                   overrides: dict[str, Any]) -> list[Sandbox]:
        """`n` sandboxes from a snapshot, each admitted like a start."""
        allowed = {"workdir", "env", "limits", "lease", "task_id", "output_limit", "user",
                   "base_commit"}
        bad = sorted(set(overrides) - allowed)
        if bad:
            raise HTTPException(422, f"cannot override {', '.join(bad)} when starting from a "
                                f"snapshot (allowed: {', '.join(sorted(allowed))})")
        admitted = 0
        try:
            for _ in range(n):
                self.admit(owner)
                admitted += 1
            boxes = snap.start(n, **overrides)
        except SweboxError:
            self.starts.labels("failed").inc()
            raise
        finally:
            with self.lock:
                self.pending[owner] -= admitted
        for sb in boxes:
            self.register(owner, sb)
        self.starts.labels("ok").inc(n)
        return boxes

    def admit(self, owner: str) -> None:
        with self.lock:
            mine = sum(1 for e in self.boxes.values() if e.owner == owner) + \
                sum(1 for e in self.episodes.values() if e[0] == owner) + \
                self.pending.get(owner, 0)
            total = len(self.boxes) + len(self.episodes) + sum(self.pending.values())
            if total >= self.max_sandboxes or mine >= self.max_per_key:
                self.refused.inc()
                which = "the server's" if total >= self.max_sandboxes else "this key's"
                raise HTTPException(429, f"{which} sandbox limit is reached",
                                    headers={"Retry-After": "2"})
            self.pending[owner] = self.pending.get(owner, 0) + 1

    @contextlib.contextmanager
    def slot(self, owner: str) -> Iterator[None]:
        """Room for one sandbox while the block runs (grading; an episode until registered)."""
        self.admit(owner)
        try:
            yield
        finally:
            with self.lock:
                self.pending[owner] -= 1

    def labels(self, owner: str) -> dict[str, str]:
        return {L_SERVER: self.name, L_KEY: owner}

    def start(self, owner: str, image: str, **options: Any) -> Sandbox:
        """Admit, start where the placement says with this server's labels, and register."""
        self.admit(owner)
        labels = {**dict(options.pop("labels", None) or {}), **self.labels(owner)}
        try:
            sb = self.placement.start(image, labels=labels, **options)
        except SweboxError:
            self.starts.labels("failed").inc()
            raise
        finally:
            with self.lock:
                self.pending[owner] -= 1
        self.register(owner, sb)
        self.starts.labels("ok").inc()
        return sb

    def register(self, owner: str, sb: Sandbox) -> None:
        with self.lock:
            self.boxes[sb.id] = Entry(owner, sb)
            self.live.set(len(self.boxes))

    def unregister(self, sid: str, why: str = "closed by its owner") -> Entry | None:
        with self.lock:
            entry = self.boxes.pop(sid, None)
            if entry is not None:
                self.dead[sid] = f"{entry.owner}\0{why}"
                if len(self.dead) > 10_000:  # remember the recent ones only
                    self.dead.pop(next(iter(self.dead)))
            self.live.set(len(self.boxes))
        return entry

    def close(self, sid: str, why: str = "closed by its owner") -> None:
        entry = self.unregister(sid, why)
        if entry is not None:
            for sess in list(entry.sessions.values()):
                try:
                    sess.close()
                except SweboxError:
                    pass
            entry.sandbox.close()

    def reap(self, now: float | None = None) -> int:
        """Drop the sandboxes whose lease ran out (their init has ended them); returns how
        many. The server calls this every few seconds."""
        now = time.time() if now is None else now
        with self.lock:
            gone = [sid for sid, e in self.boxes.items()
                    if 0 < (getattr(e.sandbox, "expires", 0) or 0) < now]
            stale = [eid for eid, (_, env, t0) in self.episodes.items()
                     if now - t0 > env.limits.wall_time + 600]
            ended = [self.episodes.pop(eid)[1] for eid in stale]
        for env in ended:  # a client that vanished mid-episode; the wall time is long past
            with contextlib.suppress(Exception):
                env.close()
        for sid in gone:
            with contextlib.suppress(SweboxError):
                self.close(sid, "its lease expired")
        return len(gone)

    def close_all(self) -> None:
        with self.lock:
            sids = list(self.boxes)
            snaps = list(self.snapshots)
            envs = [e[1] for e in self.episodes.values()]
            self.episodes.clear()
        for env in envs:
            with contextlib.suppress(Exception):
                env.close()
        for sid in sids:
            with contextlib.suppress(SweboxError):
                self.close(sid, "the server stopped")
        for name in snaps:
            with contextlib.suppress(SweboxError):
                self.drop_snapshot(name)


def death(sb: Sandbox) -> str | None:
    """Why a sandbox is dead, or None when it still runs a command. (Whether the OOM killer
    ever struck is asked only of a dead one: a live sandbox survives a command's OOM kill.)"""
    expires = getattr(sb, "expires", 0) or 0
    if 0 < expires < time.time():
        return "its lease expired"
    try:
        sb.exec(["true"], timeout=10)
        return None
    except SweboxError as e:
        stopped = e.message
    try:
        if sb.oom_killed():
            return "the OOM killer ended it"
    except SweboxError:
        pass
    return f"it stopped ({stopped})"
