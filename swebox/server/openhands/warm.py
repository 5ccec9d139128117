"""Warm V1 runtimes: agent servers started ahead for the images clients start again.

A cold agent server answers about 1 s after its launch (forked from the zygote, zygote.py; 8-9
s when exec'd, importing itself). Training starts the same task image many times (every sample
of a group, every epoch), so after a V1 start of an image the server keeps `warm` spares of
it (default 1) with the agent server already healthy, and the next /start of that image takes
one and is ready at once; a spare is started again in the background. Spares of an image
nobody started for `ttl` seconds (default 600) are closed, and at most `warm_max` (default 4)
exist at once, the least recently wanted going first. Spares are the server's own: they carry
its labels and a lease (so a killed server's are collected like any other sandbox), do not
count against a key's limit until taken, and close with the server.

Settings (server attribute `openhands_<name>` or $SWEBOX_OPENHANDS_<NAME>): `v1_warm`,
`v1_warm_max`, `v1_warm_ttl`. `v1_warm=0` turns it off.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from swebox.errors import SweboxError
from swebox.sandbox import Sandbox
from swebox.server.openhands.runtimes import setting
from swebox.server.state import Server

Key = tuple[str, str, tuple[tuple[str, str], ...], tuple[str, ...]]


@dataclass
class Spare:
    sandbox: Sandbox
    agent: Any
    key: str  # the session API key the agent server enforces
    port: int | None = None
    started: float = field(default_factory=time.time)


def pool_key(image: str, workdir: str, env: dict[str, str], args: list[str]) -> Key:
    return (image, workdir, tuple(sorted(env.items())), tuple(args))


class WarmPool:
    def __init__(self, server: Server) -> None:
        self.server = server
        self.spares: dict[Key, list[Spare]] = {}
        self.filling: dict[Key, int] = {}
        self.wanted: dict[Key, float] = {}  # last /start of each key
        self.lock = threading.Lock()
        self.closed = False
        self._fill = ThreadPoolExecutor(2, thread_name_prefix="swebox-oh-warm")

    # Read at each use, so a running server's settings can change.
    @property
    def per_image(self) -> int:
        return int(setting(self.server, "v1_warm", "1") or 0)

    @property
    def max_total(self) -> int:
        return int(setting(self.server, "v1_warm_max", "4") or 0)

    @property
    def ttl(self) -> float:
        return float(setting(self.server, "v1_warm_ttl", "600") or 600)

    @property
    def enabled(self) -> bool:
        return self.per_image > 0 and self.max_total > 0

    def take(self, key: Key) -> Spare | None:
        """A healthy spare of `key`, or None; either way the pool tops `key` up."""
        with self.lock:
            self.wanted[key] = time.time()
            ready = self.spares.get(key, [])
            spare = ready.pop(0) if ready else None
        return spare

    def give_back(self, key: Key, spare: Spare) -> None:
        with self.lock:
            if not self.closed:
                self.spares.setdefault(key, []).insert(0, spare)
                return
        _close(spare)

    def top_up(self, key: Key, make: Callable[[], Spare]) -> None:
        """Start spares of `key` in the background until it has `per_image` (within
        `max_total`, making room by closing the least recently wanted key's spares)."""
        if not self.enabled:
            return
        evict: list[Spare] = []
        with self.lock:
            if self.closed:
                return
            need = self.per_image - len(self.spares.get(key, [])) - self.filling.get(key, 0)
            for _ in range(max(0, need)):
                total = sum(len(v) for v in self.spares.values()) + sum(self.filling.values())
                if total >= self.max_total:
                    victim = self._least_wanted(exclude=key)
                    if victim is None:
                        break
                    evict.append(self.spares[victim].pop(0))
                self.filling[key] = self.filling.get(key, 0) + 1
                self._fill.submit(self._make, key, make)
        for spare in evict:
            _close(spare)

    def _least_wanted(self, exclude: Key) -> Key | None:
        keys = [k for k, v in self.spares.items() if v and k != exclude]
        return min(keys, key=lambda k: self.wanted.get(k, 0)) if keys else None

    def _make(self, key: Key, make: Callable[[], Spare]) -> None:
        spare: Spare | None = None
        try:
            spare = make()
            deadline = time.monotonic() + 180
            failure = getattr(spare.agent, "failure", lambda: None)
            while not spare.agent.healthy():
                if failure() or time.monotonic() > deadline or self.closed:
                    raise SweboxError("a warm agent server did not come up")
                time.sleep(0.2)
        except Exception:
            if spare is not None:
                _close(spare)
            spare = None
        finally:
            with self.lock:
                self.filling[key] -= 1
                if spare is not None and not self.closed:
                    self.spares.setdefault(key, []).append(spare)
                    spare = None
        if spare is not None:  # the pool closed meanwhile
            _close(spare)

    def reap(self) -> None:
        """Close the spares of keys nobody started for `ttl` seconds."""
        now = time.time()
        with self.lock:
            stale = [k for k in self.spares if now - self.wanted.get(k, 0) > self.ttl]
            gone = [s for k in stale for s in self.spares.pop(k)]
        for spare in gone:
            _close(spare)

    def close(self) -> None:
        with self.lock:
            self.closed = True
            gone = [s for v in self.spares.values() for s in v]
            self.spares.clear()
        self._fill.shutdown(wait=True, cancel_futures=True)
        for spare in gone:
            _close(spare)


def _close(spare: Spare) -> None:
    with contextlib.suppress(Exception):
        spare.agent.close()
    with contextlib.suppress(Exception):
        spare.sandbox.close()


def new_key() -> str:
    return secrets.token_urlsafe(32)
