"""unittest's verbose output (`python -m unittest -v`), also Django's runner (`--verbosity 2`).

Ids follow SWE-bench's Django rows:

- `test_x (module.Class)`. Python 3.11+ prints `test_x (module.Class.test_x)`; the repeated
  method name is dropped so both versions give the same id.
- A test with a docstring is printed as `test_x (module.Class)` then `First doc line ... ok` on
  the next line; its id is that first docstring line, which is how SWE-bench names such tests
  (its PASS_TO_PASS lists hold entries like `A simple sitemap can be rendered`).

Words: ok -> PASSED, FAIL -> FAILED, ERROR -> ERROR, skipped 'why' -> SKIPPED,
expected failure -> XFAIL, unexpected success -> FAILED. A failing subtest marks its test
FAILED (or ERROR).

The runner prints `name ... ` before a test runs and the result word after it, so output the
test writes lands between them (`name ... noise ok`, or `name ... noise` then `ok` on a line of
its own). The last result word before the next test's line is the test's result. The report
blocks at the end (`FAIL: name` / `ERROR: name` / `UNEXPECTED SUCCESS: name`, each after a
line of 70 `=`) come from the runner after every test finished and always win, so output that
imitates a verbose line (`test_other (m.C) ... ok`) cannot hide a failure. Limits: a forged line
naming a test that never ran (its module failed to import) is believed, and output printed
before a result word on the same line cannot be told apart from the runner's.
"""

from __future__ import annotations

import re

from swebox.grading.parsers._common import (
    ERROR,
    FAILED,
    PASSED,
    SKIPPED,
    XFAIL,
    clean_lines,
    put_worst,
)

_DESC = re.compile(r"^(\w+) \(([\w.]+)\)")
_SUBTEST = re.compile(r"^\s+(\w+) \(([\w.]+)\) (?:\[.*?\] ?)?(?:\(.*?\))?( \.\.\. (.*))?$")
_WORDS = {"ok": PASSED, "FAIL": FAILED, "ERROR": ERROR, "expected failure": XFAIL,
          "unexpected success": FAILED}
_EXACT = re.compile(r"^(ok|FAIL|ERROR|expected failure|unexpected success|skipped(?: .*)?)$")
_TAIL = re.compile(r"(ok|FAIL|ERROR|expected failure|unexpected success|skipped (?:'.*'|\".*\"))$")
_REPORT = re.compile(r"^(FAIL|ERROR|UNEXPECTED SUCCESS): (\w+) \(([\w.]+)\)")
_RAN = re.compile(r"^Ran \d+ tests? in ")
# Django's migration progress may precede the first test's line with no newline between.
_MIGRATION = re.compile(r"^\s*Applying \S+\.\.\.(?: OK)?(?=\w+ \()")
_RULE_EQ, _RULE_DASH = "=" * 70, "-" * 70


def _word(text: str, exact: bool) -> str | None:
    m = (_EXACT.match if exact else _TAIL.search)(text)
    if not m:
        return None
    return SKIPPED if m.group(1).startswith("skipped") else _WORDS[m.group(1)]


def make_id(name: str, cls: str) -> str:
    """`name (cls)`, with Python 3.11+'s repeated method name dropped from `cls`."""
    if cls.endswith("." + name):
        cls = cls[: -len(name) - 1]
    return f"{name} ({cls})"


class _State:
    def __init__(self) -> None:
        self.verbose: dict[str, str] = {}
        self.reports: dict[str, str] = {}
        self.pending: str | None = None  # the test whose result word is awaited
        self.base: str | None = None  # its `name (cls)` form, to match subtests to it
        self.has_result = False
        self.doc_for: str | None = None  # `name (cls)` printed alone: its docstring comes next
        self.doc_is_subtest = False

    def start(self, tid: str, base: str) -> None:
        self.pending, self.base, self.has_result = tid, base, False

    def result(self, status: str) -> None:
        if self.pending is not None:
            self.verbose[self.pending] = status
            self.has_result = True

    def subtest(self, base: str, status: str | None) -> None:
        if status in (FAILED, ERROR):
            parent = self.pending if self.base == base and self.pending else base
            put_worst(self.verbose, parent, status)

    def stop(self) -> None:
        self.pending = self.base = self.doc_for = None


def _rest(st: _State, rest: str) -> None:
    """What follows `name ... ` on a line: a result, or output, or (no newline) the next test."""
    m = _DESC.match(rest)
    if m and rest[m.end():].startswith(" ... "):
        tid = make_id(m.group(1), m.group(2))
        st.start(tid, tid)
        _rest(st, rest[m.end() + 5:])
        return
    status = _word(rest, exact=False)
    if status:
        st.result(status)


def _line(st: _State, line: str) -> None:
    if st.doc_for is not None:
        base, sub, st.doc_for = st.doc_for, st.doc_is_subtest, None
        if " ... " in line:
            m = re.match(r"^(.*) \.\.\. (.*)$", line)
            doc, rest = (m.group(1), m.group(2)) if m and _word(m.group(2), True) else \
                line.split(" ... ", 1)
            if sub:
                st.subtest(base, _word(rest, exact=False))
            else:
                st.start(doc.strip(), base)
                _rest(st, rest)
            return
    line = _MIGRATION.sub("", line)
    m = _SUBTEST.match(line)
    if m:
        base = make_id(m.group(1), m.group(2))
        if m.group(3) is None:
            st.doc_for, st.doc_is_subtest = base, True
        else:
            st.subtest(base, _word(m.group(4), exact=False))
        return
    m = _DESC.match(line)
    if m:
        tail = line[m.end():]
        tid = make_id(m.group(1), m.group(2))
        if tail == "":
            st.pending = None
            st.doc_for, st.doc_is_subtest = tid, False
            return
        if tail.startswith(" ... "):
            st.start(tid, tid)
            _rest(st, tail[5:])
            return
    exact = _word(line.strip(), exact=True)
    if exact:
        st.result(exact)
    elif not st.has_result:
        status = _word(line, exact=False)
        if status:
            st.result(status)


def parse(text: str) -> dict[str, str]:
    """`{test_id: status}` from unittest's or Django's verbose output."""
    st = _State()
    lines = clean_lines(text)
    in_reports = False
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if line == _RULE_EQ:
            st.stop()
            in_reports = True
            m = _REPORT.match(lines[i]) if i < len(lines) else None
            if m:
                tid = make_id(m.group(2), m.group(3))
                # A docstring adds one line between the header and the dashed rule.
                if i + 2 < len(lines) and lines[i + 2] == _RULE_DASH and lines[i + 1].strip():
                    tid = lines[i + 1].strip()
                put_worst(st.reports, tid, ERROR if m.group(1) == "ERROR" else FAILED)
            continue
        if _RAN.match(line):
            st.stop()
            in_reports = False
            continue
        if in_reports:
            continue
        if line == _RULE_DASH:
            st.stop()
            continue
        # `name ... ` with the result still to come lost its trailing space to rstrip.
        _line(st, line + " " if line.endswith(" ...") else line)
    out = dict(st.verbose)
    for tid, status in st.reports.items():
        put_worst(out, tid, status)
    return out
