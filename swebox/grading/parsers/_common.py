"""Pieces every log parser shares: the status words, ANSI stripping and merging rules."""

from __future__ import annotations

import re

PASSED, FAILED, SKIPPED, ERROR, XFAIL = "PASSED", "FAILED", "SKIPPED", "ERROR", "XFAIL"
STATUSES = (PASSED, FAILED, SKIPPED, ERROR, XFAIL)

# CSI sequences (colours, cursor moves), OSC sequences (titles, hyperlinks) and two-byte escapes.
# Runners colour their status words, so a parser that sees `\x1b[32mPASSED` must see `PASSED`.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]")

# How bad an outcome is: merging two reports of one test keeps the worse, so a second
# (possibly forged) line can never turn a reported failure into a pass.
_RANK = {PASSED: 0, XFAIL: 1, SKIPPED: 2, FAILED: 3, ERROR: 4}


def strip_ansi(text: str) -> str:
    """`text` without terminal escape sequences."""
    return _ANSI.sub("", text) if "\x1b" in text else text


def clean_lines(text: str) -> list[str]:
    """The log's lines with escapes removed and trailing whitespace dropped."""
    return [line.rstrip() for line in strip_ansi(text).splitlines()]


def worse(a: str | None, b: str) -> str:
    """The worse of two statuses (`a` may be absent)."""
    return b if a is None or _RANK[b] >= _RANK[a] else a


def put_worst(out: dict[str, str], test_id: str, status: str) -> None:
    """Record `status` for `test_id`, keeping any worse status already recorded."""
    out[test_id] = worse(out.get(test_id), status)
