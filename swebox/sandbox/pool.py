"""A warm pool: N started sandboxes of one config, ready to hand out at once.

`acquire()` takes a started sandbox from a queue (no engine call on the hot path); a background
thread starts replacements so the pool refills while callers work. A sandbox handed out belongs
to the caller, who closes it; sandboxes are never reused, so every acquire gets a fresh state.
Idle sandboxes have their lease renewed so a pool can sit ready for longer than one lease.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

from swebox.errors import SandboxError, SandboxTimeout
from swebox.sandbox.models import SandboxConfig


class Pooled(Protocol):
    """What a pool holds: a sandbox, or something that owns one (an agent's seat)."""

    def renew(self, lease: float | None = None) -> float: ...

    def close(self) -> None: ...


T = TypeVar("T", bound=Pooled)


class SandboxPool(Generic[T]):
    def __init__(self, config: SandboxConfig, size: int, *, starters: int = 2,
                 start: Callable[[SandboxConfig], T] | None = None) -> None:
        if size < 1:
            raise ValueError("pool size must be at least 1")
        from swebox.sandbox import start_sandbox

        self.config = config
        self.size = size
        def default(c: SandboxConfig) -> Any:
            return start_sandbox(config=c)

        self._start: Callable[[SandboxConfig], T] = start or default
        self._ready: queue.Queue[T] = queue.Queue()
        self._starting = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self.last_error: BaseException | None = None
        self._threads = [threading.Thread(target=self._refill, name=f"swebox-pool-{i}",
                                          daemon=True) for i in range(max(1, starters))]
        for t in self._threads:
            t.start()

    def _refill(self) -> None:
        while not self._closed:
            with self._lock:
                need = self._ready.qsize() + self._starting < self.size
                if need:
                    self._starting += 1
            if not need:
                self._renew_idle()
                self._wake.wait(1.0)
                self._wake.clear()
                continue
            try:
                sb = self._start(self.config)
            except BaseException as e:  # keep the pool alive; report on acquire
                self.last_error = e
                time.sleep(1.0)
                continue
            finally:
                with self._lock:
                    self._starting -= 1
            if self._closed:
                sb.close()
                return
            self._ready.put(sb)

    def _renew_idle(self) -> None:
        for sb in list(self._ready.queue):
            expires = getattr(sb, "expires", 0.0)
            if expires and expires - time.time() < self.config.lease / 2:
                try:
                    sb.renew()
                except SandboxError:
                    pass

    def ready(self) -> int:
        return self._ready.qsize()

    def wait_ready(self, n: int | None = None, timeout: float = 120) -> None:
        """Block until `n` (default: all) sandboxes are started."""
        want = self.size if n is None else n
        deadline = time.monotonic() + timeout
        while self._ready.qsize() < want:
            if time.monotonic() > deadline:
                raise SandboxTimeout(f"pool has {self._ready.qsize()}/{want} ready after "
                                     f"{timeout:g}s", hint=f"last error: {self.last_error}")
            time.sleep(0.02)

    def acquire(self, timeout: float = 120) -> T:
        """A started sandbox, at once when one is ready; the caller closes it."""
        if self._closed:
            raise SandboxError("the pool is closed")
        try:
            sb = self._ready.get(timeout=timeout)
        except queue.Empty:
            raise SandboxTimeout(f"no sandbox ready within {timeout:g}s",
                                 hint=f"last start error: {self.last_error}") from None
        self._wake.set()
        return sb

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        for t in self._threads:
            t.join(timeout=120)
        while True:
            try:
                self._ready.get_nowait().close()
            except queue.Empty:
                break

    def __enter__(self) -> SandboxPool[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
