"""Tool dialects by name: `swebox`, `r2e` (R2E-Gym), `sweagent` (SWE-agent), `openhands`
(OpenHands CodeAct). Each is one small module building a `Dialect`."""

from __future__ import annotations

import importlib

from swebox.agents.dialects.base import Dialect, ToolDef
from swebox.errors import BadInput

DIALECTS = {"swebox": "swebox", "r2e": "r2e", "sweagent": "sweagent", "openhands": "openhands"}
ALIASES = {"r2egym": "r2e", "swe-agent": "sweagent", "codeact": "openhands"}


def get_dialect(name: str) -> Dialect:
    key = ALIASES.get(name.lower(), name.lower())
    if key not in DIALECTS:
        raise BadInput(f"unknown tool dialect {name!r}",
                       hint=f"choose one of: {', '.join(DIALECTS)}")
    module = importlib.import_module(f"swebox.agents.dialects.{DIALECTS[key]}")
    return module.dialect()


__all__ = ["DIALECTS", "Dialect", "ToolDef", "get_dialect"]
