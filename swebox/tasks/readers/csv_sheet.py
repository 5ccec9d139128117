"""Client CSV sheets (seed 000) and OpenHands `run_infer` JSONL, which share their fields:
instance_id, repo (owner/repo), base_commit, version, image_storage_uri, problem_statement.

Seed 000 names the fields a task cannot do without: a row whose instance_id, repo, base_commit
or image_storage_uri is empty is rejected (file:line and the field), never accepted half-made.

`version` is set to the instance id, as OpenHands' instance-image runs need (seed 000); a
sheet that says otherwise gets a warning and its value is kept in `extra["sheet_version"]`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from swebox.tasks.model import Task
from swebox.tasks.readers.common import ReadOptions, rest, text, warn

NAMES = ("csv", "openhands")
_USED = {"instance_id", "repo", "base_commit", "version", "image_storage_uri",
         "problem_statement"}
_REQUIRED = ("instance_id", "repo", "base_commit", "image_storage_uri")


def detect(row: dict[str, Any]) -> bool:
    return detect_name(row) is not None


def detect_name(row: dict[str, Any]) -> str | None:
    if {"instance_id", "image_storage_uri"} <= row.keys():
        return "openhands"
    return None


def convert_for(name: str) -> Callable[[dict[str, Any], ReadOptions], Task]:
    def convert(row: dict[str, Any], opts: ReadOptions) -> Task:
        iid = text(row, "instance_id").strip()
        repo = text(row, "repo").strip()
        empty = [k for k in _REQUIRED if not text(row, k).strip()]
        if empty:
            raise ValueError(f"{', '.join(empty)} {'is' if len(empty) == 1 else 'are'} empty: "
                             "a task needs instance_id, repo, base_commit and image_storage_uri")
        if repo and repo.count("/") != 1:
            raise ValueError(f"repo {repo!r} is not owner/repo")
        extra = rest(row, _USED)
        sheet_version = text(row, "version").strip()
        if sheet_version and sheet_version != iid:
            warn(f"{iid}: sheet says version {sheet_version!r}; using the instance id "
                 f"{iid!r} (kept the sheet's value in extra.sheet_version)")
            extra["sheet_version"] = sheet_version
        image = text(row, "image_storage_uri").strip() or None
        return Task(
            instance_id=iid, repo=repo, base_commit=text(row, "base_commit").strip(),
            problem_statement=text(row, "problem_statement"), image=image,
            local_image=opts.rules.local_name(image) if image else None, version=iid,
            source_format=name, extra=extra)  # type: ignore[arg-type]
    return convert
