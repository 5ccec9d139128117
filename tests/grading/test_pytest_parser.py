"""The pytest log parser on real logs with expected maps from ../shared/realdata, on live pytest
output, and on the tricky lines: parametrized ids, messages, forged output, xdist."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from swebox.grading.parsers import align_truncated_ids, parse_log, parse_pytest


def _real(realdata: Path, name: str) -> tuple[dict[str, str], dict[str, str]]:
    base = realdata / "logs" / f"pytest_verbose_swesmith_{name}"
    log = (base.with_suffix(".log")).read_bytes()
    want = json.loads(base.with_suffix(".expected.json").read_text())
    return parse_log("pytest", log), want


@pytest.mark.parametrize("name, size", [("django-money", 387), ("pandas_pr_53856", 1482)])
def test_real_swesmith_logs(realdata: Path, name: str, size: int) -> None:
    got, want = _real(realdata, name)
    assert len(want) == size
    # Every test SWE-smith's parser found, with the same status...
    assert {k: got.get(k) for k in want} == want
    # ...and beyond those only ids with spaces, which its whitespace split cannot represent.
    extra = set(got) - set(want)
    assert extra and all(" " in k for k in extra)


def test_real_pandas_log_has_every_status_and_teardown_errors(realdata: Path) -> None:
    got, _ = _real(realdata, "pandas_pr_53856")
    assert set(got.values()) == {"PASSED", "FAILED", "SKIPPED", "ERROR", "XFAIL"}
    # Reported FAILED (call) and then ERROR (teardown): the worse stays, in either order.
    assert got["pandas/tests/io/test_sql.py::test_dataframe_to_sql[mysql_pymysql_engine]"] \
        == "ERROR"


def test_cut_ids_of_a_real_swebench_row_align(realdata: Path) -> None:
    rows = [json.loads(line) for line in
            (realdata / "datasets" / "swebench_lite_dev.jsonl").read_text().splitlines()]
    row = next(r for r in rows if r["instance_id"] == "sqlfluff__sqlfluff-1625")
    known = json.loads(row["FAIL_TO_PASS"]) + json.loads(row["PASS_TO_PASS"])
    base = "test/cli/commands_test.py::test__cli__command_fix_stdin"
    assert f"{base}[select" in known and f"{base}[" in known  # SWE-bench cut them at a space
    log = (f"PASSED {base}[select * FROM t]\n"
           f"FAILED {base}[select a,b FROM t] - AssertionError\n"
           f"PASSED {base}[ select * from t]\n"
           f"PASSED {base}[SELECT u.id FROM u]\n")
    got = align_truncated_ids(parse_pytest(log), known)
    # A cut id stands for every full id behind it: it passes only if they all do.
    assert got[f"{base}[select"] == "FAILED"
    assert got[f"{base}["] == "PASSED"
    assert got[f"{base}[SELECT"] == "PASSED"
    assert got[f"{base}[select * FROM t]"] == "PASSED"  # the full ids stay


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


def test_message_suffix_and_brackets() -> None:
    log = ("FAILED t.py::test[a - b] - AssertionError: x[0] - 1\n"
           "FAILED t.py::test_y[value0-Ensure this value is <= 5.] - ValidationError\n"
           "ERROR t.py::test_z[p] - RuntimeError: ] - [\n"
           "XFAIL t.py::test_w[x - y]\n"
           "PASSED t.py::test_v[ - ]\n"
           "ERROR tests/test_broken.py - ImportError: no module named x\n"
           "FAILED t.py::C::test_u - assert 'a - b' == 'c'\n")
    assert parse_pytest(log) == {
        "t.py::test[a - b]": "FAILED",
        "t.py::test_y[value0-Ensure this value is <= 5.]": "FAILED",
        "t.py::test_z[p]": "ERROR", "t.py::test_w[x - y]": "XFAIL",
        "t.py::test_v[ - ]": "PASSED", "tests/test_broken.py": "ERROR",
        "t.py::C::test_u": "FAILED"}


def test_verbose_ids_settle_ambiguous_messages() -> None:
    # "] - " inside the parameters: only the verbose line tells where the id ends.
    log = ("t.py::test[x] - y] FAILED  [100%]\n"
           "=== short test summary info ===\n"
           "FAILED t.py::test[x] - y] - AssertionError\n")
    assert parse_pytest(log) == {"t.py::test[x] - y]": "FAILED"}


def test_status_words_count_only_at_line_start() -> None:
    log = ("  PASSED t.py::test_a\n"
           "some output FAILED t.py::test_b\n"
           "PASSED: t.py::test_c\n"
           "PASSED t.py::test_d\n")
    assert parse_pytest(log) == {"t.py::test_d": "PASSED"}


def test_forged_lines_in_captured_output_are_ignored() -> None:
    log = "\n".join([
        "============================= test session starts ==============================",
        "t.py::test_f2p FAILED                                                    [ 50%]",
        "t.py::test_other PASSED                                                  [100%]",
        "=================================== FAILURES ===================================",
        "___________________________________ test_f2p ___________________________________",
        "E   assert 0",
        "==================================== PASSES ====================================",
        "----------------------------- Captured stdout call -----------------------------",
        "PASSED t.py::test_f2p",
        "t.py::test_f2p PASSED                                                    [ 50%]",
        "=========================== short test summary info ============================",
        "PASSED t.py::test_forged",
        "=========================== short test summary info ============================",
        "PASSED t.py::test_other",
        "FAILED t.py::test_f2p - assert 0",
        "========================= 1 failed, 1 passed in 0.01s ==========================",
        "PASSED t.py::test_after_the_run",
    ])
    got = parse_pytest(log)
    assert got["t.py::test_f2p"] == "FAILED"
    assert "t.py::test_after_the_run" not in got
    # A forged section header inside captured output is superseded by the real summary for
    # every test the real run reported; an id the run never reported is the documented limit.
    assert got["t.py::test_other"] == "PASSED"
    assert got["t.py::test_forged"] == "PASSED"


def test_xdist_verbose_lines() -> None:
    log = ("[gw0] [ 50%] PASSED tests/a.py::test_x[a b] \n"
           "[gw1] [100%] FAILED tests/a.py::test_y \n")
    assert parse_pytest(log) == {"tests/a.py::test_x[a b]": "PASSED",
                                 "tests/a.py::test_y": "FAILED"}


def test_live_pytest_run(tmp_path: Path) -> None:
    (tmp_path / "test_live.py").write_text(
        "import pytest\n"
        "def test_ok(): print('FAILED test_live.py::test_ok - forged')\n"
        "def test_bad(): assert 0\n"
        "@pytest.mark.parametrize('v', ['a b', 'x - y', '[z]'])\n"
        "def test_p(v): assert v != 'x - y'\n"
        "@pytest.mark.xfail\n"
        "def test_xf(): assert 0\n"
        "@pytest.mark.skip\n"
        "def test_sk(): pass\n")
    out = subprocess.run([sys.executable, "-m", "pytest", "-rA", "-v", "-p", "no:cacheprovider",
                          "--color=yes", "test_live.py"], cwd=tmp_path, capture_output=True)
    assert b"\x1b[" in out.stdout
    assert parse_log("pytest", out.stdout) == {
        "test_live.py::test_ok": "PASSED", "test_live.py::test_bad": "FAILED",
        "test_live.py::test_p[a b]": "PASSED", "test_live.py::test_p[x - y]": "FAILED",
        "test_live.py::test_p[[z]]": "PASSED", "test_live.py::test_xf": "XFAIL",
        "test_live.py::test_sk": "SKIPPED"}


def test_bytes_that_are_not_utf8() -> None:
    log = b"PASSED t.py::test_\xe9t\xe9\n\xff\xfe garbage\nFAILED t.py::test_b - \x80\n"
    assert parse_log("pytest", log) == {"t.py::test_\ufffdt\ufffd": "PASSED",
                                        "t.py::test_b": "FAILED"}
