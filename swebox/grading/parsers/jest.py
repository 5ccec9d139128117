"""Jest's text output with `--verbose`.

Each test file's results start with `PASS path` or `FAIL path` (with colour on, the label is
padded: ` PASS `; a ` (5.2 s)` duration may follow) and list the tests as a tree, two spaces
of indent per level: describe blocks are plain lines, tests carry a mark: `✓ name (5 ms)` ->
PASSED, `✕ name` -> FAILED, `○ skipped name` (older jest: `○ name`) -> SKIPPED,
`✎ todo name` -> SKIPPED (Windows consoles get `√` and `×`).

Test id: `<file> > <describe> > ... > <test name>`, the file as printed in the header and the
enclosing describe blocks outermost first, joined with " > " (e.g.
`src/x.test.js > Math > nested group > works deep`). Names are kept as written, so a name that
itself contains " > " cannot be split back unambiguously. A name reported twice keeps the worse
status. Without `--verbose` jest prints no tree for passing files; the `● A › b` headers of its
failure reports still give FAILED for `<file> > A > b`.

Forged lines: jest prints a file's console output before its `PASS`/`FAIL` header and the
failure details after the tree, so only the tree itself (from the header to the first blank
line) is read for results; a test logging `✓ other test` changes nothing. `●` failure headers
are read from the details and can only mark tests FAILED.
"""

from __future__ import annotations

import re

from swebox.grading.parsers._common import FAILED, PASSED, SKIPPED, clean_lines, put_worst

_HEADER = re.compile(r"^ ?(PASS|FAIL) +(.+?)(?: \(\d+(?:\.\d+)? m?s\))?$")
_TEST = re.compile(r"^( *)(✓|√|✕|×|○ skipped|○|✎ todo) (.+?)(?: \(\d+(?:\.\d+)? m?s\))?$")
_MARKS = {"✓": PASSED, "√": PASSED, "✕": FAILED, "×": FAILED, "○ skipped": SKIPPED,
          "○": SKIPPED, "✎ todo": SKIPPED}
_BULLET = re.compile(r"^  ● (.+)$")
_SEP = " > "


def parse(text: str) -> dict[str, str]:
    """`{"file > describe > test": status}` from `jest --verbose` output."""
    out: dict[str, str] = {}
    path: str | None = None
    in_tree = False
    groups: list[tuple[int, str]] = []  # (indent, describe name) of the enclosing blocks
    for line in clean_lines(text):
        m = _HEADER.match(line)
        if m:
            path, in_tree, groups = m.group(2), True, []
            continue
        if path is None:
            continue
        if in_tree and _BULLET.match(line):
            in_tree = False  # no tree (jest without --verbose): the failure details follow
        if in_tree:
            if not line.strip():
                in_tree = False
                continue
            indent = len(line) - len(line.lstrip(" "))
            while groups and groups[-1][0] >= indent:
                groups.pop()
            t = _TEST.match(line)
            if t:
                names = [path, *(g for _, g in groups), t.group(3)]
                put_worst(out, _SEP.join(names), _MARKS[t.group(2)])
            else:
                groups.append((indent, line.strip()))
            continue
        b = _BULLET.match(line)
        if b and b.group(1) != "Test suite failed to run":
            put_worst(out, _SEP.join([path, *b.group(1).split(" › ")]), FAILED)
    return out
