"""The parser registry and `parse_log` across every format, and the `parse-log` command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from swebox.cli.parse_log import parse_log as parse_log_command
from swebox.errors import BadInput
from swebox.grading.parsers import PARSERS, STATUSES, parse_log, parse_pytest

# One small log per format: colour codes around the status words (as each runner prints them
# with colour forced) and a byte that is not UTF-8.
COLOURED: dict[str, tuple[bytes, dict[str, str]]] = {
    "pytest": (b"\x1b[32mPASSED\x1b[0m t.py::test_\xff\n\x1b[31mFAILED\x1b[0m t.py::b - x\n",
               {"t.py::test_\ufffd": "PASSED", "t.py::b": "FAILED"}),
    "unittest": (b"test_a (m.C) ... \x1b[32mok\x1b[0m\n"
                 b"test_b (m.C) ... \x1b[31mFAIL\x1b[0m\n\xff\n",
                 {"test_a (m.C)": "PASSED", "test_b (m.C)": "FAILED"}),
    "django": (b"test_a (m.C)\nDoc \xff line ... \x1b[32mok\x1b[0m\n",
               {"Doc \ufffd line": "PASSED"}),
    "sympy": (b"sympy/a/tests/test_a.py[2] \ntest_a \x1b[0;32mok\x1b[0m\n"
              b"test_b \x1b[0;31mF\x1b[0m      \x1b[0;31m[FAIL]\x1b[0m\n\xff\n",
              {"test_a": "PASSED", "test_b": "FAILED"}),
    "gotest": (b"=== RUN   TestA\n\x1b[32m--- PASS: TestA (0.00s)\x1b[0m\n\xff\xfe\n",
               {"TestA": "PASSED"}),
    "cargo": (b"running 2 tests\ntest a::b ... \x1b[32mok\x1b[0m\n"
              b"test a::c ... \x1b[31mFAILED\x1b[0m\n\xff\ntest result: FAILED. 1 passed\n",
              {"a::b": "PASSED", "a::c": "FAILED"}),
    "jest": ("\x1b[0m\x1b[7m\x1b[1m\x1b[32m PASS \x1b[39m\x1b[22m\x1b[27m\x1b[0m "
             "src/a.test.js\n  \x1b[32m✓\x1b[39m works \x1b[2m(2 ms)\x1b[22m\n".encode()
             + b"  \x1b[31m\xe2\x9c\x95\x1b[39m bad \xff\n",
             {"src/a.test.js > works": "PASSED", "src/a.test.js > bad \ufffd": "FAILED"}),
    "maven": (b"[\x1b[1;34mINFO\x1b[m] Running com.x.\xffTest\n[\x1b[1;34mINFO\x1b[m] \x1b[1;32m"
              b"Tests run: 1, Failures: 0, Errors: 0, Skipped: 0\x1b[m, Time elapsed: 0.01 s "
              b"-- in com.x.ATest\n",
              {"com.x.ATest": "PASSED"}),
    "junit": (b'<?xml version="1.0" encoding="utf-8"?>\n<testsuite name="s">'
              b'<testcase classname="m" name="t\xff\x1b[31m"/>'
              b'<testcase classname="m" name="u"><failure message="\x1b[1mboom"/></testcase>'
              b"</testsuite>",
              {"m::t\ufffd": "PASSED", "m::u": "FAILED"}),
}


def test_registry_covers_every_format() -> None:
    assert set(PARSERS) == set(COLOURED)
    assert STATUSES == ("PASSED", "FAILED", "SKIPPED", "ERROR", "XFAIL")
    assert PARSERS["django"] is PARSERS["unittest"]


@pytest.mark.parametrize("fmt", sorted(COLOURED))
def test_ansi_and_bytes_that_are_not_utf8(fmt: str) -> None:
    data, want = COLOURED[fmt]
    got = parse_log(fmt, data)
    assert got == want
    assert set(got.values()) <= set(STATUSES)
    assert all("\x1b" not in k for k in got)


@pytest.mark.parametrize("fmt", sorted(COLOURED))
def test_text_and_bytes_agree(fmt: str) -> None:
    data, _ = COLOURED[fmt]
    assert parse_log(fmt, data) == parse_log(fmt, data.decode("utf-8", errors="replace"))


@pytest.mark.parametrize("fmt", sorted(COLOURED))
@pytest.mark.parametrize("empty", ["", b"", "\n\n", b"  \r\n", "\x1b[0m\n"])
def test_empty_logs(fmt: str, empty: str | bytes) -> None:
    assert parse_log(fmt, empty) == {}


@pytest.mark.parametrize("fmt", sorted(set(COLOURED) - {"junit"}))
def test_binary_noise_never_crashes(fmt: str) -> None:
    noise = bytes(range(256)) * 8 + b"\n\x00\xff\x1b[\x1b]\x07\r\n" * 5
    assert parse_log(fmt, noise) == {}


def test_unknown_format_names_the_valid_ones() -> None:
    with pytest.raises(BadInput) as e:
        parse_log("nose", "ok")
    msg = str(e.value)
    assert "\n" not in msg and "'nose'" in msg
    assert all(name in msg for name in PARSERS)


def test_parse_pytest_stays_importable() -> None:
    assert parse_pytest("PASSED t.py::test_a\n") == {"t.py::test_a": "PASSED"}


# The command, registered on a small app as the CLI registers it (`swebox eval parse-log`).
_app = typer.Typer()
_app.command("parse-log")(parse_log_command)
_app.command("other")(lambda: None)  # two commands, so the name is part of the invocation


def test_cli_prints_sorted_json(tmp_path: Path) -> None:
    log = tmp_path / "out.log"
    log.write_bytes(b"FAILED t.py::test_b - boom\nPASSED t.py::test_a[x \xff]\n")
    res = CliRunner().invoke(_app, ["parse-log", str(log)])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout) == {"t.py::test_a[x \ufffd]": "PASSED",
                                      "t.py::test_b": "FAILED"}
    assert res.stdout == json.dumps(json.loads(res.stdout), sort_keys=True, indent=2) + "\n"
    assert res.stdout.index("test_a") < res.stdout.index("test_b")


def test_cli_format_option(tmp_path: Path) -> None:
    log = tmp_path / "go.log"
    log.write_text("=== RUN   TestA\n--- FAIL: TestA (0.00s)\nFAIL\n")
    for flag in ("--format", "-f"):
        res = CliRunner().invoke(_app, ["parse-log", flag, "gotest", str(log)])
        assert res.exit_code == 0, res.output
        assert json.loads(res.stdout) == {"TestA": "FAILED"}


def test_cli_reads_stdin() -> None:
    res = CliRunner().invoke(_app, ["parse-log", "-f", "cargo", "-"],
                             input=b"running 1 test\ntest a ... ok\n\ntest result: ok.\n")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout) == {"a": "PASSED"}


def test_cli_missing_file_and_bad_format(tmp_path: Path) -> None:
    res = CliRunner().invoke(_app, ["parse-log", str(tmp_path / "nope.log")])
    assert isinstance(res.exception, BadInput)
    assert "nope.log" in str(res.exception) and "\n" not in str(res.exception)
    res = CliRunner().invoke(_app, ["parse-log", str(tmp_path)])
    assert isinstance(res.exception, BadInput)
    res = CliRunner().invoke(_app, ["parse-log", "-f", "nose", str(tmp_path / "nope.log")])
    assert isinstance(res.exception, BadInput) and "'nose'" in str(res.exception)


def test_cli_malformed_junit_is_bad_input(tmp_path: Path) -> None:
    report = tmp_path / "r.xml"
    report.write_text("<testsuite><testcase name='a'>")
    res = CliRunner().invoke(_app, ["parse-log", "-f", "junit", str(report)])
    assert isinstance(res.exception, BadInput)
