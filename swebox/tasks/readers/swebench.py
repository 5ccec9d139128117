"""SWE-bench (full, Lite, Verified) and SWE-Gym rows.

SWE-bench's HF rows carry FAIL_TO_PASS / PASS_TO_PASS as JSON-encoded strings and have an
`environment_setup_commit`; SWE-Gym's carry real lists and have none. Both name images by
convention (see the resolver), unless the row names its `image` (SWE-bench 5 rows do; the
field also stays in `extra`, so the row writes back unchanged). `hints_text`,
`environment_setup_commit` and any other field stay in `extra`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from swebox.tasks.model import Task
from swebox.tasks.readers.common import ReadOptions, as_list, rest, text

NAMES = ("swebench", "swegym")
_USED = {"instance_id", "repo", "base_commit", "problem_statement", "patch", "test_patch",
         "FAIL_TO_PASS", "PASS_TO_PASS", "version", "created_at"}


def detect(row: dict[str, Any]) -> bool:
    return detect_name(row) is not None


def detect_name(row: dict[str, Any]) -> str | None:
    if not {"instance_id", "repo", "base_commit"} <= row.keys():
        return None
    if not ({"patch", "test_patch", "FAIL_TO_PASS"} & row.keys()):
        return None
    f2p = row.get("FAIL_TO_PASS")
    if "environment_setup_commit" in row or isinstance(f2p, str):
        return "swebench"
    return "swegym"


def convert_for(name: str) -> Callable[[dict[str, Any], ReadOptions], Task]:
    def convert(row: dict[str, Any], opts: ReadOptions) -> Task:
        iid = text(row, "instance_id")
        # SWE-bench 5 rows name their image; older rows follow the family's convention
        image = text(row, "image").strip() or (
            opts.rules.swegym(iid) if name == "swegym" else opts.rules.swebench(iid))
        version = row.get("version")
        return Task(
            instance_id=iid, repo=text(row, "repo"), base_commit=text(row, "base_commit"),
            problem_statement=text(row, "problem_statement"), image=image,
            local_image=opts.rules.local_name(image),
            fail_to_pass=as_list(row.get("FAIL_TO_PASS"), "FAIL_TO_PASS"),
            pass_to_pass=as_list(row.get("PASS_TO_PASS"), "PASS_TO_PASS"),
            gold_patch=text(row, "patch"), test_patch=text(row, "test_patch"),
            version=None if version is None else str(version),
            created_at=None if row.get("created_at") is None else str(row["created_at"]),
            source_format=name,  # type: ignore[arg-type]
            extra=rest(row, _USED))
    return convert
