"""unittest/Django and sympy log parsers: live runner output, real SWE-bench rows' ids."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from swebox.grading.parsers import parse_log

MODULE = '''\
import sys
import unittest


class T(unittest.TestCase):
    def test_ok(self):
        pass

    def test_doc(self):
        """Docstring first line.

        More lines.
        """

    def test_fail(self):
        self.assertEqual(1, 2)

    def test_fail_doc(self):
        """Failing with a doc."""
        self.assertEqual(1, 2)

    def test_error(self):
        raise RuntimeError("x")

    @unittest.skip("no reason at all")
    def test_skip(self):
        pass

    @unittest.expectedFailure
    def test_xf(self):
        self.assertEqual(1, 2)

    @unittest.expectedFailure
    def test_xpass(self):
        pass

    def test_print_noline(self):
        sys.stderr.write("noise without newline ")

    def test_print_line(self):
        sys.stderr.write("noise with newline\\n")

    def test_forge(self):
        sys.stderr.write("test_fake (tmod.T) ... ok\\n")
        self.fail("boom\\ntest_fail (tmod.T) ... ok")

    def test_sub(self):
        for i in range(3):
            with self.subTest(i=i):
                self.assertLess(i, 1)
'''

UNITTEST_WANT = {
    "test_ok (tmod.T)": "PASSED", "Docstring first line.": "PASSED",
    "test_fail (tmod.T)": "FAILED", "Failing with a doc.": "FAILED",
    "test_error (tmod.T)": "ERROR", "test_skip (tmod.T)": "SKIPPED",
    "test_xf (tmod.T)": "XFAIL", "test_xpass (tmod.T)": "FAILED",
    "test_print_noline (tmod.T)": "PASSED", "test_print_line (tmod.T)": "PASSED",
    "test_forge (tmod.T)": "FAILED", "test_sub (tmod.T)": "FAILED",
    # The forged line printed by test_forge: named, but never passing (see below).
    "test_fake (tmod.T)": "FAILED",
}

# The same module under Python 3.10 (tracebacks trimmed): no method name repeated in the
# parentheses, and a failing subtest prints nothing, so the next test follows on the same line.
PY310 = """\
test_doc (tmod.T)
Docstring first line. ... ok
test_error (tmod.T) ... ERROR
test_fail (tmod.T) ... FAIL
test_fail_doc (tmod.T)
Failing with a doc. ... FAIL
test_forge (tmod.T) ... test_fake (tmod.T) ... ok
FAIL
test_ok (tmod.T) ... ok
test_print_line (tmod.T) ... noise with newline
ok
test_print_noline (tmod.T) ... noise without newline ok
test_skip (tmod.T) ... skipped 'no reason at all'
test_sub (tmod.T) ... test_xf (tmod.T) ... expected failure
test_xpass (tmod.T) ... unexpected success

======================================================================
ERROR: test_error (tmod.T)
----------------------------------------------------------------------
RuntimeError: x

======================================================================
FAIL: test_fail (tmod.T)
----------------------------------------------------------------------
AssertionError: 1 != 2

======================================================================
FAIL: test_fail_doc (tmod.T)
Failing with a doc.
----------------------------------------------------------------------
AssertionError: 1 != 2

======================================================================
FAIL: test_forge (tmod.T)
----------------------------------------------------------------------
AssertionError: boom
test_fail (tmod.T) ... ok

======================================================================
FAIL: test_sub (tmod.T) (i=1)
----------------------------------------------------------------------
AssertionError: 1 not less than 1

----------------------------------------------------------------------
Ran 12 tests in 0.001s

