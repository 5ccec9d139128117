"""Test-log parsers, one file per runner; each returns `{test_id: status}`.

Statuses are exactly PASSED, FAILED, SKIPPED, ERROR and XFAIL; every module documents its id
form and how it maps the runner's own words. `parse_log(fmt, data)` is the entry point: it
takes text or raw bytes (decoded as UTF-8, undecodable bytes replaced, so a log in another
encoding never crashes the grader) and strips terminal colour codes before the parser runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from swebox.errors import BadInput
from swebox.grading.parsers import cargo, gotest, jest, junit, maven, sympy, unittest
from swebox.grading.parsers._common import STATUSES, put_worst, strip_ansi
from swebox.grading.parsers.pytest import parse as _parse_pytest
from swebox.grading.parsers.pytest import parse_pytest

PARSERS: dict[str, Callable[[str], dict[str, str]]] = {
    "pytest": _parse_pytest,
    "unittest": unittest.parse,
    "django": unittest.parse,  # Django's runner prints unittest's verbose lines
    "sympy": sympy.parse,
    "gotest": gotest.parse,
    "cargo": cargo.parse,
    "jest": jest.parse,
    "maven": maven.parse,
    "junit": junit.parse,
}


def get_parser(fmt: str) -> Callable[[str], dict[str, str]]:
    """The parser registered for `fmt`; BadInput naming the valid formats if there is none."""
    parser = PARSERS.get(fmt)
    if parser is None:
        raise BadInput(f"unknown log format {fmt!r}: expected one of {', '.join(PARSERS)}")
    return parser


def parse_log(fmt: str, data: str | bytes) -> dict[str, str]:
    """`{test_id: status}` from a runner's log (`fmt` names the runner, see `PARSERS`)."""
    parser = get_parser(fmt)
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
    return parser(strip_ansi(text))


def align_truncated_ids(statuses: dict[str, str], known_ids: Iterable[str]) -> dict[str, str]:
    """`statuses` plus entries under the truncated ids a dataset may expect.

    SWE-bench and SWE-smith built their test lists with parsers that split log lines on
    whitespace, so an id with a space is stored cut at it (`t.py::test_fix[select` for
    `t.py::test_fix[select a from b]`). For each such known id that `statuses` lacks, this adds
    it with the worst status among the full ids that cut to it: the cut id stands for all of
    them, and it passes only if they all do.
    """
    out = dict(statuses)
    missing = set(known_ids) - set(statuses)
    if not missing:
        return out
    for test_id, status in statuses.items():
        parts = test_id.split()
        if parts and parts[0] != test_id and parts[0] in missing:
            put_worst(out, parts[0], status)
    return out


__all__ = ["PARSERS", "STATUSES", "align_truncated_ids", "get_parser", "parse_log",
           "parse_pytest"]
