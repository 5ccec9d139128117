"""swebox's own JSONL: one `Task.model_dump(mode="json")` a line."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from swebox.tasks.model import SCHEMA_VERSION, Task
from swebox.tasks.readers.common import ReadOptions

NAMES = ("swebox",)


def detect(row: dict[str, Any]) -> bool:
    return detect_name(row) is not None


def detect_name(row: dict[str, Any]) -> str | None:
    if "schema_version" in row and "source_format" in row and "instance_id" in row:
        return "swebox"
    return None


def convert_for(name: str) -> Callable[[dict[str, Any], ReadOptions], Task]:
    def convert(row: dict[str, Any], opts: ReadOptions) -> Task:
        version = row.get("schema_version")
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise ValueError(f"schema_version {version!r} is newer than this swebox reads "
                             f"({SCHEMA_VERSION}): upgrade swebox")
        return Task.model_validate(row)
    return convert
