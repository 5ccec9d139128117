"""Where an episode sits: a started agent sandbox with its shells open and its starting commit
known, so that reset hands it over without another engine call.

Three ways to get one: `open_seat` starts one now; `SeatPool` keeps some started for a task
(a warm pool: reset takes one at once, a background thread starts replacements); `fork_seats`
prepares a task's state once and starts `n` seats from it (a GRPO group: n samples of one task
from one prepared state).
"""

from __future__ import annotations

import shlex
import threading
from typing import Any

from swebox.agents.tools.base import ToolContext, ToolLimits
from swebox.grading.agent_sandbox import start_agent_sandbox
from swebox.sandbox import Sandbox, SandboxConfig, scripts
from swebox.sandbox.pool import SandboxPool
from swebox.tasks.model import Task


class Seat:
    def __init__(self, sandbox: Sandbox, ctx: ToolContext, start_commit: str | None) -> None:
        self.sandbox = sandbox
        self.ctx = ctx
        self.start_commit = start_commit  # what the episode's diff is taken against
        self._closed = False
        self._lock = threading.Lock()

    @classmethod
    def ready(cls, sandbox: Sandbox, workdir: str, limits: ToolLimits | None = None) -> Seat:
        """Open the shells and read the starting commit; on failure the sandbox is closed."""
        try:
            ctx = ToolContext(sandbox=sandbox, workdir=workdir, limits=limits or ToolLimits())
            ctx.session  # noqa: B018 - open the agent's shell now, not on its first call
            head = ctx.quiet("git rev-parse HEAD 2>/dev/null", timeout=60).output.strip()
            return cls(sandbox, ctx, head if len(head) in (40, 64) else None)
        except BaseException:
            sandbox.close()
            raise

    def diff(self) -> str:
        """The episode's changes against its starting commit, run in the tools' shell (a
        round trip instead of an engine exec: ~2 ms against ~100 ms, and far more under
        load). The same program as `Sandbox.diff`, whose exec path is the fallback."""
        ref = self.start_commit or self.sandbox.config.base_commit or "HEAD"
        res = self.ctx.quiet(f"sh -c {shlex.quote(scripts.DIFF)} swebox-diff "
                             f"{shlex.quote(ref)} 2>/dev/null", timeout=600)
        if res.exit_code == 0 and not res.truncated and not res.timed_out:
            return res.output
        return self.sandbox.diff(ref)

    @property
    def expires(self) -> float:
        return float(getattr(self.sandbox, "expires", 0.0) or 0.0)

    def renew(self, lease: float | None = None) -> float:
        return self.sandbox.renew(lease)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        try:
            self.ctx.close()
        finally:
            self.sandbox.close()


def open_seat(task: Task, tool_limits: ToolLimits | None = None, **options: Any) -> Seat:
    """A seat for `task`, started now (options as for `start_sandbox`)."""
    return Seat.ready(start_agent_sandbox(task, **options), task.workdir, tool_limits)


class SeatPool:
    """A warm pool of seats for one task. `acquire()` is the env's seat factory."""

    def __init__(self, task: Task, size: int, tool_limits: ToolLimits | None = None,
                 **options: Any) -> None:
        self.task = task
        cfg = SandboxConfig(image=task.run_image or "unknown", workdir=task.workdir,
                            **{k: v for k, v in options.items() if k in SandboxConfig.model_fields
                               and k not in ("image", "workdir")})
        self._pool: SandboxPool[Seat] = SandboxPool(
            cfg, size, start=lambda _cfg: open_seat(task, tool_limits, **options))

    def acquire(self, timeout: float = 300) -> Seat:
        return self._pool.acquire(timeout)

    def wait_ready(self, n: int | None = None, timeout: float = 300) -> None:
        self._pool.wait_ready(n, timeout)

    def close(self) -> None:
        self._pool.close()

    def __enter__(self) -> SeatPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def fork_seats(task: Task, n: int, tool_limits: ToolLimits | None = None,
               **options: Any) -> list[Seat]:
    """`n` seats started from one prepared state of `task` (a snapshot of its agent sandbox);
    the snapshot goes when the last of them closes."""
    prepared = start_agent_sandbox(task, **options)
    try:
        sandboxes = prepared.fork(n)
    finally:
        prepared.close()
    seats: list[Seat] = []
    try:
        for sb in sandboxes:
            seats.append(Seat.ready(sb, task.workdir, tool_limits))
    except BaseException:
        for s in seats:
            s.close()
        for sb in sandboxes[len(seats) + 1:]:
            sb.close()
        raise
    return seats


class PreparedState:
    """A task's agent state prepared once, on first use, and shared by `uses` episodes: each
    starts from its snapshot (a fork). The snapshot goes once every use has started and the
    last seat started from it has closed."""

    def __init__(self, task: Task, uses: int, tool_limits: ToolLimits | None = None,
                 **options: Any) -> None:
        self.task, self.uses, self.limits, self.options = task, uses, tool_limits, options
        self._snap: Any = None
        self._lock = threading.Lock()

    def seat(self) -> Seat:
        with self._lock:
            if self.uses <= 0:
                raise RuntimeError("every use of this prepared state has been taken")
            if self._snap is None:
                prepared = start_agent_sandbox(self.task, **self.options)
                try:
                    self._snap = prepared.snapshot()
                finally:
                    prepared.close()
            snap = self._snap
            self.uses -= 1
            last = self.uses == 0
        try:
            sandbox = snap.start(1)[0]
        finally:
            if last:
                snap.remove()
        return Seat.ready(sandbox, self.task.workdir, self.limits)

    def discard(self) -> None:
        """Give up the remaining uses (the run was interrupted)."""
        with self._lock:
            self.uses = 0
            snap, self._snap = self._snap, None
        if snap is not None:
            snap.remove()
