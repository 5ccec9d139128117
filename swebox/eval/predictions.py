"""SWE-bench-compatible predictions: {instance_id, model_name_or_path, model_patch}, in a
.jsonl file, a .json list, or a .json object keyed by instance id (SWE-agent's form)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from swebox.errors import BadInput
from swebox.tasks.io import Reject, iter_rows, loads


class Prediction(BaseModel):
    instance_id: str
    model_name_or_path: str = "unknown"
    model_patch: str | None = None
    where: str = ""


def load_predictions(path: str | Path) -> Iterator[Prediction | Reject]:
    """Predictions (and rejects for malformed entries), in file order."""
    p = Path(path)
    if not p.is_file():
        raise BadInput(f"{p}: no such predictions file", hint="check the path")
    if p.suffix.lower() == ".json":
        try:
            data: Any = loads(p.read_bytes())
        except ValueError as e:
            raise BadInput(f"{p}: not valid JSON: {e}") from e
        if isinstance(data, dict):
            items = list(data.values())
        elif isinstance(data, list):
            items = data
        else:
            raise BadInput(f"{p}: expected a list of predictions or an object keyed by id")
        for i, item in enumerate(items):
            yield _one(item, f"{p}[{i}]")
        return
    for row in iter_rows(p):
        yield row if isinstance(row, Reject) else _one(row.data, row.where)


def _one(item: Any, where: str) -> Prediction | Reject:
    if not isinstance(item, dict):
        return Reject(where, "a prediction must be an object")
    iid = item.get("instance_id")
    if not isinstance(iid, str) or not iid.strip():
        return Reject(where, "prediction has no instance_id")
    patch = item.get("model_patch")
    if patch is not None and not isinstance(patch, str):
        return Reject(where, f"{iid}: model_patch must be a string")
    model = item.get("model_name_or_path") or "unknown"
    return Prediction(instance_id=iid.strip(), model_name_or_path=str(model),
                      model_patch=patch, where=where)
