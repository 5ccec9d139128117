"""rLLM: a swebox sandbox behind rLLM's `Sandbox` protocol, and a swebox episode behind its
environment contract (`BaseEnv`: from_dict / reset / step / close / is_multithread_safe).

rLLM is not on PyPI, so nothing here imports it: both classes satisfy its protocols
structurally (rLLM's `Sandbox` is a runtime-checkable Protocol; its trainer builds envs with
`env_class.from_dict(extra_info)` and calls `reset`, `step`, `compute_final_reward`, `close`).
Subclass `rllm.environments.base.base_env.BaseEnv` yourself if your code checks isinstance:

    class SweboxBaseEnv(SweboxEnv, BaseEnv): pass

rLLM side                                    swebox side
Sandbox.exec(command, timeout, user) -> str  Sandbox.exec: stdout; RuntimeError on non-zero
Sandbox.upload_file / upload_dir             Sandbox.upload (streamed tar)
Sandbox.close / is_alive (never raises)      Sandbox.close / an `true` exec
BaseEnv.from_dict(extra_info)                SweEnv(task_from_row(extra_info), ...)
reset() -> (instruction, info)               SweEnv.reset()
step(action) -> (obs, reward, done, info)    SweEnv.step(R2E text or tool calls)
compute_final_reward()                       the grader's reward (fresh sandbox)
"""

from __future__ import annotations

import json
from typing import Any

from swebox.agents.env import EpisodeLimits, RewardOptions, SweEnv
from swebox.errors import SweboxError
from swebox.integrations.common import task_from_row
from swebox.sandbox import Sandbox, start_sandbox


class RllmSandbox:
    """rLLM's `Sandbox` protocol over a swebox sandbox (any backend)."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    @classmethod
    def create(cls, image: str, *, backend: str = "docker", workdir: str = "/testbed",
               **options: Any) -> RllmSandbox:
        return cls(start_sandbox(image, backend=backend, workdir=workdir, **options))

    def exec(self, command: str, timeout: float | None = None, user: str | None = None) -> str:
        """stdout of `command` (in bash when the image has it); RuntimeError on a non-zero
        exit or a timeout, with the exit code and the stderr's tail, as rLLM's backends do."""
        argv = ["/bin/sh", "-c", command]
        if user:
            argv = ["su", "-s", "/bin/sh", user, "-c", command]
        res = self.sandbox.exec(argv, timeout=timeout)
        if res.timed_out:
            raise RuntimeError(f"Command timed out after {timeout:g}s in sandbox "
                               f"{self.sandbox.id}: {command}")
        if res.exit_code != 0:
            tail = (res.stderr or res.output)[-2000:]
            raise RuntimeError(f"Command failed (exit {res.exit_code}) in sandbox "
                               f"{self.sandbox.id}: {command}\nstderr (tail):\n{tail}")
        return res.stdout

    def upload_file(self, local_path: str, remote_path: str) -> None:
        self.sandbox.upload(local_path, remote_path)

    def upload_dir(self, local_path: str, remote_path: str) -> None:
        self.sandbox.upload(local_path, remote_path)

    def close(self) -> None:
        self.sandbox.close()

    def is_alive(self) -> bool:
        try:
            return self.sandbox.exec("true", timeout=10).exit_code == 0
        except Exception:  # the protocol: any error in the check means "not alive"
            return False


class SweboxEnv:
    """rLLM's legacy environment contract over one SweEnv episode. `extra_info` is the row's
    dict as rLLM's trainer passes it (R2E-Gym or SWE-bench rows, or `swebox tasks convert
    --to rllm` rows); env options may ride in it: dialect, backend, max_steps, step_timeout,
    wall_time, partial_reward, grade."""

    def __init__(self, entry: dict[str, Any], *, dialect: str = "r2e", backend: str = "docker",
                 max_steps: int = 50, step_timeout: float = 90.0, wall_time: float = 3600.0,
                 partial_reward: bool = False, grade: bool = True) -> None:
        self.entry = entry
        self.idx: Any = entry.get("index")
        self.env = SweEnv(task_from_row(entry), dialect=dialect, backend=backend,
                          limits=EpisodeLimits(max_steps=max_steps, bash_timeout=step_timeout,
                                               wall_time=wall_time),
                          reward=RewardOptions(partial=partial_reward, grade=grade))

    @staticmethod
    def from_dict(extra_info: dict[str, Any] | str) -> SweboxEnv:
        info = json.loads(extra_info) if isinstance(extra_info, str) else dict(extra_info)
        known = ("dialect", "backend", "max_steps", "step_timeout", "wall_time",
                 "partial_reward", "grade")
        return SweboxEnv(info, **{k: info[k] for k in known if k in info})

    @staticmethod
    def is_multithread_safe() -> bool:
        return True  # each env owns its own sandbox

    def reset(self) -> tuple[str, dict[str, Any]]:
        obs = self.env.reset()
        return obs.text, {"system": obs.system, "tools": obs.tools}

    def step(self, action: Any) -> tuple[str, float, bool, dict[str, Any]]:
        """One action: R2E's `<function=...>` text (what rLLM's SWE agent sends), a bash
        block, or OpenAI tool calls. An empty action is answered, not an error."""
        if hasattr(action, "to_xml_string"):  # rLLM's SWEAction
            action = action.to_xml_string()
        if self.env.done:
            raise SweboxError("step() after the episode ended", hint="call reset()")
        return self.env.step(action)

    def compute_final_reward(self) -> float:
        """The graded reward; an episode still running is ended (and graded) first."""
        if not self.env.done and self.env.seat is not None:
            self.env.finish("closed")
        return self.env.reward

    def close(self) -> None:
        self.env.close()
