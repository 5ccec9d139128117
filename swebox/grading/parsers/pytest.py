"""pytest logs: the `-rA` short summary (`PASSED tests/a.py::test_x`, `FAILED id - message`)
and verbose lines (`tests/a.py::test_x SKIPPED (reason) [ 50%]`).

Summary lines win where both name a test; verbose lines add what the summary leaves out
(`SKIPPED [1] file:line: reason` carries no test id).
"""

from __future__ import annotations

import re

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_STATUS = r"(PASSED|FAILED|ERROR|XFAIL|XPASS|SKIPPED)"
_SUMMARY = re.compile(rf"^{_STATUS}\s+(.+?)\s*$")
_VERBOSE = re.compile(rf"^(\S.*?::.+?) {_STATUS}(?: \(.*\))?\s*(?:\[\s*\d+%\])?\s*$")
# An XPASS (unexpectedly passing xfail) counts as passing.
_MAP = {"XPASS": "PASSED"}


def parse_pytest(log: str) -> dict[str, str]:
    """`{test_id: status}` from a pytest log run with `-rA` (and optionally `-v`)."""
    summary: dict[str, str] = {}
    verbose: dict[str, str] = {}
    for raw in log.splitlines():
        line = _ANSI.sub("", raw).rstrip()
        m = _SUMMARY.match(line)
        if m:
            status, rest = m.group(1), m.group(2)
            if status == "SKIPPED" and rest.startswith("["):
                continue
            if status in ("FAILED", "ERROR", "XFAIL") and " - " in rest:
                rest = rest.split(" - ", 1)[0]
            summary[rest] = _MAP.get(status, status)
            continue
        m = _VERBOSE.match(line)
        if m:
            verbose[m.group(1)] = _MAP.get(m.group(2), m.group(2))
    return {**verbose, **summary}
