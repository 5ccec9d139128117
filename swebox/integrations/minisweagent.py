"""mini-swe-agent (2.4.6) on swebox: a sandbox behind mini's Environment protocol, its
SWE-bench batch runner fed per-instance tasks, and swebox's grader as the reward.

    from swebox.integrations.minisweagent import SweboxEnvironment, grade_submission
    env = SweboxEnvironment(task=row, **swebench_yaml["environment"])  # a task row or image=
    info = DefaultAgent(model, env, **swebench_yaml["agent"]).run(row["problem_statement"])
    env.cleanup()
    reward = float(grade_submission(row, info["submission"]).resolved)

`environment_class: swebox.integrations.minisweagent.SweboxEnvironment` selects it from a mini
config. The SWE-bench batch runner hands an environment class only `image`, and only for its
built-in classes; run it through swebox instead, which gives each instance's row to the env
(its image, workdir and hidden tests out of reach):

    python -m swebox.integrations.minisweagent swebench -c swebench.yaml \
        -c environment.environment_class=swebox --subset verified -o out/   # or swebench-single

(in code: `install()`, then mini's `process_instance` / `main`). mini is imported only when
used, so this module imports without it.

How mini's DockerEnvironment behaves, kept here: each command is a fresh `interpreter`
process (no cd or export survives), stderr merged into stdout, `env`/`forward_env` set per
command; a timeout (`timeout`, or execute's) is returncode -1 with `exception_info`; the
sentinel `COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT` as the first output line with returncode 0
raises mini's `Submitted`, the rest of the output being the submission. What swebox changes:
commands run in a subshell of a persistent swebox shell (~1 ms instead of a `docker exec`), the
timeout kills the command's processes inside the sandbox (a SIGTERM-ignoring one too), output
is capped at `output_limit` bytes (head and tail kept), and the sandbox has swebox's defaults:
no network, 1024 pids, a lease (`sandbox: {limits: {network: true}}` etc. changes them).
"""

from __future__ import annotations

import logging
import os
import platform
import shlex
import subprocess
import sys
import threading
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_validator

from swebox.agents.seat import Seat, open_seat
from swebox.errors import BadInput, SweboxError
from swebox.grading.grader import GradeOptions, Verdict, grade
from swebox.integrations.common import task_from_row
from swebox.sandbox import start_sandbox
from swebox.tasks.model import Task

CLASS_PATH = "swebox.integrations.minisweagent.SweboxEnvironment"
SENTINEL = "COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"
# DockerEnvironmentConfig's keys that mean nothing here (and a config section's class):
# accepted quietly, so that a docker config switches over by its environment_class alone.
DOCKER_ONLY = {"executable", "run_args", "container_timeout", "pull_timeout",
               "environment_class"}
_log = logging.getLogger("minisweagent.environment")
_original_get_sb_environment: Any = None


class SweboxEnvironmentConfig(BaseModel):
    model_config = ConfigDict(extra="allow")

    image: str | None = None
    """Image to start; with `task`, replaces the task's image."""
    task: dict[str, Any] | str | None = None
    """The task: a swebox Task, a SWE-bench / R2E-Gym row, a SkyRL or rLLM row (or JSON)."""
    backend: Literal["docker", "podman", "bwrap"] = "docker"
    cwd: str = ""
    """Where commands run; default the task's workdir, else "/"."""
    env: dict[str, str] = {}
    forward_env: list[str] = []
    timeout: int = 30
    """Seconds per command (execute's `timeout` wins), enforced inside the sandbox."""
    interpreter: list[str] = ["bash", "-lc"]
    output_limit: int = 8 * 1024**2
    """Bytes of output kept per command (first and last halves)."""
    sandbox: dict[str, Any] = {}
    """More SandboxConfig fields: limits, lease, pull, env, user, ..."""

    @field_validator("task", mode="before")
    @classmethod
    def _task(cls, v: Any) -> Any:
        return v.model_dump(mode="json") if isinstance(v, Task) else v


