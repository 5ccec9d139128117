"""Graph Planner JSONL (seed 004): task_id, max_steps, issue, and a sandbox block
{backend, docker_image, workdir, mounts, env, r2e_ds_json}. The sandbox's other keys and
max_steps stay in `extra`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from swebox.tasks.model import Task
from swebox.tasks.readers.common import ReadOptions, rest, text

NAMES = ("graphplanner",)


def detect(row: dict[str, Any]) -> bool:
    return detect_name(row) is not None


def detect_name(row: dict[str, Any]) -> str | None:
    if "task_id" in row and isinstance(row.get("sandbox"), dict):
        return "graphplanner"
    return None


def convert_for(name: str) -> Callable[[dict[str, Any], ReadOptions], Task]:
    def convert(row: dict[str, Any], opts: ReadOptions) -> Task:
        sandbox = dict(row["sandbox"])
        issue = row.get("issue", "")
        if isinstance(issue, dict):
            issue = f"{issue.get('title', '')}\n\n{issue.get('body', '')}".strip()
        image = sandbox.pop("docker_image", None) or None
        workdir = sandbox.pop("workdir", None) or "/testbed"
        extra = rest(row, {"task_id", "issue", "sandbox"})
        extra["sandbox"] = sandbox
        return Task(instance_id=text(row, "task_id"), problem_statement=str(issue),
                    image=image, local_image=opts.rules.local_name(image) if image else None,
                    workdir=workdir, source_format="graphplanner", extra=extra)
    return convert
