"""Maven Surefire's console output (`mvn test`), Surefire 2.x and 3.x.

Ids, two kinds:

- Per class, from each class's summary line
  (`Tests run: 3, Failures: 1, Errors: 0, Skipped: 0, Time elapsed: 0.1 s <<< FAILURE! - in
  com.x.FooTest`; older Surefire names the class only in the `Running com.x.FooTest` line
  before it). Id: the fully qualified class name, as Multi-SWE-bench's Java tasks key their
  maps. Status: FAILED if any test failed, else ERROR if any errored, else SKIPPED if every
  test was skipped, else PASSED. A class that ran no tests gets no entry.
- Per method, for methods Surefire names as failing: `com.x.FooTest.testBar -- Time elapsed:
  ... <<< FAILURE!` (3.x), `testBar(com.x.FooTest)  Time elapsed: ... <<< ERROR!` (2.x) and
  the entries under `Failures:` / `Errors:` (`Failed tests:` / `Tests in error:` in 2.x) in
  the final Results block (`FooTest.testBar:42 message`; a short class name is completed from
  the classes that ran when that is unambiguous, else kept as printed). Id:
  `com.x.FooTest.testBar`, parameters and invocation indices dropped. Passing methods are
  never listed by Surefire, so they have no entry; FAILURE -> FAILED, ERROR -> ERROR. Flaky
  tests (failed, then passed on a rerun) are not marked.

Forged lines: a test's stdout is printed without Maven's `[INFO]`/`[ERROR]` prefix, so once the
log shows prefixed class summaries, unprefixed ones are ignored; several summaries of one class
keep the worst status, so a forged passing summary cannot hide a failing class. Limit: without
Maven's prefixes (old Maven, or Surefire run directly) a forged summary of a class that did not
run is believed.
"""

from __future__ import annotations

import re

from swebox.grading.parsers._common import (
    ERROR,
    FAILED,
    PASSED,
    SKIPPED,
    clean_lines,
    put_worst,
)

_LEVEL = r"(\[(?:INFO|WARNING|WARN|ERROR)\] )?"
_ELAPSED = r"Time elapsed: [\d.,]+ s(?:ec)?"
_RUNNING = re.compile(rf"^{_LEVEL}Running (\S+)$")
_CLASS = re.compile(
    rf"^{_LEVEL}Tests run: (\d+), Failures: (\d+), Errors: (\d+), Skipped: (\d+)"
    rf"(?:, Flakes: \d+)?, {_ELAPSED}(?: <<< (?:FAILURE|ERROR)!)?(?: -+ in (\S+))?$")
_METHOD3 = re.compile(rf"^{_LEVEL}(\S.*?) -+ {_ELAPSED} <<< (FAILURE|ERROR)!$")
_METHOD2 = re.compile(rf"^{_LEVEL}([\w$]+)\(([\w.$]+)\)\s+{_ELAPSED}\s+<<< (FAILURE|ERROR)!$")
_SUBSECTION = re.compile(
    rf"^{_LEVEL}(Failures|Errors|Flakes|Failed tests|Tests in error):\s*(.*)$")
_ENTRY2 = re.compile(r"^([\w$]+)\(([\w.$]+)\)")
_RESULTS = re.compile(rf"^{_LEVEL}Results ?:$")
_BUILD = re.compile(rf"^{_LEVEL}BUILD ")
_TOTAL = re.compile(rf"^{_LEVEL}Tests run: \d+, Failures: \d+, Errors: \d+, Skipped: \d+")


def _class_status(run: int, failures: int, errors: int, skipped: int) -> str | None:
    if run == 0:
        return None
    if failures:
        return FAILED
    if errors:
        return ERROR
    return SKIPPED if skipped >= run else PASSED


def _method_id(token: str, classes: set[str]) -> str | None:
    """`com.x.FooTest.testBar` from a Results entry's first word (`FooTest.testBar:42`)."""
    token = re.sub(r":\d*$", "", token.split("(")[0].split("[")[0])
    if ">" in token:  # `FooTest>AbstractTest.testX`: the method is inherited; keep FooTest
        token = token.split(">")[0] + "." + token.rsplit(".", 1)[-1]
    if "." not in token:
        return None
    cls, method = token.rsplit(".", 1)
    if cls not in classes:
        full = [c for c in classes if c.rsplit(".", 1)[-1] == cls.rsplit(".", 1)[-1]]
        if len(full) == 1:
            cls = full[0]
    return f"{cls}.{method}"


def parse(text: str) -> dict[str, str]:
    """`{class or class.method: status}` from Maven Surefire console output."""
    lines = clean_lines(text)
    prefixed = any(m.group(1) for m in map(_CLASS.match, lines) if m)
    classes: dict[str, str] = {}
    methods: dict[str, str] = {}
    entries: list[tuple[str, str]] = []  # (first word of a Results entry, status)
    current: str | None = None
    results: str | None = None  # the Results subsection being read, if any
    for line in lines:
        m = _RUNNING.match(line)
        if m:
            current = m.group(2)
            continue
        m = _CLASS.match(line)
        if m:
            name = m.group(6) or current
            status = _class_status(*(int(m.group(i)) for i in range(2, 6)))
            if name and status and (m.group(1) or not prefixed):
                put_worst(classes, name, status)
            continue
        m = _METHOD3.match(line)
        if m:
            tid = re.sub(r"[(\[].*$", "", m.group(2))
            put_worst(methods, tid, FAILED if m.group(3) == "FAILURE" else ERROR)
            continue
        m = _METHOD2.match(line)
        if m:
            put_worst(methods, f"{m.group(3)}.{m.group(2)}",
                      FAILED if m.group(4) == "FAILURE" else ERROR)
            continue
        if _RESULTS.match(line):
            results = ""
            continue
        if results is None:
            continue
        m = _SUBSECTION.match(line)
        if m:
            # Surefire 2.x starts the list on the header's line: `Failed tests:   t(C): msg`.
            results, line = m.group(2), m.group(3)
        if _TOTAL.match(line) or _BUILD.match(line):
            results = None
            continue
        body = re.sub(rf"^{_LEVEL}", "", line).strip()
        if not body or results in ("", "Flakes") or re.match(r"Run \d+:", body):
            continue
        status = FAILED if results in ("Failures", "Failed tests") else ERROR
        m = _ENTRY2.match(body)
        entries.append((f"{m.group(2)}.{m.group(1)}" if m else body.split()[0], status))
    known = set(classes) | {t.rsplit(".", 1)[0] for t in methods}
    for token, kind in entries:
        method_id = _method_id(token, known)
        if method_id:
            put_worst(methods, method_id, kind)
    return {**classes, **methods}