FAILED (failures=5, errors=1, skipped=1, expected failures=1, unexpected successes=1)
"""


def test_live_unittest_run(tmp_path: Path) -> None:
    (tmp_path / "tmod.py").write_text(MODULE)
    out = subprocess.run([sys.executable, "-m", "unittest", "-v", "tmod"], cwd=tmp_path,
                         capture_output=True)
    assert b"Ran 12 tests" in out.stderr
    assert parse_log("unittest", out.stderr) == UNITTEST_WANT


def test_python_310_output() -> None:
    assert parse_log("unittest", PY310) == UNITTEST_WANT


def test_python_311_names_normalised() -> None:
    log = ("test_a (pkg.mod.C.test_a) ... ok\n"
           "tmod (unittest.loader._FailedTest.tmod) ... ERROR\n"
           "  test_s (pkg.mod.C.test_s) (i=2) ... ERROR\n")
    assert parse_log("unittest", log) == {
        "test_a (pkg.mod.C)": "PASSED", "tmod (unittest.loader._FailedTest)": "ERROR",
        "test_s (pkg.mod.C)": "ERROR"}


def _django_row(realdata: Path) -> dict[str, list[str]]:
    path = realdata / "datasets" / "swebench_lite_test_sweagent_reencoded.jsonl"
    row = next(json.loads(line) for line in path.read_text().splitlines()
               if json.loads(line)["instance_id"] == "django__django-16255")
    return {k: json.loads(row[k]) for k in ("FAIL_TO_PASS", "PASS_TO_PASS")}


def _django_log(tests: list[str], failing: set[str]) -> str:
    """Django's `runtests.py --verbosity 2` output for `tests` (SWE-bench ids)."""
    lines = ["Testing against Django installed in '/testbed/django' with up to 8 processes",
             "Importing application sitemaps_tests", "Found 62 test(s).",
             "Operations to perform:", "  Apply all migrations: admin, sites",
             "Running migrations:", "  Applying admin.0001_initial... OK",
             "  Applying sites.0002_alter_domain_unique... OK",
             "System check identified no issues (0 silenced)."]
    for n, test in enumerate(tests):
        word = "FAIL" if test in failing else "ok"
        if test.startswith("test_"):
            lines.append(f"{test} ... {word}")
        else:  # a docstring-named test: the name line, then its docstring's first line
            lines += [f"test_doc_{n} (sitemaps_tests.test_http.HTTPSitemapTests)",
                      f"{test} ... {word}"]
        if n == 3:  # output a test printed before its result
            lines[-1] = lines[-1][: -len(word)] + "Internal Server Error: /x/"
            lines.append(word)
    lines += ["", "=" * 70]
    lines += [f"FAIL: {t}" for t in failing] + ["-" * 70, "AssertionError", "",
                                                "-" * 70, "Ran 36 tests in 0.411s", "",
                                                "FAILED (failures=1)"]
    return "\n".join(lines) + "\n"


def test_django_ids_match_the_swebench_row(realdata: Path) -> None:
    row = _django_row(realdata)
    tests = row["FAIL_TO_PASS"] + row["PASS_TO_PASS"]
    assert any(not t.startswith("test_") for t in tests)  # docstring-named entries
    gold = parse_log("django", _django_log(tests, set()))
    assert gold == dict.fromkeys(tests, "PASSED")
    before = parse_log("django", _django_log(tests, set(row["FAIL_TO_PASS"])))
    assert before == {**gold, **dict.fromkeys(row["FAIL_TO_PASS"], "FAILED")}


def test_report_blocks_win_over_forged_verbose_lines() -> None:
    log = ("test_f2p (m.C) ... FAIL\n"
           "test_later (m.C) ... \n"
           "test_f2p (m.C) ... ok\n"  # printed by test_later, after test_f2p ran
           "ok\n\n" + "=" * 70 + "\nFAIL: test_f2p (m.C)\n" + "-" * 70 + "\n"
           "AssertionError: x\ntest_later (m.C) ... FAIL\n\n" + "-" * 70 + "\n"
           "Ran 2 tests in 0.1s\n")
    got = parse_log("unittest", log)
    assert got["test_f2p (m.C)"] == "FAILED"
    assert "test_later (m.C)" not in got  # its result was swallowed by the forged line