class SweboxEnvironment:
    def __init__(self, *, config_class: type = SweboxEnvironmentConfig,
                 logger: logging.Logger | None = None, **kwargs: Any) -> None:
        """Start the sandbox now (as mini's DockerEnvironment starts its container); see
        `SweboxEnvironmentConfig` for the keyword arguments."""
        self.logger = logger or _log
        self.seat: Seat | None = None
        self._lock = threading.Lock()
        self.config = config_class(**kwargs)
        cfg = self.config
        unknown = set(cfg.model_extra or {}) - DOCKER_ONLY
        if unknown:
            self.logger.warning(f"SweboxEnvironment ignores {sorted(unknown)}")
        opts: dict[str, Any] = {"backend": cfg.backend, **cfg.sandbox,
                                "limits": {"pids": 1024, **cfg.sandbox.get("limits", {})}}
        self.task: Task | None = None
        if cfg.task is not None:
            task = task_from_row(cfg.task)
            if cfg.image:
                task = task.model_copy(update={"local_image": cfg.image})
            self.task, workdir = task, task.workdir
            self.seat = open_seat(task, **opts)
        elif cfg.image:
            workdir = cfg.cwd or "/"
            opts.setdefault("workdir", workdir)
            self.seat = Seat.ready(start_sandbox(cfg.image, **opts), workdir)
        else:
            raise BadInput("SweboxEnvironment needs an image or a task",
                           hint="pass image= or task=; run mini's SWE-bench runners through "
                                "`python -m swebox.integrations.minisweagent`")
        self.cwd = cfg.cwd or workdir
        self.logger.info(f"Started sandbox {self.seat.sandbox.id[:12]} from "
                         f"{self.seat.sandbox.config.image}")

    def execute(self, action: dict, cwd: str = "", *, timeout: int | None = None
                ) -> dict[str, Any]:
        """Run the action's command in a fresh interpreter; mini's result dict."""
        command = action.get("command", "")
        wait = timeout or self.config.timeout
        env = {k: v for k in self.config.forward_env if (v := os.getenv(k)) is not None}
        env.update(self.config.env)
        exports = "".join(f"export {shlex.quote(f'{k}={v}')}\n" for k, v in env.items())
        # A subshell of the swebox shell, its stderr kept on fd 9 so that the shell's own
        # notice of a killed job ("Killed ...") goes to /dev/null, not into the output.
        body = (f"{{ (cd {shlex.quote(cwd or self.cwd)} 2>&9 || exit\n{exports}"
                f"exec {shlex.join(self.config.interpreter)} {shlex.quote(command)} "
                "2>&9 9>&- 3<&-\n); } 9>&2 2>/dev/null")
        try:
            with self._lock:
                if self.seat is None:
                    raise SweboxError("the environment was cleaned up")
                res = self.seat.ctx.session.run(body, timeout=wait,
                                                output_limit=self.config.output_limit)
            if res.timed_out:
                raise subprocess.TimeoutExpired(command, wait, output=res.output)
            output: dict[str, Any] = {"output": res.output, "returncode": res.exit_code,
                                      "exception_info": ""}
        except (SweboxError, subprocess.TimeoutExpired) as e:
            # A shell that broke or did not recover is replaced on the next call.
            raw = getattr(e, "output", None)
            output = {"output": raw if isinstance(raw, str) else "", "returncode": -1,
                      "exception_info": f"An error occurred while executing the command: {e}",
                      "extra": {"exception_type": type(e).__name__, "exception": str(e)}}
        self._check_finished(output)
        return output

    def _check_finished(self, output: dict) -> None:
        """mini's own test: the sentinel first, returncode 0; the rest is the submission."""
        lines = output.get("output", "").lstrip().splitlines(keepends=True)
        if lines and lines[0].strip() == SENTINEL and output["returncode"] == 0:
            from minisweagent.exceptions import Submitted

            submission = "".join(lines[1:])
            raise Submitted({"role": "exit", "content": submission,
                             "extra": {"exit_status": "Submitted", "submission": submission}})

    def get_template_vars(self, **kwargs: Any) -> dict[str, Any]:
        from minisweagent.utils.serialize import recursive_merge

        return recursive_merge(self.config.model_dump(exclude={"task"}),
                               platform.uname()._asdict(), kwargs)

    def serialize(self) -> dict:
        return {"info": {"config": {
            "environment": self.config.model_dump(mode="json"),
            "environment_type": f"{self.__class__.__module__}.{self.__class__.__name__}"}}}

    def cleanup(self) -> None:
        """Remove the sandbox (idempotent)."""
        seat, self.seat = getattr(self, "seat", None), None
        if seat is not None:
            seat.close()

    close = cleanup

    def __del__(self) -> None:
        try:
            self.cleanup()
        except Exception:
            pass


