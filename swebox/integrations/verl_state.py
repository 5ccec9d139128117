"""Where the verl adapter keeps its trajectories: a process-wide registry, trajectory key ->
one `SweEnv` (one sandbox), with leases. Nothing here imports verl.

verl's ToolAgentLoop creates, executes and releases a tool instance on *every* call and never
says when a trajectory is over, so a trajectory cannot live in a tool instance. It lives here:
- it opens on the first call that names its key (the task is read then, from the call's
  `create_kwargs`), and later calls with that key, from any tool, run in the same sandbox;
- it ends when the episode does (the submit tool, the step or wall-time limit, a sandbox
  that cannot be used any more): `SweEnv` grades it and the sandbox goes;
- or when it is abandoned: the owner (verl's per-trajectory `AgentData`) is garbage-collected,
  or no call came for `lease` seconds. A reaper thread closes those sandboxes, ungraded.
An ended trajectory leaves a tombstone (its summary) for `lease` seconds, so that a call that
still comes for it is told the episode is over instead of starting a new sandbox.

Calls of one trajectory run one at a time (a lock per trajectory); trajectories run in
parallel on the registry's own thread pool, never on the caller's event loop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from swebox.agents.actions import ToolCall
from swebox.agents.env import EpisodeLimits, RewardOptions, SweEnv
from swebox.errors import BadInput, SweboxError
from swebox.tasks.model import Task

log = logging.getLogger("swebox.integrations.verl")


class TrajectoryOptions(BaseModel):
    """A verl tool's `config` (its YAML `config:` block) as swebox reads it: what a trajectory
    opened by that tool runs with. `type` is verl's own key; `tool` names the dialect's tool."""

    model_config = ConfigDict(extra="forbid")

    type: str = "native"
    tool: str | None = None
    dialect: str = "swebox"
    backend: str = "docker"
    max_steps: int = Field(default=50, ge=1)
    wall_time: float = Field(default=3600.0, gt=0)
    bash_timeout: float = Field(default=180.0, gt=0)
    output_chars: int = Field(default=16_000, ge=200)
    partial_reward: bool = False
    format_penalty: float = Field(default=0.0, ge=0)
    grade: bool = True
    lease: float = Field(default=900.0, gt=0, description="seconds without a call before an "
                         "unfinished trajectory is reclaimed (its sandbox closed, ungraded)")
    sandbox_options: dict[str, Any] = Field(default_factory=dict)

    def new_env(self, task: Task) -> SweEnv:
        return SweEnv(task, dialect=self.dialect, backend=self.backend,
                      limits=EpisodeLimits(max_steps=self.max_steps, wall_time=self.wall_time,
                                           bash_timeout=self.bash_timeout,
                                           output_chars=self.output_chars),
                      reward=RewardOptions(partial=self.partial_reward,
                                           format_penalty=self.format_penalty,
                                           grade=self.grade),
                      sandbox_options=self.sandbox_options or None)


@dataclass
class StepResult:
    text: str
    reward: float
    done: bool
    info: dict[str, Any]


@dataclass
class Trajectory:
    key: str
    options: TrajectoryOptions
    owner: weakref.ref[Any] | None
    env: SweEnv | None = None
    last_used: float = field(default_factory=time.monotonic)
    busy: int = 0
    orphaned: bool = False  # the owner was garbage-collected
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class Tombstone:
    summary: dict[str, Any]
    until: float  # monotonic time it may be forgotten


ENDED = ("The episode is over ({reason}); no more tool calls run in it. Reply without a tool "
         "call to end the conversation.")
FAILED = "The environment could not start, so no tool can run: {error}"


class Registry:
    """trajectory key -> Trajectory. `registry()` is the process-wide one."""

    def __init__(self, workers: int = 64, tick: float = 5.0) -> None:
        self._lock = threading.Lock()
        self._live: dict[str, Trajectory] = {}
        self._ended: dict[str, Tombstone] = {}
        self._wake = threading.Event()
        self._tick = tick
        self._reaper: threading.Thread | None = None
        self._closed = False
        self.executor = ThreadPoolExecutor(max_workers=workers,
                                           thread_name_prefix="swebox-verl")
        self.counts = {"opened": 0, "ended": 0, "reclaimed": 0, "failed": 0}

    # -- calls ---------------------------------------------------------------------------
    async def acall(self, key: str, owner: Any, task_source: Callable[[], Task],
                    options: TrajectoryOptions, tool: str, args: Any) -> StepResult:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self.executor, lambda: self.call(key, owner, task_source, options, tool, args))

    def call(self, key: str, owner: Any, task_source: Callable[[], Task],
             options: TrajectoryOptions, tool: str, args: Any) -> StepResult:
        """Run one tool call (by the dialect's tool name; `args` as the model sent them) in
        trajectory `key`, opening it from `task_source()` on its first call. Blocking."""
        with self._lock:
            if self._closed:
                raise SweboxError("the verl trajectory registry is shut down")
            traj = self._live.get(key)
            if traj is not None and traj.orphaned and traj.busy == 0:
                # Its owner is gone and this key came back (a reused id): not the same one.
                self._retire(traj, "abandoned")
                traj = None
            if traj is None:
                tomb = self._ended.get(key)
                if tomb is not None:
                    return self._over(tomb.summary)
                traj = Trajectory(key, options, _ref(owner, key, self))
                self._live[key] = traj
                self._start_reaper(options.lease)
            traj.busy += 1
            traj.last_used = time.monotonic()
        try:
            with traj.lock:
                return self._step(traj, task_source, tool, args)
        finally:
            with self._lock:
                traj.busy -= 1
                traj.last_used = time.monotonic()

    def _step(self, traj: Trajectory, task_source: Callable[[], Task], tool: str,
              args: Any) -> StepResult:
        with self._lock:
            if self._live.get(traj.key) is not traj:  # reclaimed while this call waited
                tomb = self._ended.get(traj.key)
                return self._over(tomb.summary if tomb else {"exit_reason": "closed"})
        if traj.env is None:
            try:
                env = traj.options.new_env(task_source())
                env.reset()
            except Exception as e:
                msg = e.message if isinstance(e, SweboxError) else f"{type(e).__name__}: {e}"
                log.warning("trajectory %s could not start: %s", traj.key, msg)
                self._end(traj, {"exit_reason": f"sandbox_error: {msg}", "reward": 0.0,
                                 "steps": None}, "failed")
                return StepResult(FAILED.format(error=msg), 0.0, True,
                                  {"exit_reason": f"sandbox_error: {msg}"})
            traj.env = env
            with self._lock:
                self.counts["opened"] += 1
        env = traj.env
        try:
            call = ToolCall(name=tool, arguments=args) if isinstance(args, dict) else \
                ToolCall(name=tool, error=f"the arguments of {tool} must be a JSON object")
            text, reward, done, info = env.step(call)
        except BaseException as e:
            self._end(traj, {**env.summary(), "exit_reason": f"error: {e!r}", "reward": 0.0},
                      "failed")
            raise
        if done:
            self._end(traj, env.summary(), "ended")
        return StepResult(text, reward, done, info)

    @staticmethod
    def _over(summary: dict[str, Any]) -> StepResult:
        reason = str(summary.get("exit_reason") or "closed")
        info = {"exit_reason": reason, "after_end": True}
        if reason.startswith("sandbox_error") and summary.get("steps") is None:
            return StepResult(FAILED.format(error=reason.partition(": ")[2]), 0.0, True, info)
        return StepResult(ENDED.format(reason=reason), 0.0, True, info)

    def _end(self, traj: Trajectory, summary: dict[str, Any], count: str) -> None:
        """Forget a trajectory (its tombstone stays, unless its owner is gone) and close its
        env. Called with `traj.lock` held."""
        with self._lock:
            if self._live.get(traj.key) is traj:
                del self._live[traj.key]
            if traj.orphaned:
                self._ended.pop(traj.key, None)
            else:
                self._ended[traj.key] = Tombstone(summary,
                                                  time.monotonic() + traj.options.lease)
            self.counts[count] += 1
        env, traj.env = traj.env, None
        if env is not None:
            try:
                env.close()
            except SweboxError as e:  # the engine went away: the sandbox's own lease ends it
                log.warning("closing trajectory %s: %s", traj.key, e.message)

    # -- what verl never says: the end of an abandoned trajectory -------------------------
    def _retire(self, traj: Trajectory, reason: str) -> None:
        """Take an idle trajectory out of reach (called with the registry lock held) and close
        it on the pool. No call can reach it any more: a later one with its key is told the
        episode is over."""
        del self._live[traj.key]
        if not traj.orphaned:
            self._ended[traj.key] = Tombstone({"exit_reason": reason},
                                              time.monotonic() + traj.options.lease)
        self.executor.submit(self._close_retired, traj, reason)

    def _close_retired(self, traj: Trajectory, reason: str) -> None:
        with traj.lock:
            summary = traj.env.summary() if traj.env is not None else {}
            summary.update(exit_reason=reason, reward=0.0)
            self._end(traj, summary, "reclaimed")
        log.info("trajectory %s reclaimed (%s)", traj.key, reason)

    def _orphaned(self, key: str) -> None:
        """The owner is gone (a finalizer: it runs on whichever thread dropped the owner, so
        it only marks and wakes the reaper)."""
        with self._lock:
            traj = self._live.get(key)
            if traj is not None:
                traj.orphaned = True
            self._ended.pop(key, None)
        self._wake.set()

    def reap(self) -> int:
        """Retire every trajectory that is abandoned (owner gone, or idle past its lease) and
        not in a call, and forget expired tombstones. Returns how many were retired; their
        sandboxes close on the pool."""
        now = time.monotonic()
        with self._lock:
            idle = [t for t in self._live.values() if t.busy == 0 and
                    (t.orphaned or now - t.last_used >= t.options.lease)]
            for t in idle:
                self._retire(t, "abandoned" if t.orphaned else "lease_expired")
            for k in [k for k, tomb in self._ended.items() if tomb.until <= now]:
                del self._ended[k]
        return len(idle)

    def _start_reaper(self, lease: float) -> None:
        tick = min(self._tick, max(0.05, lease / 4))
        if self._reaper is None or not self._reaper.is_alive():
            self._tick = tick
            self._reaper = threading.Thread(target=self._reap_forever, daemon=True,
                                            name="swebox-verl-reaper")
            self._reaper.start()
        elif tick < self._tick:
            self._tick = tick
            self._wake.set()

    def _reap_forever(self) -> None:
        while not self._closed:
            self._wake.wait(self._tick)
            self._wake.clear()
            try:
                self.reap()
            except Exception:  # the reaper must outlive any one bad close
                log.exception("reaping verl trajectories")

    # -- inspection, ending from outside, shutdown ----------------------------------------
    def summary(self, key: str) -> dict[str, Any] | None:
        """The summary of an ended trajectory (reward, exit reason, verdict, patch), or None
        while it runs or once its tombstone is gone."""
        with self._lock:
            tomb = self._ended.get(key)
            return dict(tomb.summary) if tomb else None

    def live(self) -> list[str]:
        with self._lock:
            return list(self._live)

    def end(self, key: str, reason: str = "closed") -> dict[str, Any] | None:
        """End a trajectory from outside (a custom agent loop that knows it is done): graded
        like any other end. Returns its summary; None if no trajectory has that key."""
        with self._lock:
            traj = self._live.get(key)
        if traj is None:
            return self.summary(key)
        with traj.lock:
            if self._live.get(key) is not traj:
                return self.summary(key)
            summary = traj.env.finish(reason) if traj.env is not None else {
                "exit_reason": reason, "reward": 0.0}
            self._end(traj, summary, "ended")
            return summary

    def shutdown(self) -> None:
        """Close every live trajectory (ungraded) and stop the reaper."""
        with self._lock:
            self._closed = True
            live = list(self._live.values())
            self._live.clear()
        self._wake.set()
        for t in live:
            with t.lock:
                env, t.env = t.env, None
                if env is not None:
                    env.close()
        self.executor.shutdown(wait=True)


def _ref(owner: Any, key: str, reg: Registry) -> weakref.ref[Any] | None:
    if owner is None:
        return None
    try:
        ref = weakref.ref(owner)
        weakref.finalize(owner, reg._orphaned, key)
    except TypeError:  # not weak-referenceable: the lease alone reclaims it
        return None
    return ref


_REGISTRY: Registry | None = None
_REGISTRY_LOCK = threading.Lock()


def registry() -> Registry:
    global _REGISTRY
    with _REGISTRY_LOCK:
        if _REGISTRY is None or _REGISTRY._closed:
            _REGISTRY = Registry()
        return _REGISTRY


def read_task(source: Any) -> Task:
    """The task in a tool's `create_kwargs`: `task` (a swebox Task, its dict or JSON, or a
    dataset row), `extra_info` (an rLLM/verl row's), or the create_kwargs themselves."""
    from swebox.integrations.common import task_from_row

    if isinstance(source, dict):
        for k in ("task", "extra_info"):
            if source.get(k) is not None:
                return task_from_row(source[k])
        if source.get("instance_id"):
            return task_from_row(source)
    raise BadInput("no task in the tool's create_kwargs",
                   hint="give each tool `create_kwargs: {task: <swebox task JSON>}` in the "
                        "row's extra_info.tools_kwargs (swebox.integrations.verl.verl_row)")
