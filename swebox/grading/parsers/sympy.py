"""sympy's own runner (`bin/test -C --verbose`, `sympy.test(verbose=True)`).

Each test file opens a section (`sympy/core/tests/test_x.py[12] `) and every test prints
`test_name ` followed by one result character or word: `ok` -> PASSED, `F` -> FAILED,
`E` -> ERROR, `s` (also `T` timeout, `w` slow, `K` interrupted: all skips) -> SKIPPED,
`f` -> XFAIL, `X` (an XFAIL test that passed) -> PASSED. A skip with a reason prints it first
(`test_x needs numpy s`). The file's `[OK]`/`[FAIL]` marker ends its last test's line.

Test id: the bare function name (`test_sparse_matrix`), as SWE-bench's sympy rows store it.
Two files with a test of the same name share one id; the later line wins there.

After all files the runner reports each failure and exception under a centred header,
`____ sympy/core/tests/test_x.py:test_name ____` (newer sympy uses `::` for failures). Those
headers come from the runner once every test has finished, so they win over the per-test lines:
a test printing `test_other ok` cannot hide test_other's failure. Limit: such a forged line
is believed for a test that never reported at all (its file failed to import).
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
)

_CHARS = {"ok": PASSED, "F": FAILED, "E": ERROR, "s": SKIPPED, "T": SKIPPED, "w": SKIPPED,
          "K": SKIPPED, "f": XFAIL, "X": PASSED}
_FILE = re.compile(r"^(\S+\.py)\[(\d+|\?)\](?: .*)?$")
_TEST = re.compile(r"^(test_\w*)(?: (.*))?$")
_RESULT = re.compile(r"(?:^|\s)(ok|[FEsTwKfX])$")
_HEADER = re.compile(r"^_* (\S+?\.py)::?(\w+) _*$")
_FINISHED = re.compile(r"^=* ?tests finished: ")


def parse(text: str) -> dict[str, str]:
    """`{test_name: status}` from sympy's verbose test output."""
    lines = clean_lines(text)
    sectioned = any(_FILE.match(line) for line in lines)
    out: dict[str, str] = {}
    failed: set[str] = set()  # named under a failure header
    in_file = not sectioned  # a log with no file headers: read every test line
    pending: str | None = None
    for line in lines:
        m = _FILE.match(line)
        if m:
            in_file, pending = m.group(2) != "?", None
            continue
        if _FINISHED.match(line):
            in_file, pending = False, None
            continue
        h = _HEADER.match(line) if not in_file or not sectioned else None
        if h:
            failed.add(h.group(2))
            continue
        if not in_file:
            continue
        # The file's `[OK]`/`[FAIL]` marker, right-aligned after its last test's result.
        last = line.endswith(("[OK]", "[FAIL]"))
        body = line[: line.rfind("[")].rstrip() if last else line
        m = _TEST.match(body)
        if m:
            pending = m.group(1)
            r = _RESULT.search(m.group(2) or "")
            if r:
                out[pending] = _CHARS[r.group(1)]
        elif pending is not None and body.strip() in _CHARS:
            # The result after output the test printed on lines of its own.
            out[pending] = _CHARS[body.strip()]
        if last:
            in_file, pending = False, None
    for name in failed:
        if out.get(name) not in (FAILED, ERROR):
            out[name] = FAILED
    return out
