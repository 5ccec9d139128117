"""R2E-Gym and R2E-Gym-Lite rows.

They have no instance id: it is derived as `{repo_name}__{commit_hash[:12]}` (the template is
configurable). `expected_output_json` (a JSON string in the real dataset, sometimes a dict in
copies) becomes the expected {test: status} map; `docker_image` is used as given. `commit_hash`
is the commit the task is named after and becomes `base_commit`. Every other field (parsed
commit content, execution results, modified files, ...) stays in `extra`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from swebox.tasks.model import Task
from swebox.tasks.readers.common import ReadOptions, as_map, rest, text

NAMES = ("r2e",)
_USED = {"instance_id", "repo_name", "docker_image", "commit_hash", "problem_statement",
         "expected_output_json"}


def detect(row: dict[str, Any]) -> bool:
    return detect_name(row) is not None


def detect_name(row: dict[str, Any]) -> str | None:
    if "repo_name" in row and ("docker_image" in row or "expected_output_json" in row):
        return "r2e"
    return None


def convert_for(name: str) -> Callable[[dict[str, Any], ReadOptions], Task]:
    def convert(row: dict[str, Any], opts: ReadOptions) -> Task:
        repo_name = text(row, "repo_name")
        commit = text(row, "commit_hash") or text(row, "git_commit_hash")
        if not repo_name:
            raise ValueError("repo_name is empty")
        iid = text(row, "instance_id")
        if not iid:
            if not commit:
                raise ValueError("no instance_id and no commit_hash to derive one from")
            iid = opts.r2e_id_template.format(repo_name=repo_name, commit_hash=commit)
        image = text(row, "docker_image") or None
        return Task(
            instance_id=iid, repo=repo_name, base_commit=commit,
            problem_statement=text(row, "problem_statement"), image=image,
            local_image=opts.rules.local_name(image) if image else None,
            expected_output=as_map(row.get("expected_output_json"), "expected_output_json"),
            source_format="r2e", extra=rest(row, _USED))
    return convert
