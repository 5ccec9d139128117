"""SWE-smith rows: one image per repository snapshot; the task is a branch named after the
instance id; `patch` is the bug-introducing diff, so the gold patch is its reverse.

`repo` in SWE-smith is the mirror (`swesmith/owner__repo.commit8`): the task's `repo` becomes
`owner/repo` and the mirror name is kept in `extra["swesmith_repo"]`; the original diff stays
in `extra["bug_patch"]`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from swebox.tasks.model import Task
from swebox.tasks.patches import reverse_patch
from swebox.tasks.readers.common import ReadOptions, as_list, rest, text

NAMES = ("swesmith",)
_USED = {"instance_id", "repo", "patch", "FAIL_TO_PASS", "PASS_TO_PASS", "image_name",
         "problem_statement", "base_commit", "created_at"}
_MIRROR = re.compile(r"^(?:[^/]+/)?(?P<owner>[^/]+?)__(?P<name>[^/]+?)\.(?P<commit>[0-9a-f]{8})$")


def detect(row: dict[str, Any]) -> bool:
    return detect_name(row) is not None


def detect_name(row: dict[str, Any]) -> str | None:
    image = str(row.get("image_name") or "")
    repo = str(row.get("repo") or "")
    if "instance_id" in row and (image.split("/")[-1].startswith("swesmith.")
                                 or repo.startswith("swesmith/")):
        return "swesmith"
    return None


def convert_for(name: str) -> Callable[[dict[str, Any], ReadOptions], Task]:
    def convert(row: dict[str, Any], opts: ReadOptions) -> Task:
        mirror = text(row, "repo")
        m = _MIRROR.match(mirror)
        repo = f"{m.group('owner')}/{m.group('name')}" if m else mirror
        bug = text(row, "patch")
        image = opts.rules.swesmith(mirror, text(row, "image_name") or None)
        extra = rest(row, _USED)
        extra["swesmith_repo"] = mirror
        extra["bug_patch"] = bug
        extra.setdefault("branch", text(row, "instance_id"))
        return Task(
            instance_id=text(row, "instance_id"), repo=repo,
            base_commit=text(row, "base_commit") or (m.group("commit") if m else ""),
            problem_statement=text(row, "problem_statement"), image=image,
            local_image=opts.rules.local_name(image),
            fail_to_pass=as_list(row.get("FAIL_TO_PASS"), "FAIL_TO_PASS"),
            pass_to_pass=as_list(row.get("PASS_TO_PASS"), "PASS_TO_PASS"),
            gold_patch=reverse_patch(bug) if bug else "",
            created_at=None if row.get("created_at") is None else str(row["created_at"]),
            source_format="swesmith", extra=extra)
    return convert
