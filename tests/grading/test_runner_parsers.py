"""go test, cargo, jest and Maven Surefire log parsers: a real Go log with SWE-smith's expected
map, real output of each runner on small projects (captured, trimmed), and forged lines."""

from __future__ import annotations

import json
from pathlib import Path

from swebox.grading.parsers import parse_log


def test_real_swesmith_go_log_matches_exactly(realdata: Path) -> None:
    base = realdata / "logs" / "gotest_v_swesmith_gin"
    want = json.loads(base.with_suffix(".expected.json").read_text())
    got = parse_log("gotest", base.with_suffix(".log").read_bytes())
    assert len(want) == 558
    assert got == want
    assert got["TestContextSetGetAnyKey/*gin.key"] == "PASSED"
    assert got["TestPathCleanMallocs"] == "SKIPPED"
    assert got["TestRouteStaticNoListing"] == "FAILED"


GO = """\
=== RUN   TestTop
=== RUN   TestTop/level_one
=== RUN   TestTop/level_one/level_two
    top_test.go:12: --- PASS: TestF2P (0.00s)
=== RUN   TestTop/skipped
    top_test.go:20: not on CI
--- FAIL: TestTop (0.01s)
    --- FAIL: TestTop/level_one (0.00s)
        --- FAIL: TestTop/level_one/level_two (0.00s)
    --- SKIP: TestTop/skipped (0.00s)
=== RUN   TestF2P
    f2p_test.go:8: wrong
--- FAIL: TestF2P (0.00s)
=== RUN   TestPrinter
--- PASS: TestF2P (0.00s)
--- PASS: TestPrinter/forged (0.00s)
    --- PASS: TestForgedTopLevel (0.00s)
--- PASS: TestPrinter (0.00s)
=== RUN   ExampleHello
--- PASS: ExampleHello (0.00s)
FAIL
FAIL	example.com/m	0.015s
?   	example.com/m/cmd	[no test files]
ok  	example.com/m/util	0.002s
FAIL
"""


def test_go_subtests_skips_and_forged_lines() -> None:
    assert parse_log("gotest", GO) == {
        "TestTop": "FAILED", "TestTop/level_one": "FAILED",
        "TestTop/level_one/level_two": "FAILED", "TestTop/skipped": "SKIPPED",
        # The PASS that TestPrinter printed with fmt.Println cannot hide the real FAIL.
        "TestF2P": "FAILED", "TestPrinter": "PASSED", "ExampleHello": "PASSED"}


# `cargo test --no-fail-fast` on a small crate (cargo 1.95): unit tests, an integration test,
# doc tests; `breaks` prints a forged result line into its captured output.
CARGO = """\
   Compiling demo v0.1.0 (/tmp/cr/demo)
    Finished `test` profile [unoptimized + debuginfo] target(s) in 1.44s
     Running unittests src/lib.rs (target/debug/deps/demo-8348ca7a80742723)

running 4 tests
test inner::tests::breaks ... FAILED
test inner::tests::panics - should panic ... ok
test inner::tests::slow ... ignored, slow
test inner::tests::works ... ok

failures:

---- inner::tests::breaks stdout ----
test inner::tests::fake ... ok
running 1 test
test inner::tests::forged ... ok

thread 'inner::tests::breaks' (4847) panicked at src/lib.rs:26:67:
assertion `left == right` failed
  left: 4
 right: 5
note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace


failures:
    inner::tests::breaks

test result: FAILED. 2 passed; 1 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.19s

error: test failed, to rerun pass `--lib`
     Running tests/integ.rs (target/debug/deps/integ-6a21baa472736a34)

running 1 test
test integ_ok ... ok

test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s

   Doc-tests demo

running 3 tests
test src/lib.rs - ign (line 15) ... ignored
test src/lib.rs - add (line 3) ... ok
test src/lib.rs - sub (line 10) ... FAILED

failures:

---- src/lib.rs - sub (line 10) stdout ----
Test executable failed (exit status: 101).

failures:
    src/lib.rs - sub (line 10)

test result: FAILED. 1 passed; 1 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.11s
"""


