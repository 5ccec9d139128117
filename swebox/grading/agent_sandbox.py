"""The sandbox an agent works in: the task's image in the task's starting state, with the hidden
tests out of reach. Grading never uses it (the grader starts its own, fresh from the image);
rollouts and environments start agents here so that what the reward reads is never what the
agent could read or edit.

- The spec's `hidden` paths (R2E's /r2e_tests and run_tests.sh) are removed at start.
- A spec with `checkout` (SWE-smith) starts on the task's branch, whose last commit removed the
  failing tests.
"""

from __future__ import annotations

from typing import Any

from swebox.errors import SweboxError
from swebox.grading.tamper import hide_from_agent
from swebox.sandbox import Sandbox, start_sandbox
from swebox.tasks.model import Task
from swebox.tasks.specs import TestRule, resolve_spec


def start_agent_sandbox(task: Task, rules: list[TestRule] | None = None,
                        **options: Any) -> Sandbox:
    """Start `task`'s image for an agent (options as for `start_sandbox`)."""
    if not task.run_image:
        raise SweboxError(f"task {task.instance_id} names no image")
    spec = resolve_spec(task, rules)
    options.setdefault("workdir", task.workdir)
    options.setdefault("task_id", task.instance_id)
    sb = start_sandbox(task.run_image, **options)
    try:
        if spec is not None and spec.checkout:
            res = sb.exec(["git", "checkout", "-q", "-f", spec.checkout], timeout=120)
            if res.exit_code != 0:
                raise SweboxError(f"cannot check out {spec.checkout} for "
                                  f"{task.instance_id}: {res.stderr.strip()[:200]}")
        if spec is not None:
            hide_from_agent(sb, spec.hidden)
    except BaseException:
        sb.close()
        raise
    return sb