def grade_submission(instance: Any, submission: str, options: GradeOptions | None = None,
                     **grade_options: Any) -> Verdict:
    """The reward: swebox's verdict on `submission` for the instance's task, graded in a
    fresh sandbox (never the agent's). `grade_options` are GradeOptions fields."""
    verdict, _ = grade(task_from_row(instance), submission or "",
                       options or GradeOptions(**grade_options))
    return verdict


def _is_swebox(name: str) -> bool:
    return name in ("swebox", CLASS_PATH)


def get_sb_environment(config: dict, instance: dict) -> Any:
    """mini's `run.benchmarks.swebench.get_sb_environment`, where a swebox environment gets
    the instance itself (`task`; the config's `image` or the instance's `image_name` /
    `docker_image` replace the task's image); other classes go to mini's own function."""
    env_config = {**config.get("environment", {})}
    if not _is_swebox(env_config.pop("environment_class", "docker")):
        if _original_get_sb_environment is not None:
            return _original_get_sb_environment(config, instance)
        from minisweagent.run.benchmarks import swebench

        return swebench.get_sb_environment(config, instance)
    image = env_config.get("image") or instance.get("image_name") or instance.get("docker_image")
    env = SweboxEnvironment(**{**env_config, "task": instance, "image": image})
    if startup_command := config.get("run", {}).get("env_startup_command"):
        from jinja2 import StrictUndefined, Template

        command = Template(startup_command, undefined=StrictUndefined).render(**instance)
        out = env.execute({"command": command})
        if out["returncode"] != 0:
            env.cleanup()
            raise RuntimeError(f"Error executing startup command: {out}")
    return env


def install() -> None:
    """Make mini's SWE-bench runners (batch and single) use `get_sb_environment` above, and
    register `swebox` as an environment_class name. Idempotent."""
    global _original_get_sb_environment
    import minisweagent.environments as envs
    import minisweagent.run.benchmarks.swebench as batch

    envs._ENVIRONMENT_MAPPING["swebox"] = CLASS_PATH
    if batch.get_sb_environment is not get_sb_environment:
        _original_get_sb_environment = batch.get_sb_environment
        batch.get_sb_environment = get_sb_environment
    try:
        import minisweagent.run.benchmarks.swebench_single as single
    except ImportError:
        return
    single.get_sb_environment = get_sb_environment


def main(argv: list[str] | None = None) -> None:
    """`python -m swebox.integrations.minisweagent swebench|swebench-single [mini's options]`"""
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] not in ("swebench", "swebench-single"):
        sys.exit(main.__doc__)
    install()
    if args[0] == "swebench":
        from minisweagent.run.benchmarks.swebench import app
    else:
        from minisweagent.run.benchmarks.swebench_single import app
    app(args=args[1:])


if __name__ == "__main__":  # through the importable module: one SweboxEnvironment class
    from swebox.integrations.minisweagent import main as _main

    _main()
