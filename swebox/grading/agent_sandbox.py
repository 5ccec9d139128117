"""The sandbox an agent works in: the task's image in the task's starting state, with the hidden
tests out of reach. Grading never uses it (the grader starts its own, fresh from the image);
rollouts and environments start agents here so that what the reward reads is never what the
agent could read or edit.

- The spec's `hidden` paths (R2E's /r2e_tests and run_tests.sh) are removed at start.
- A spec with `checkout` (SWE-smith) starts on the task's branch, whose last commit removed the
  failing tests. That commit's parent still holds them, so the history goes: the branch's tree
  becomes a single parentless commit, every other ref and the reflogs are dropped and the
  unreachable objects pruned (`git gc --prune=now`, once per prepared state). The grader checks
  out the real branch in its own sandbox; the tree is the same, so the agent's diff applies.
"""

from __future__ import annotations

from typing import Any

from swebox.errors import BadInput, SweboxError
from swebox.grading.tamper import hide_from_agent
from swebox.sandbox import Sandbox, start_sandbox
from swebox.tasks.model import Task
from swebox.tasks.specs import TestRule, resolve_spec

# The current tree as the only commit: no parent to `git show`, no other branch, no reflog,
# and nothing unreachable left in the object store.
FORGET_HISTORY = r"""
set -e
c=$(git -c user.name=swebox -c user.email=swebox@localhost commit-tree "HEAD^{tree}" -m "$1")
git checkout -q --detach "$c"
git for-each-ref --format='delete %(refname)' | git update-ref --stdin
git branch -q swebox-task "$c" 2>/dev/null || true
git checkout -q swebox-task
rm -rf .git/refs/original .git/logs
git stash clear 2>/dev/null || true
git reflog expire --expire=now --all
git gc -q --prune=now
"""


def start_agent_sandbox(task: Task, rules: list[TestRule] | None = None,
                        **options: Any) -> Sandbox:
    """Start `task`'s image for an agent (options as for `start_sandbox`)."""
    if not task.run_image:
        raise BadInput(f"task {task.instance_id} names no image",
                           hint="give the task an `image`")
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
            res = sb.exec(["/bin/sh", "-c", FORGET_HISTORY, "swebox-forget",
                           task.instance_id], timeout=1800)
            if res.exit_code != 0:
                raise SweboxError(f"cannot hide the removed tests' history for "
                                  f"{task.instance_id}: {res.output.strip()[-300:]}")
        if spec is not None:
            hide_from_agent(sb, spec.hidden)
    except BaseException:
        sb.close()
        raise
    return sb