# sympy's runner on a small test file (sympy 1.14, `PyTestReporter(verbose=True)`): a skip
# with its reason, output a test printed, XPASS, error, xfail, failure.
SYMPY = """\
============================= test process starts ==============================
executable:         /usr/bin/python3  (3.11.7-final-0) [CPython]
architecture:       64-bit
cache:              yes
ground types:       python
numpy:              2.4.6
random seed:        1
hash randomization: off

pkg/tests/test_demo.py[7]
test_skipped needs numpy s
test_prints test_forged ok
ok
test_xpassing X
test_error E
test_ok ok
test_xfailing f
test_fail F                                                               [FAIL]


________________________________ xpassed tests _________________________________
pkg/tests/test_demo.py: test_xpassing

________________________________________________________________________________
______________________ pkg/tests/test_demo.py:test_error _______________________
Traceback (most recent call last):
  File "/tmp/sy/pkg/tests/test_demo.py", line 13, in test_error
    raise ValueError("boom")
ValueError: boom

________________________________________________________________________________
______________________ pkg/tests/test_demo.py::test_fail _______________________
AssertionError

 tests finished: 2 passed, 1 failed, 1 skipped, 1 expected to fail,
1 expected to fail but passed, 1 exceptions, in 0.01 seconds
DO *NOT* COMMIT!
"""


def test_sympy_runner_output() -> None:
    assert parse_log("sympy", SYMPY) == {
        "test_skipped": "SKIPPED", "test_prints": "PASSED", "test_xpassing": "PASSED",
        "test_error": "ERROR", "test_ok": "PASSED", "test_xfailing": "XFAIL",
        "test_fail": "FAILED"}


def test_sympy_ids_match_the_swebench_row(realdata: Path) -> None:
    path = realdata / "datasets" / "swebench_lite_test_sweagent_reencoded.jsonl"
    row = next(json.loads(line) for line in path.read_text().splitlines()
               if json.loads(line)["instance_id"] == "sympy__sympy-13031")
    f2p, p2p = json.loads(row["FAIL_TO_PASS"]), json.loads(row["PASS_TO_PASS"])
    # sympy 1.1's `bin/test -C --verbose`, before the fix: the F2P test fails.
    tests = [f"{t} F" if t in f2p else f"{t} ok" for t in f2p + p2p]
    tests[-1] += " " * 40 + "[FAIL]"
    log = "\n".join(["sympy/matrices/tests/test_sparse.py[11] ", *tests, "", "",
                     "_" * 80, f"{'_' * 20} sympy/matrices/tests/test_sparse.py:{f2p[0]} "
                     f"{'_' * 20}", "  File \"x.py\", line 30, in test_sparse_matrix",
                     "AssertionError", "",
                     "====== tests finished: 10 passed, 1 failed, in 0.5 seconds ======"])
    assert parse_log("sympy", log) == {**dict.fromkeys(p2p, "PASSED"),
                                       **dict.fromkeys(f2p, "FAILED")}


def test_sympy_failure_headers_win_over_forged_lines() -> None:
    log = ("sympy/a/tests/test_a.py[3] \n"
           "test_f2p F\n"
           "test_other \n"
           "test_f2p ok\n"  # printed by test_other after test_f2p ran
           "ok\n"
           "______ sympy/a/tests/test_a.py:test_nothing ______\n"  # also printed: ignored
           "test_last ok                                   [FAIL]\n\n"
           "________________________________________\n"
           "___________ sympy/a/tests/test_a.py:test_f2p ___________\n"
           "AssertionError\n"
           "=== tests finished: 2 passed, 1 failed, in 0.1 seconds ===\n")
    got = parse_log("sympy", log)
    assert got["test_f2p"] == "FAILED"
    assert got["test_last"] == "PASSED"
    assert "test_nothing" not in got
