"""Test-log parsers, one file per runner; each returns `{test_id: status}`."""

from swebox.grading.parsers.pytest import parse_pytest

STATUSES = ("PASSED", "FAILED", "SKIPPED", "ERROR", "XFAIL")

__all__ = ["STATUSES", "parse_pytest"]
