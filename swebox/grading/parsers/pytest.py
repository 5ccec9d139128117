"""pytest logs: the `-rA` short summary (`PASSED tests/a.py::test_x`, `FAILED id - message`)
and verbose lines (`tests/a.py::test_x SKIPPED (reason) [ 50%]`, xdist's
`[gw0] [ 50%] PASSED tests/a.py::test_x`).

Ids are pytest node ids exactly as printed, parametrized ids included
(`tests/a.py::test_x[a b-1]`). Statuses: XPASS (non-strict) counts as PASSED; a strict XPASS
is printed by pytest as FAILED already.

Summary lines win where both name a test; verbose lines add what the summary leaves out
(`SKIPPED [1] file:line: reason` carries no test id). When one test is reported twice in a
section (a call FAILED and a teardown ERROR) the worse status stays.

What is trusted where. pytest splits its output into `=== title ===` sections: the session
(progress lines), reports (FAILURES, ERRORS, PASSES: these hold the tests' captured output) and
the short test summary. Verbose lines are read only in the session part and summary lines only
in the summary section, so a test that prints `PASSED tests/a.py::test_other` into its captured
output changes nothing. A later summary section overrides an earlier one (a second pytest run in
one log, or a forged section header inside captured output, which pytest prints before its real
summary). Limits: a log without any section header (a bare excerpt) is read leniently; with
`-s` captured output lands among the progress lines, where a forged verbose line is believed
unless the summary names the same test.
"""

from __future__ import annotations

import re

from swebox.grading.parsers._common import PASSED, clean_lines, put_worst

_STATUS = r"(PASSED|FAILED|ERROR|XFAIL|XPASS|SKIPPED)"
_SUMMARY = re.compile(rf"^{_STATUS} (.+)$")
_WORDS = ("PASSED", "FAILED", "ERROR", "XFAIL", "XPASS", "SKIPPED")
_PROGRESS = re.compile(r"\[\s*\d+%\]")
_XDIST = re.compile(rf"^\[gw\d+\] \[\s*\d+%\] {_STATUS} (\S.*?::.+)$")
_SECTION = re.compile(r"^=+ (.+?) =+$")
# An XPASS (unexpectedly passing xfail, non-strict) counts as passing.
_MAP = {"XPASS": PASSED}


def _verbose(line: str) -> tuple[str, str] | None:
    """`(node_id, word)` from `node_id WORD [(reason)] [ 50%]`, or None.

    Done by hand, not by one regex: a backtracking pattern costs quadratic time on a long
    hostile line (thousands of `::`), and logs are untrusted.
    """
    if "::" not in line or line[:1].isspace():
        return None
    if line.endswith("%]"):
        i = line.rfind("[")
        if _PROGRESS.fullmatch(line, i):
            line = line[:i].rstrip()
    best: tuple[int, str] | None = None
    for word in _WORDS:
        i = line.find(" " + word)
        while i != -1 and (best is None or i < best[0]):
            end = i + len(word) + 1  # the word is followed by nothing or by ` (reason)`
            if end == len(line) or (line.startswith(" (", end) and line.endswith(")")):
                if line.find("::", 0, i) != -1:
                    best = (i, word)
                break
            i = line.find(" " + word, i + 1)
    return (line[: best[0]], best[1]) if best else None


def _summary_id(status: str, rest: str, known: dict[str, str]) -> str:
    """The node id in a summary line's `rest`, without the ` - message` pytest may append."""
    if status == "PASSED" or " - " not in rest or rest in known:
        return rest  # PASSED lines never carry a message
    # Ids seen on verbose lines settle it, even for ids that themselves contain " - ".
    cut = rest.find(" - ")
    for _ in range(50 if known else 0):  # bounded: a hostile line must not cost n^2
        if cut == -1:
            break
        if rest[:cut] in known:
            return rest[:cut]
        cut = rest.find(" - ", cut + 1)
    bracket = rest.find("[")
    first = rest.find(" - ")
    if bracket == -1 or first < bracket:
        return rest[:first]
    # A parametrized id: it ends at the first "]" that is followed by the message separator;
    # " - " inside the brackets belongs to the id (`test[a - b] - AssertionError`).
    end = rest.find("] - ", bracket)
    return rest if end == -1 else rest[: end + 1]


def parse(text: str) -> dict[str, str]:
    """`{node_id: status}` from a pytest log run with `-rA` and/or `-v`."""
    lines = clean_lines(text)
    titles = [m.group(1) for m in map(_SECTION.match, lines) if m]
    has_summary = "short test summary info" in titles
    verbose: dict[str, str] = {}
    sections: list[list[tuple[str, str]]] = []
    if not titles:
        sections.append([])
    where = "session"
    for line in lines:
        m = _SECTION.match(line)
        if m:
            title = m.group(1)
            if "test session starts" in title:
                where = "session"
            elif title == "short test summary info":
                where = "summary"
                sections.append([])
            else:
                where = "report"
            continue
        if where == "report":
            continue
        m = _SUMMARY.match(line)
        if m and (where == "summary" or not has_summary):
            status, rest = m.group(1), m.group(2).strip()
            if not (status == "SKIPPED" and rest.startswith("[")):
                if not sections:
                    sections.append([])
                sections[-1].append((status, rest))
            continue
        if where != "session":
            continue
        v = _verbose(line)
        if v:
            put_worst(verbose, v[0], _MAP.get(v[1], v[1]))
            continue
        m = _XDIST.match(line)
        if m:
            put_worst(verbose, m.group(2).strip(), _MAP.get(m.group(1), m.group(1)))
    summary: dict[str, str] = {}
    for section in sections:
        this: dict[str, str] = {}
        for status, rest in section:
            put_worst(this, _summary_id(status, rest, verbose), _MAP.get(status, status))
        summary.update(this)  # a later section (a later run) overrides an earlier one
    return {**verbose, **summary}


def parse_pytest(log: str) -> dict[str, str]:
    """`{test_id: status}` from a pytest log run with `-rA` (and optionally `-v`)."""
    return parse(log)
