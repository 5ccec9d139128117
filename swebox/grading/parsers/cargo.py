"""`cargo test` output (libtest's default "pretty" format).

Each test binary prints `running N tests`, one `test <name> ... <result>` line per test and
`test result: ...`. Results: ok -> PASSED, FAILED -> FAILED, `ignored` (also
`ignored, reason`) -> SKIPPED; benchmarks (`bench:`) are left out.

Test id: the name as printed, minus the `- should panic` / `- compile fail` notes libtest and
rustdoc append: `module::tests::name` for unit and integration tests, rustdoc's
`src/lib.rs - path::item (line 3)` for doc tests. One name in two binaries (a unit test and an
integration test both called `tests::it_works`) shares one id, with the worse status.

Forged lines: captured output of failing tests is printed after all results, in the
`failures:` section, and is never read for results (a `running N tests` line there does not
start a new binary: only cargo's own `Running`/`Doc-tests` lines end a block early). The
section's closing list of failed names (after its last `failures:` line) marks those tests
FAILED. Limit: with `--nocapture` (or a test writing to the terminal directly) output lands
among the result lines, where a forged line is believed unless the test's own line reports
worse.
"""

from __future__ import annotations

import re

from swebox.grading.parsers._common import FAILED, PASSED, SKIPPED, clean_lines, put_worst

_RUNNING = re.compile(r"^running \d+ tests?$")
_BINARY = re.compile(r"^ {3,}(Running|Doc-tests) \S")
_LINE = re.compile(r"^test (.+?) \.\.\. ?(.*)$")
_NOTE = re.compile(r" - (?:should panic(?: with .*)?|compile fail|compile)$")
_LISTED = re.compile(r"^    (\S.*)$")


def _status(word: str) -> str | None:
    if word == "ok":
        return PASSED
    if word.startswith("FAILED"):
        return FAILED
    if word == "ignored" or word.startswith("ignored,"):
        return SKIPPED
    return None


def parse(text: str) -> dict[str, str]:
    """`{test_name: status}` from `cargo test` output."""
    out: dict[str, str] = {}
    in_block = in_failures = False
    pending: str | None = None
    listed: list[str] = []
    for line in clean_lines(text):
        if _BINARY.match(line):
            in_block = False  # cargo starts the next test binary (the last one may have died)
            continue
        if not in_block and _RUNNING.match(line):
            # Inside a block this is some test's captured output, not a new binary.
            in_block, in_failures, pending, listed = True, False, None, []
            continue
        if not in_block:
            continue
        if line.startswith("test result: "):
            for name in listed:
                put_worst(out, name, FAILED)
            in_block, listed = False, []
            continue
        if line == "failures:":
            in_failures, pending, listed = True, None, []
            continue
        if in_failures:
            m = _LISTED.match(line)
            if m:
                listed.append(_NOTE.sub("", m.group(1)))
            continue
        m = _LINE.match(line)
        if m:
            pending = _NOTE.sub("", m.group(1))
            status = _status(m.group(2))
            if status:
                put_worst(out, pending, status)
                pending = None
        elif pending is not None and _status(line.strip()):
            # With one test thread libtest prints the name first and the result after the
            # test's own output.
            put_worst(out, pending, _status(line.strip()) or FAILED)
            pending = None
    return out
