"""Training-framework parquet: rLLM/verl (`extra_info`) and SkyRL (`instance`) rows.

swebox's own exports carry in `swebox_task` what the columns do not, and read back losslessly.
Rows from elsewhere (rLLM's and SkyRL's own datasets) hold the source row in `extra_info` or
`instance`: that row is handed to the R2E or SWE-bench/SWE-Gym reader, whichever fits it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from swebox.tasks.io import loads
from swebox.tasks.model import Task
from swebox.tasks.readers import r2e, swebench
from swebox.tasks.readers.common import ReadOptions
from swebox.tasks.residual import rebuild

NAMES = ("rllm", "skyrl")
_INNER = {"rllm": "extra_info", "skyrl": "instance"}


def detect(row: dict[str, Any]) -> bool:
    return detect_name(row) is not None


def detect_name(row: dict[str, Any]) -> str | None:
    if isinstance(row.get("instance"), dict) and "prompt" in row:
        return "skyrl"
    if isinstance(row.get("extra_info"), (dict, str)) and "prompt" in row:
        return "rllm"
    return None


def convert_for(name: str) -> Callable[[dict[str, Any], ReadOptions], Task]:
    def convert(row: dict[str, Any], opts: ReadOptions) -> Task:
        inner = row.get(_INNER[name])
        if isinstance(inner, str):  # rLLM accepts extra_info JSON-encoded too
            inner = loads(inner)
        if not isinstance(inner, dict):
            raise ValueError(f"{_INNER[name]} is not an object")
        if inner.get("swebox_task"):
            return rebuild(inner, inner["swebox_task"])
        if r2e.detect_name(inner):
            return r2e.convert_for("r2e")(inner, opts)
        kind = swebench.detect_name(inner)
        if kind:
            return swebench.convert_for(kind)(inner, opts)
        raise ValueError(f"{_INNER[name]} holds neither a swebox task nor an R2E or SWE-bench "
                         "row")
    return convert