def test_cargo_output() -> None:
    assert parse_log("cargo", CARGO) == {
        "inner::tests::breaks": "FAILED", "inner::tests::panics": "PASSED",
        "inner::tests::slow": "SKIPPED", "inner::tests::works": "PASSED",
        "integ_ok": "PASSED", "src/lib.rs - ign (line 15)": "SKIPPED",
        "src/lib.rs - add (line 3)": "PASSED", "src/lib.rs - sub (line 10)": "FAILED"}


def test_cargo_single_thread_result_after_output() -> None:
    log = ("running 2 tests\ntest a::slow ... \nsome output\nok\ntest a::b ... FAILED\n\n"
           "failures:\n    a::b\n\ntest result: FAILED. 1 passed; 1 failed\n")
    assert parse_log("cargo", log) == {"a::slow": "PASSED", "a::b": "FAILED"}


def test_cargo_failures_list_marks_failed() -> None:
    # A result line lost (a test wrote to the terminal mid-line): the list still names it.
    log = ("running 1 test\ntest a::b ... garbled\n\nfailures:\n\nfailures:\n    a::b\n\n"
           "test result: FAILED. 0 passed; 1 failed\n")
    assert parse_log("cargo", log) == {"a::b": "FAILED"}


# `npx jest --verbose` (jest 29) on three files; `logs a forged line` console.logs a line that
# looks like a passing test, and broken.test.js fails to compile.
JEST = """\
  console.log
        ✓ forged pass (1 ms)

      at Object.log (src/math.test.js:9:46)

FAIL src/math.test.js
  ✓ top level test (1 ms)
  ✓ name with > arrow and (parens)
  Math
    ✓ adds numbers (3 ms)
    ✕ fails on purpose (3 ms)
    ✕ logs a forged line (37 ms)
    nested group
      ✓ works deep (1 ms)
      ○ skipped is skipped
      ✎ todo write this later

  ● Math › fails on purpose

    expect(received).toBe(expected) // Object.is equality

    Expected: 3
    Received: 2

  ● Math › logs a forged line

    expect(received).toBe(expected) // Object.is equality

  console.log
    ✓ adds numbers

PASS src/other.test.js (5.123 s)
  Other
    ✓ fine

FAIL src/broken.test.js
  ● Test suite failed to run

    SyntaxError: Cannot use import statement outside a module

Test Suites: 2 failed, 1 passed, 3 total
Tests:       2 failed, 1 skipped, 1 todo, 5 passed, 9 total
Snapshots:   0 total
Time:        0.644 s
Ran all test suites.
"""


def test_jest_verbose_tree() -> None:
    m = "src/math.test.js > "
    assert parse_log("jest", JEST) == {
        m + "top level test": "PASSED", m + "name with > arrow and (parens)": "PASSED",
        m + "Math > adds numbers": "PASSED", m + "Math > fails on purpose": "FAILED",
        m + "Math > logs a forged line": "FAILED",
        m + "Math > nested group > works deep": "PASSED",
        m + "Math > nested group > is skipped": "SKIPPED",
        m + "Math > nested group > write this later": "SKIPPED",
        "src/other.test.js > Other > fine": "PASSED"}


def test_jest_without_verbose_reads_failure_headers() -> None:
    log = ("FAIL src/a.test.js\n  ● Suite › inner › breaks\n\n    expect(x).toBe(y)\n\n"
           "PASS src/b.test.js\n")
    assert parse_log("jest", log) == {"src/a.test.js > Suite > inner > breaks": "FAILED"}


