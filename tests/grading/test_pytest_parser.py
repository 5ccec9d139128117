"""The pytest log parser on real logs with expected maps from ../shared/realdata."""

from __future__ import annotations

import json
from pathlib import Path

from swebox.grading.parsers import parse_pytest


def test_real_swesmith_verbose_log(realdata: Path) -> None:
    log = (realdata / "logs" / "pytest_verbose_swesmith_django-money.log").read_text()
    want = json.loads((realdata / "logs" / "pytest_verbose_swesmith_django-money.expected.json"
                       ).read_text())
    got = parse_pytest(log)
    # Every test SWE-smith's parser found, with the same status...
    assert {k: got.get(k) for k in want} == want
    # ...and beyond those only ids with spaces, which its whitespace split cannot represent.
    extra = set(got) - set(want)
    assert extra and all(" " in k for k in extra)


def test_summary_lines_and_ansi() -> None:
    log = ("\x1b[32mPASSED\x1b[0m tests/a.py::test_x[a b-1]\n"
           "FAILED tests/a.py::test_y - AssertionError: 1 - 2\n"
           "tests/a.py::test_z SKIPPED (no reason) [ 50%]\n"
           "SKIPPED [1] tests/a.py:9: no reason\n"
           "XFAIL tests/a.py::test_w - flaky\n"
           "XPASS tests/a.py::test_v\n")
    assert parse_pytest(log) == {
        "tests/a.py::test_x[a b-1]": "PASSED", "tests/a.py::test_y": "FAILED",
        "tests/a.py::test_z": "SKIPPED", "tests/a.py::test_w": "XFAIL",
        "tests/a.py::test_v": "PASSED"}
