"""`go test -v` output.

Results are the `--- PASS: TestX (0.00s)` / `--- FAIL:` / `--- SKIP:` lines; subtests are
indented four spaces per level and named `TestX/sub_name` (go itself turns spaces in subtest
names into underscores, so ids never contain spaces). Test id: the name as printed, without the
package (as SWE-smith's Go rows store it). `=== RUN`/`PAUSE`/`CONT`/`NAME` lines, package lines
(`ok pkg 0.1s`, `FAIL pkg`, `? pkg [no test files]`) and benchmarks are ignored. A test that
started but never reported (a panic or timeout killed the binary) is absent, not FAILED.

Forged lines: output a test writes through `t.Log` is indented and prefixed with `file.go:N:`,
so it never looks like a result line; an unindented result line naming a subtest (with a `/`)
or an indented one naming a top-level test is not one go would print, and is ignored. Output
written straight to stdout (`fmt.Println`) can still imitate a result line, so two reports
of one id keep the worse status: a forged PASS cannot hide a real FAIL. Limit: a forged line
for a test that never ran is believed.
"""

from __future__ import annotations

import re

from swebox.grading.parsers._common import FAILED, PASSED, SKIPPED, clean_lines, put_worst

_RESULT = re.compile(r"^( *)--- (PASS|FAIL|SKIP): (\S+) \(\d+(?:\.\d+)?s\)$")
_MAP = {"PASS": PASSED, "FAIL": FAILED, "SKIP": SKIPPED}


def parse(text: str) -> dict[str, str]:
    """`{test_name: status}` from `go test -v` output."""
    out: dict[str, str] = {}
    for line in clean_lines(text):
        m = _RESULT.match(line)
        if not m:
            continue
        indent, name = m.group(1), m.group(3)
        if bool(indent) != ("/" in name):
            continue
        put_worst(out, name, _MAP[m.group(2)])
    return out