# `mvn -o -B test` (Maven 3.8, Surefire 3.2.5, JUnit 5); AllGoodTest prints a forged class
# summary for FooTest.
MAVEN3 = """\
[INFO] -------------------------------------------------------
[INFO]  T E S T S
[INFO] -------------------------------------------------------
[INFO] Running com.x.ErrTest
[ERROR] Tests run: 2, Failures: 0, Errors: 1, Skipped: 0, Time elapsed: 0.130 s <<< FAILURE! \
-- in com.x.ErrTest
[ERROR] com.x.ErrTest.onlyErr -- Time elapsed: 0.075 s <<< ERROR!
java.lang.RuntimeException: x
	at com.x.ErrTest.onlyErr(ErrTest.java:4)

[INFO] Running com.x.AllGoodTest
Tests run: 9, Failures: 0, Errors: 0, Skipped: 0, Time elapsed: 0.1 s - in com.x.FooTest
Tests run: 1, Failures: 0, Errors: 0, Skipped: 0, Time elapsed: 0.1 s - in com.x.NotRun
[INFO] Tests run: 2, Failures: 0, Errors: 0, Skipped: 0, Time elapsed: 0.034 s \
-- in com.x.AllGoodTest
[INFO] Running com.x.FooTest
[ERROR] Tests run: 4, Failures: 1, Errors: 1, Skipped: 1, Time elapsed: 0.035 s <<< FAILURE! \
-- in com.x.FooTest
[ERROR] com.x.FooTest.testBar -- Time elapsed: 0.015 s <<< FAILURE!
org.opentest4j.AssertionFailedError: expected two ==> expected: <2> but was: <3>
	at com.x.FooTest.testBar(FooTest.java:6)

[ERROR] com.x.FooTest.testBoom -- Time elapsed: 0.003 s <<< ERROR!
java.lang.IllegalStateException: boom
	at com.x.FooTest.testBoom(FooTest.java:7)

[INFO] Running com.x.SkipTest
[WARNING] Tests run: 1, Failures: 0, Errors: 0, Skipped: 1, Time elapsed: 0.001 s \
-- in com.x.SkipTest
[INFO] Running com.x.ParamTest
[ERROR] Tests run: 2, Failures: 1, Errors: 0, Skipped: 0, Time elapsed: 0.02 s <<< FAILURE! \
-- in com.x.ParamTest
[INFO]
[INFO] Results:
[INFO]
[ERROR] Failures:
[ERROR]   FooTest.testBar:6 expected two ==> expected: <2> but was: <3>
[ERROR]   ParamTest>AbstractTest.inherited:12 expected: <1> but was: <2>
[ERROR] Errors:
[ERROR]   ErrTest.onlyErr:4 Runtime x
[ERROR]   FooTest.testBoom:7 IllegalState boom
[INFO]
[ERROR] Tests run: 11, Failures: 2, Errors: 2, Skipped: 2
[INFO]
[INFO] BUILD FAILURE
""".replace("\\\n", "")


def test_maven_surefire3() -> None:
    assert parse_log("maven", MAVEN3) == {
        "com.x.ErrTest": "ERROR", "com.x.AllGoodTest": "PASSED", "com.x.FooTest": "FAILED",
        "com.x.SkipTest": "SKIPPED", "com.x.ParamTest": "FAILED",
        "com.x.ErrTest.onlyErr": "ERROR", "com.x.FooTest.testBar": "FAILED",
        "com.x.FooTest.testBoom": "ERROR", "com.x.ParamTest.inherited": "FAILED"}


def _gson_row(realdata: Path) -> dict[str, list[str]]:
    path = realdata / "datasets" / "multiswebench_java_2rows.jsonl"
    row = next(json.loads(line) for line in path.read_text().splitlines()
               if json.loads(line)["instance_id"] == "google__gson-1093")
    result: dict[str, list[str]] = row["test_patch_result"]
    return result


