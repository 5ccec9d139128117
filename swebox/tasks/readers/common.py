"""What readers share: options, list/JSON coercion, and keeping unmapped fields in `extra`."""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from swebox.tasks.io import loads
from swebox.tasks.resolver import ImageRules


class ReadOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    rules: ImageRules = Field(default_factory=ImageRules)
    # R2E rows have no instance id; seed 002 derives `{repo_name}__{commit_hash[:12]}`.
    r2e_id_template: str = "{repo_name}__{commit_hash:.12}"


def as_list(value: Any, field: str) -> list[str]:
    """A list of test ids from a real list or a JSON-encoded one (SWE-bench's HF encoding)."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        try:
            value = loads(value)
        except ValueError as e:
            raise ValueError(f"{field} is neither a list nor a JSON-encoded list") from e
    if hasattr(value, "tolist"):  # numpy arrays from parquet/pandas
        value = value.tolist()
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{field} must be a list of test ids, got {type(value).__name__}")
    return value if isinstance(value, list) else list(value)  # items: the model checks them


def as_map(value: Any, field: str) -> dict[str, str] | None:
    """A {test: status} map from a dict or a JSON-encoded one (R2E's expected_output_json)."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = loads(value)
        except ValueError as e:
            raise ValueError(f"{field} is not valid JSON") from e
    if not isinstance(value, dict):
        raise ValueError(f"{field} must be a {{test: status}} object")
    return {str(k): str(v) for k, v in value.items()}


def text(row: dict[str, Any], key: str, default: str = "") -> str:
    value = row.get(key)
    if value is None:
        return default
    return value if isinstance(value, str) else str(value)


def rest(row: dict[str, Any], used: set[str]) -> dict[str, Any]:
    """The source fields the model has no place for (kept in `extra`, nothing dropped)."""
    return {k: v for k, v in row.items() if k not in used}


log = logging.getLogger("swebox.tasks")


def warn(message: str) -> None:
    """A non-fatal remark about a row (the CLI prints these on stderr)."""
    log.warning(message)
