"""The context budget: when a conversation outgrows it, the oldest observations are elided
(their text replaced by a marked cut) until it fits. The system prompt, the task and the last
turns are never cut, so the model always sees what it is doing now."""

from __future__ import annotations

from typing import Any

KEEP_LAST = 6  # messages at the end that are never elided
ELIDED = "[... observation elided to fit the context budget: {n} characters ...]"


def size(messages: list[dict[str, Any]]) -> int:
    total = 0
    for m in messages:
        total += len(str(m.get("content") or ""))
        for tc in m.get("tool_calls") or []:
            total += len(str(tc.get("function", {}).get("arguments", "")))
    return total


def fit_budget(messages: list[dict[str, Any]], budget: int) -> list[dict[str, Any]]:
    """`messages` within `budget` characters (a copy where anything was cut)."""
    total = size(messages)
    if total <= budget:
        return messages
    out = list(messages)
    for i in range(2, max(2, len(out) - KEEP_LAST)):
        m = out[i]
        if m.get("role") not in ("tool", "user"):
            continue
        text = str(m.get("content") or "")
        if len(text) < 200:
            continue
        note = ELIDED.format(n=len(text))
        out[i] = {**m, "content": note}
        total -= len(text) - len(note)
        if total <= budget:
            break
    return out