def test_maven_surefire2_class_ids_match_multiswebench(realdata: Path) -> None:
    result = _gson_row(realdata)  # the run with the test patch and no fix: 4 classes fail
    lines = ["-------------------------------------------------------", " T E S T S",
             "-------------------------------------------------------"]
    for cls in result["passed_tests"] + result["failed_tests"]:
        failing = cls in result["failed_tests"]
        lines += [f"Running {cls}",
                  f"Tests run: 12, Failures: {int(failing)}, Errors: 0, Skipped: 0, "
                  f"Time elapsed: 0.05 sec{' <<< FAILURE!' if failing else ''}"]
        if failing:
            lines += [f"testIt({cls})  Time elapsed: 0.01 sec  <<< FAILURE!",
                      "junit.framework.AssertionFailedError", "\tat junit.framework.Assert"]
    lines += ["", "Results :", "",
              f"Failed tests:   testIt({result['failed_tests'][0]}): expected",
              *[f"  testIt({c}): expected" for c in result["failed_tests"][1:]], "",
              "Tests run: 1092, Failures: 4, Errors: 0, Skipped: 0", ""]
    got = parse_log("maven", "\n".join(lines))
    classes = {k: v for k, v in got.items() if not k.endswith(".testIt")}
    assert classes == {**dict.fromkeys(result["passed_tests"], "PASSED"),
                       **dict.fromkeys(result["failed_tests"], "FAILED")}
    assert {k for k in got if k.endswith(".testIt")} == \
        {f"{c}.testIt" for c in result["failed_tests"]}


def test_maven_forged_summary_without_prefixes_keeps_worst() -> None:
    log = ("Running com.x.A\n"
           "Tests run: 1, Failures: 1, Errors: 0, Skipped: 0, Time elapsed: 0.1 sec <<< FAILURE!\n"
           "Running com.x.B\n"
           "Tests run: 1, Failures: 0, Errors: 0, Skipped: 0, Time elapsed: 0.1 sec - in com.x.A\n"
           "Tests run: 1, Failures: 0, Errors: 0, Skipped: 0, Time elapsed: 0.1 sec\n")
    assert parse_log("maven", log) == {"com.x.A": "FAILED", "com.x.B": "PASSED"}


def test_maven_results_block_forms() -> None:
    log = ("[INFO] Running com.x.FooTest\n"
           "[ERROR] Tests run: 3, Failures: 1, Errors: 1, Skipped: 0, Time elapsed: 0.1 s "
           "<<< FAILURE! - in com.x.FooTest\n"
           "[INFO] Running com.y.FooTest\n"
           "[INFO] Tests run: 1, Failures: 0, Errors: 0, Skipped: 0, Time elapsed: 0.1 s "
           "- in com.y.FooTest\n"
           "[INFO] Results:\n"
           "[ERROR] Failures:\n"
           "[ERROR] com.x.FooTest.testBar:42 expected:<1> but was:<2>\n"
           "[ERROR] com.x.FooTest.testRetried\n"
           "[ERROR]   Run 1: FooTest.testRetried:7 boom\n"
           "[ERROR]   Run 2: FooTest.testRetried:7 boom\n"
           "[ERROR] Errors:\n"
           "[ERROR]   FooTest.testAmbiguous:3 NullPointer\n"  # two classes named FooTest
           "[WARNING] Flakes:\n"
           "[WARNING] com.x.FooTest.testFlaky\n"
           "[ERROR]   Run 1: FooTest.testFlaky:9 once\n"
           "[INFO]   Run 2: PASS\n"
           "[ERROR] Tests run: 4, Failures: 2, Errors: 1, Skipped: 0, Flakes: 1\n")
    assert parse_log("maven", log) == {
        "com.x.FooTest": "FAILED", "com.y.FooTest": "PASSED",
        "com.x.FooTest.testBar": "FAILED", "com.x.FooTest.testRetried": "FAILED",
        "FooTest.testAmbiguous": "ERROR"}


def test_maven_surefire2_tests_in_error_list() -> None:
    log = ("Running com.x.ATest\n"
           "Tests run: 2, Failures: 0, Errors: 2, Skipped: 0, Time elapsed: 0.1 sec "
           "<<< FAILURE!\n\nResults :\n\n"
           "Tests in error: \n  testOne(com.x.ATest): boom\n  testTwo(com.x.ATest)\n\n"
           "Tests run: 2, Failures: 0, Errors: 2, Skipped: 0\n")
    assert parse_log("maven", log) == {"com.x.ATest": "ERROR", "com.x.ATest.testOne": "ERROR",
                                       "com.x.ATest.testTwo": "ERROR"}
