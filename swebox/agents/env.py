"""SweEnv: one task's episode as an RL environment.

    with SweEnv(task, dialect="r2e") as env:
        obs = env.reset()                      # task statement + tool schemas
        obs, reward, done, info = env.step(tool_call)

The agent works in a sandbox started for agents (swebox.grading.agent_sandbox: hidden tests
removed, SWE-smith's branch checked out), from a warm pool or a fork of a prepared state when
one is given. The episode ends on submit, the step limit, the wall-time limit or a fatal
sandbox error; its diff against the starting commit is then graded by the grader in a fresh
sandbox, never the agent's, and `info` carries the verdict. Each env owns its own sandbox, so
many envs may run in many threads at once; `areset`/`astep` are the same calls for asyncio.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from pydantic import BaseModel, Field

from swebox.agents.actions import ParsedAction, parse_action
from swebox.agents.dialects import get_dialect
from swebox.agents.dialects.base import Dialect
from swebox.agents.seat import Seat, open_seat
from swebox.agents.tools.base import ToolLimits
from swebox.errors import SandboxError, SweboxError
from swebox.grading.grader import GradeOptions, Verdict, grade
from swebox.jobs import stopping
from swebox.tasks.model import Task


class EpisodeLimits(BaseModel):
    max_steps: int = Field(default=50, ge=1)
    wall_time: float = Field(default=3600.0, gt=0, description="seconds for the whole episode")
    bash_timeout: float = Field(default=180.0, gt=0)
    output_chars: int = Field(default=16_000, ge=200)

    def tool_limits(self) -> ToolLimits:
        return ToolLimits(bash_timeout=self.bash_timeout, output_chars=self.output_chars)


class RewardOptions(BaseModel):
    """Reward shaping; off by default (the reward is 1.0 if resolved, else 0.0)."""

    partial: bool = False  # unresolved episodes earn the fraction of target tests passing
    format_penalty: float = Field(default=0.0, ge=0, description="subtracted per refused call")
    grade: bool = True  # False: no grading (reward 0, verdict None), for smoke runs


class Observation(BaseModel):
    """What reset returns: the prompt and the tools the agent may call."""

    text: str
    system: str = ""
    tools: list[dict[str, Any]] = Field(default_factory=list)

    def __str__(self) -> str:
        return self.text


DEFAULT_PIDS = 1024
_CLOSER = ThreadPoolExecutor(max_workers=8, thread_name_prefix="swebox-env-close")


def agent_sandbox_options(backend: str = "docker",
                          sandbox_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """How an agent's sandbox starts, wherever its seat comes from (a fresh start, a warm
    pool, a prepared state): with a pids limit by default, so that a fork bomb does not take
    the machine with it."""
    return {"backend": backend, "limits": {"pids": DEFAULT_PIDS}, **(sandbox_options or {})}


EXIT_REASONS = ("submitted", "max_steps", "wall_time", "sandbox_error", "closed")


class SweEnv:
    def __init__(self, task: Task, *, dialect: str | Dialect = "swebox",
                 backend: str = "docker", limits: EpisodeLimits | None = None,
                 reward: RewardOptions | None = None, grade_options: GradeOptions | None = None,
                 seat_factory: Callable[[], Seat] | None = None,
                 sandbox_options: dict[str, Any] | None = None) -> None:
        self.task = task
        self.dialect = dialect if isinstance(dialect, Dialect) else get_dialect(dialect)
        self.limits = limits or EpisodeLimits()
        self.reward_options = reward or RewardOptions()
        self.grade_options = grade_options or GradeOptions(backend=backend)
        tool_limits = self.limits.tool_limits()
        opts = agent_sandbox_options(backend, sandbox_options)
        self._new_seat = seat_factory or (lambda: open_seat(task, tool_limits, **opts))
        self.seat: Seat | None = None
        self._closing: Future[None] | None = None
        self._reset_state()

    def _reset_state(self) -> None:
        self.steps = 0
        self.refused = 0
        self.done = False
        self.exit_reason: str | None = None
        self.patch = ""
        self.verdict: Verdict | None = None
        self.reward = 0.0
        self.started = 0.0
        self.timings: dict[str, float] = {}

    # -- the environment API -------------------------------------------------------------
    def reset(self) -> Observation:
        self.close()
        self._reset_state()
        t0 = time.monotonic()
        self.seat = self._new_seat()
        self.started = time.monotonic()
        self.timings["reset"] = round(self.started - t0, 4)
        d = self.dialect
        text = d.instance_prompt.format(problem_statement=self.task.problem_statement,
                                        workdir=self.task.workdir)
        return Observation(text=text, system=d.system_prompt.format(workdir=self.task.workdir),
                           tools=d.schemas())

    def step(self, action: Any) -> tuple[str, float, bool, dict[str, Any]]:
        """Run the action's tool calls in order (stopping at a submit); returns the
        observation (the calls' texts joined), the reward (non-zero only at the end), whether
        the episode is done, and info: per-call results, the exit reason and the verdict."""
        if self.seat is None or self.done:
            raise SweboxError("step() on an environment that is not running",
                              hint="call reset() first; a finished episode needs a new reset()")
        parsed = action if isinstance(action, ParsedAction) else parse_action(
            action, self.dialect.bash_tool, self.dialect.bash_arg)
        self.steps += 1
        results: list[dict[str, Any]] = []
        submitted = False
        fatal: str | None = None
        if not parsed.calls:
            self.refused += 1
            text = self.dialect.format_error.format(why=parsed.format_error or "no action",
                                                    names=self.dialect.names)
            results.append({"tool_call_id": None, "name": None, "observation": text,
                            "refused": True})
        for call in parsed.calls:
            t0 = time.monotonic()
            try:
                text, submitted, refused = self.dialect.call(self.seat.ctx, call)
                if not submitted and call.form == "bash_block" and \
                        text.lstrip().startswith("COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"):
                    submitted = True  # mini-swe-agent's sentinel, first line of the output
            except SandboxError as e:
                text, refused, fatal = f"The sandbox failed: {e.message}", False, e.message
            self.refused += int(refused)
            results.append({"tool_call_id": call.id, "name": call.name, "observation": text,
                            "refused": refused, "duration": round(time.monotonic() - t0, 4)})
            if submitted or fatal:
                break
        observation = "\n\n".join(r["observation"] for r in results)
        info: dict[str, Any] = {"results": results, "steps": self.steps}
        if submitted:
            self._finish("submitted")
        elif fatal:
            self._finish("sandbox_error", detail=fatal)
        elif self.steps >= self.limits.max_steps:
            self._finish("max_steps")
        elif time.monotonic() - self.started >= self.limits.wall_time:
            self._finish("wall_time")
        if self.done:
            info.update(self.summary())
        return observation, self.reward, self.done, info

    def finish(self, reason: str = "closed") -> dict[str, Any]:
        """End a running episode from outside (the agent's own limit, an error); it is
        graded like any other. Returns the summary."""
        if self.seat is not None and not self.done:
            self._finish(reason)
        return self.summary()

    def summary(self) -> dict[str, Any]:
        return {"exit_reason": self.exit_reason, "reward": self.reward, "patch": self.patch,
                "verdict": self.verdict.model_dump(mode="json") if self.verdict else None,
                "steps": self.steps, "refused_calls": self.refused,
                "timings": dict(self.timings)}

    def close(self) -> None:
        """Close the episode's sandbox (waiting for a removal already under way)."""
        if self.seat is not None:
            self.seat.close()
            self.seat = None
        if self._closing is not None:
            self._closing.result()
            self._closing = None

    # -- the end of an episode -----------------------------------------------------------
    def _finish(self, reason: str, detail: str | None = None) -> None:
        assert self.seat is not None
        self.done = True
        self.exit_reason = reason if detail is None else f"{reason}: {detail}"
        self.timings["episode"] = round(time.monotonic() - self.started, 4)
        t0 = time.monotonic()
        try:
            self.patch = self._diff()
        except SweboxError as e:
            self.patch = ""
            self.exit_reason = f"{self.exit_reason}; the diff could not be taken: {e.message}"
        self.timings["diff"] = round(time.monotonic() - t0, 4)
        # The agent's sandbox goes in the background (an engine removal takes 0.1-0.3 s, more
        # under load) while grading starts its own; close() waits for it.
        seat, self.seat = self.seat, None
        self._closing = _CLOSER.submit(seat.close)
        if self.reward_options.grade and not stopping():
            t0 = time.monotonic()
            self.verdict, _ = grade(self.task, self.patch, self.grade_options)
            self.timings["grade"] = round(time.monotonic() - t0, 4)
        self.reward = self._score()

    def _diff(self) -> str:
        assert self.seat is not None
        sb = self.seat.sandbox
        try:
            return self.seat.diff()
        except SweboxError:
            # Processes the agent left behind (a fork bomb at the pids limit) can keep the
            # diff's own exec from starting: the episode is over, so they go first. Their pids
            # come free a moment after they die (~0.6 s for 900 processes, measured).
            sb.kill_processes()
            for wait in (0.3, 0.6, 1.0, 2.0, 4.0, 0.0):
                try:
                    return sb.diff(self.seat.start_commit)
                except SweboxError:
                    if not wait:
                        raise
                    time.sleep(wait)
        raise AssertionError("unreachable")

    def _score(self) -> float:
        v, opts = self.verdict, self.reward_options
        if v is None:
            return 0.0
        score = 1.0 if v.resolved else (v.partial if opts.partial else 0.0)
        return score - opts.format_penalty * self.refused

    # -- asyncio and context manager -----------------------------------------------------
    async def areset(self) -> Observation:
        return await asyncio.to_thread(self.reset)

    async def astep(self, action: Any) -> tuple[str, float, bool, dict[str, Any]]:
        return await asyncio.to_thread(self.step, action)

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)

    def __enter__(self) -> SweEnv:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
