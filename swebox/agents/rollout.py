"""Rollouts: tasks x n samples, run by an agent, `workers` episodes at a time.

    runs/NAME/
      trajectories.jsonl   one trajectory a line, appended as episodes finish
      predictions.jsonl    sample 0 of each task, for `swebox eval`
                           (sample k: predictions.sample-k.jsonl)
      errors.jsonl         episodes that could not run (no image, an engine error); they run
                           again next time
      report.json          totals, mean reward, resolved per task, exit reasons, tokens

Resumable: an episode is done when its trajectory line is in the file, so a run killed with
SIGKILL and started again runs only what is missing (a torn last line is cut first). The n
samples of a task start from one prepared state (a fork of its agent sandbox). On Ctrl-C or
an error nothing new starts and every sandbox of the process is closed (swebox.jobs).
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

import orjson
from pydantic import BaseModel, Field

from swebox.agents.env import EpisodeLimits, SweEnv, agent_sandbox_options
from swebox.agents.seat import PreparedState
from swebox.agents.trajectory import Trajectory, read_trajectories
from swebox.atomic import atomic_text, repair_tail
from swebox.jobs import run_all, stopping
from swebox.tasks.model import Task


class Agent(Protocol):
    name: str

    def run(self, env: SweEnv, sample: int = 0) -> Trajectory: ...


class RolloutReport(BaseModel):
    episodes: int = 0
    planned: int = 0
    ran_now: int = 0
    errors: int = 0
    mean_reward: float = 0.0
    resolved: int = 0
    resolved_tasks: list[str] = Field(default_factory=list)  # any sample resolved (pass@n)
    exit_reasons: dict[str, int] = Field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    wall_time: float = 0.0


def _done(path: Path) -> set[tuple[str, int]]:
    if not path.is_file():
        return set()
    return {t.key for t in read_trajectories(path)}


def run_rollouts(tasks: Iterable[Task], make_agent: Callable[[], Agent], out: Path, *,
                 n: int = 1, workers: int = 4, env_options: dict[str, Any] | None = None,
                 fork: bool = True,
                 on_start: Callable[[int, int], None] | None = None,
                 on_done: Callable[[Trajectory | None, str | None], None] | None = None,
                 ) -> RolloutReport:
    """Run what is missing from `out`, then write report.json; returns the report."""
    out.mkdir(parents=True, exist_ok=True)
    traj_path = out / "trajectories.jsonl"
    for p in (traj_path, out / "errors.jsonl", *out.glob("predictions*.jsonl")):
        repair_tail(p)
    done = _done(traj_path)
    tasks = list(tasks)
    env_options = dict(env_options or {})
    todo: list[tuple[Task, int, PreparedState | None]] = []
    for task in tasks:
        pending = [k for k in range(n) if (task.instance_id, k) not in done]
        state = None
        if fork and len(pending) > 1:
            state = PreparedState(
                task, len(pending), (env_options.get("limits") or EpisodeLimits()).tool_limits(),
                **agent_sandbox_options(env_options.get("backend", "docker"),
                                        env_options.get("sandbox_options")))
        todo += [(task, k, state) for k in pending]
    if on_start:
        on_start(len(tasks) * n, len(todo))
    lock = threading.Lock()
    failed = 0
    t0 = time.monotonic()
    with open(traj_path, "ab") as trajs, open(out / "errors.jsonl", "ab") as errs:

        def one(item: tuple[Task, int, PreparedState | None]) -> None:
            nonlocal failed
            task, sample, state = item
            agent = make_agent()
            opts = dict(env_options)
            if state is not None:
                opts["seat_factory"] = state.seat
            env = SweEnv(task, **opts)
            traj: Trajectory | None = None
            error: str | None = None
            try:
                traj = agent.run(env, sample)
            except Exception as e:  # one episode's failure must not stop the others
                error = f"{type(e).__name__}: {e}"
            finally:
                env.close()
            if stopping():  # the run is being torn down: this episode did not finish
                return
            with lock:
                if traj is not None:
                    trajs.write(traj.line())
                    trajs.flush()
                    _predict(out, traj)
                else:
                    failed += 1
                    errs.write(orjson.dumps({"instance_id": task.instance_id,
                                             "sample": sample, "error": error,
                                             "at": time.time()}) + b"\n")
                    errs.flush()
            if on_done:
                on_done(traj, error)

        try:
            for _ in run_all(one, todo, workers):
                pass
        except BaseException:
            for _, _, state in todo:
                if state is not None:
                    state.discard()
            raise
    report = summarise(traj_path, planned=len(tasks) * n, ran_now=len(todo))
    report.errors = failed
    report.wall_time = round(time.monotonic() - t0, 3)
    with atomic_text(out / "report.json") as f:
        json.dump(report.model_dump(), f, indent=2)
    return report


def _predict(out: Path, traj: Trajectory) -> None:
    name = "predictions.jsonl" if traj.sample == 0 else f"predictions.sample-{traj.sample}.jsonl"
    with open(out / name, "ab") as f:
        f.write(orjson.dumps({"instance_id": traj.instance_id,
                              "model_name_or_path": traj.model or traj.agent,
                              "model_patch": traj.patch}) + b"\n")


def summarise(traj_path: Path, planned: int = 0, ran_now: int = 0) -> RolloutReport:
    r = RolloutReport(planned=planned, ran_now=ran_now)
    reasons: Counter[str] = Counter()
    total = 0.0
    resolved_tasks: set[str] = set()
    if traj_path.is_file():
        for t in read_trajectories(traj_path):
            r.episodes += 1
            total += t.reward
            r.resolved += int(t.resolved)
            if t.resolved:
                resolved_tasks.add(t.instance_id)
            reasons[(t.exit_reason or "unknown").split(":")[0]] += 1
            r.prompt_tokens += t.usage.prompt_tokens
            r.completion_tokens += t.usage.completion_tokens
            r.cost += t.usage.cost
    r.mean_reward = round(total / r.episodes, 4) if r.episodes else 0.0
    r.resolved_tasks = sorted(resolved_tasks)
    r.exit_reasons = dict(reasons)
    return r
