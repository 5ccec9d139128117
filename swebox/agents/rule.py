"""The rule agent: deterministic, no model. It looks around the repository, runs the task's
tests, applies a given patch when it has one, runs the tests again and submits.

It is the quickest proof that images, sandboxes, tools and grading work on a node: with the
gold patch every task must reach reward 1, with none, reward 0 (seed 004's smoke test). It
speaks whatever dialect the env has, through the same tool calls a model would make.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from swebox.agents.actions import ToolCall
from swebox.agents.env import SweEnv
from swebox.agents.trajectory import Trajectory, Usage, record_turn
from swebox.tasks.model import Task
from swebox.tasks.specs import resolve_spec


class RuleAgent:
    name = "rule"

    def __init__(self, patch: str | None = None, *, use_gold: bool = False,
                 test_timeout: float = 600) -> None:
        self.patch = patch
        self.use_gold = use_gold
        self.test_timeout = test_timeout

    def _patch_for(self, task: Task) -> str | None:
        if self.use_gold:
            return task.gold_patch or None
        return self.patch

    def _plan(self, env: SweEnv) -> list[tuple[str, str]]:
        """(why, shell command) for each step before the submit."""
        task = env.task
        spec = resolve_spec(task)
        test = spec.command if spec is not None and spec.command else None
        steps = [("look at the repository", "git status --short | head -50; ls"),
                 ("see what the repository holds", "git ls-files | head -200")]
        if test:
            steps.append(("run the tests before any change",
                          f"timeout {int(self.test_timeout)} {test} 2>&1 | tail -40"))
        patch = self._patch_for(task)
        if patch:
            tag = "SWEBOX_PATCH_" + secrets.token_hex(4)
            tmp = f"/tmp/.swebox-rule-{tag}.patch"
            steps.append(("apply the given patch",
                          f"cat > {tmp} <<'{tag}'\n{patch.rstrip()}\n{tag}\n"
                          f"git apply -v {tmp} || patch -p1 --forward --batch < {tmp}; "
                          f"rc=$?; rm -f {tmp}; (exit $rc)"))
            if test:
                steps.append(("run the tests with the patch",
                              f"timeout {int(self.test_timeout)} {test} 2>&1 | tail -40"))
        return steps

    def _submit(self, env: SweEnv) -> ToolCall:
        d = env.dialect
        tool = next(t for t in d.tools if t.submits)
        return ToolCall(name=tool.name, arguments=dict(d.submit_args))

    def run(self, env: SweEnv, sample: int = 0) -> Trajectory:
        started_at = time.time()
        obs = env.reset()
        messages: list[dict[str, Any]] = [{"role": "system", "content": obs.system},
                                          {"role": "user", "content": obs.text}]
        d = env.dialect
        for why, command in self._plan(env):
            if env.done:
                break
            call = ToolCall(name=d.bash_tool, arguments={d.bash_arg: command})
            _, _, _, info = env.step(call)
            record_turn(messages, why, [call], info)
        if not env.done:
            call = self._submit(env)
            _, _, _, info = env.step(call)
            record_turn(messages, "submit", [call], info)
        s = env.summary()
        v = s["verdict"]
        return Trajectory(instance_id=env.task.instance_id, sample=sample, model=None,
                          agent=self.name, dialect=d.name, messages=messages, tools=obs.tools,
                          reward=s["reward"], resolved=bool(v and v.get("resolved")), verdict=v,
                          patch=s["patch"], exit_reason=s["exit_reason"], steps=s["steps"],
                          refused_calls=s["refused_calls"], usage=Usage(), timings=s["timings"],
                          started_at=started_at)
