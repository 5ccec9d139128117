"""When is a task resolved? One documented rule per dataset family.

- swebench (SWE-bench, Lite, Verified, SWE-Gym, SWE-smith, client sheets): resolved if and only if
  every FAIL_TO_PASS and every PASS_TO_PASS test passes (PASSED or XFAIL); a test missing from
  the results counts as failed. A task with no expected tests is never resolved.
- r2e (R2E-Gym): the parsed {test: status} map equals `expected_output` exactly after
  normalisation: ANSI codes and " - message" suffixes stripped, and pytest node ids
  (`tests/test_x.py::TestC::test_y`) reduced to R2E's keys (`TestC.test_y`).
- multiswebench: Multi-SWE-bench's transitions after the fix: every f2p, s2p (skipped before)
  and n2p (absent before) test passes, and every p2p test still passes. The reader puts the
  first three into FAIL_TO_PASS, so this is the swebench rule over those lists, kept under its
  own name so reports say which rule judged.

Every rule also gives a partial score: the fraction of expected tests whose result matches.
It is reported beside the verdict and never makes a task resolved.
"""

from __future__ import annotations

import re

from pydantic import BaseModel

from swebox.tasks.model import Task

PASSING = frozenset({"PASSED", "XFAIL"})
MISSING = "MISSING"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class Judgement(BaseModel):
    rule: str
    resolved: bool
    partial: float
    expected: int
    matched: int
    mismatched: dict[str, str] = {}  # test -> observed status (MISSING when absent)
    note: str | None = None


def rule_for(task: Task) -> str:
    if task.source_format == "multiswebench":
        return "multiswebench"
    if task.fail_to_pass or task.pass_to_pass:
        return "swebench"
    if task.expected_output is not None:
        return "r2e"
    return "swebench"


def judge(task: Task, statuses: dict[str, str], *, missing_passes: bool = False,
          fail_only: bool = False) -> Judgement:
    """The family's rule over `statuses`. `missing_passes`: a listed test absent from the log
    passed (SWE-smith). `fail_only`: only a FAILED status fails (SWE-bench 5's eval_type)."""
    rule = rule_for(task)
    if rule == "r2e":
        return _r2e(task.expected_output or {}, statuses)
    return _lists(rule, task.fail_to_pass + task.pass_to_pass, statuses,
                  missing_passes=missing_passes, fail_only=fail_only)


def _failed(status: str | None, missing_passes: bool, fail_only: bool) -> bool:
    if fail_only:
        return status == "FAILED"
    if status is None:
        return not missing_passes
    return status not in PASSING


def _lists(rule: str, expected: list[str], statuses: dict[str, str], *,
           missing_passes: bool = False, fail_only: bool = False) -> Judgement:
    if not expected:
        return Judgement(rule=rule, resolved=False, partial=0.0, expected=0, matched=0,
                         note="the task lists no FAIL_TO_PASS or PASS_TO_PASS tests")
    bad = {t: statuses.get(t, MISSING) for t in dict.fromkeys(expected)
           if _failed(statuses.get(t), missing_passes, fail_only)}
    total = len(dict.fromkeys(expected))
    return Judgement(rule=rule, resolved=not bad, partial=(total - len(bad)) / total,
                     expected=total, matched=total - len(bad), mismatched=bad)


def r2e_key(key: str) -> str:
    """R2E's form of a test id: no colours, no " - message", no file path, `.` between parts."""
    key = _ANSI.sub("", key).strip()
    # The message suffix follows the id; a " - " inside a parametrized id's brackets stays.
    cut = key.find(" - ", key.rfind("]") + 1 if "[" in key else 0)
    if cut >= 0:
        key = key[:cut]
    if "::" in key:
        key = ".".join(key.split("::")[1:])
    return key


def _r2e(expected: dict[str, str], statuses: dict[str, str]) -> Judgement:
    want = {r2e_key(k): _ANSI.sub("", v).strip().upper() for k, v in expected.items()}
    got = {r2e_key(k): v for k, v in statuses.items()}
    if not want:
        return Judgement(rule="r2e", resolved=False, partial=0.0, expected=0, matched=0,
                         note="the task's expected_output is empty")
    bad = {k: got.get(k, MISSING) for k, v in want.items() if got.get(k) != v}
    extra = sorted(set(got) - set(want))
    matched = len(want) - len(bad)
    note = f"{len(extra)} test(s) ran that the expected map does not list" if extra else None
    return Judgement(rule="r2e", resolved=not bad and not extra, partial=matched / len(want),
                     expected=len(want), matched=matched, mismatched=bad, note=note)
