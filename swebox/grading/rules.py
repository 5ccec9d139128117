"""When is a task resolved? One documented rule per dataset family.

- swebench (SWE-bench, Lite, Verified, SWE-Gym, SWE-smith, client sheets): resolved if and only if
  every FAIL_TO_PASS and every PASS_TO_PASS test passes (PASSED or XFAIL); a test missing from
  the results counts as failed. A task with no expected tests is never resolved.
- r2e (R2E-Gym): the parsed {test: status} map equals `expected_output` exactly after
  normalisation: ANSI codes and " - message" suffixes stripped, and pytest node ids
  (`tests/test_x.py::TestC::test_y`) reduced to R2E's keys (`TestC.test_y`).
- multiswebench: Multi-SWE-bench's report check (`harness/report.py::Report.check`, applied by
  `gen_report.py::gen_eval_reports`). Only the fix stage is run; the run and test stages come
  from the row's `run_result` and `test_patch_result`. Each test gets (run, test, fix) statuses
  PASS/FAIL/SKIP/NONE (NONE: absent; the candidate's PASSED/XFAIL are PASS, FAILED/ERROR FAIL,
  SKIPPED SKIP). Resolved iff the fix stage has results; no test is PASS in the test stage and
  FAIL in the fix stage; some test is not PASS in the test stage and PASS in the fix stage; no
  test is PASS in the run stage, SKIP/NONE in the test stage and FAIL in the fix stage; and
  every test of the row's p2p/f2p/s2p/n2p maps lands in that bucket again (test stage
  PASS/FAIL/SKIP/NONE, fix stage PASS). Rows without the stage results get the swebench rule
  over f2p+s2p+n2p and p2p, under this rule's name, with a note saying so.

Every rule also gives a partial score: the fraction of expected tests whose result matches.
It is reported beside the verdict and never makes a task resolved.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel

from swebox.tasks.model import Task
from swebox.tasks.specs import TestSpec

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


def judge(task: Task, statuses: dict[str, str], spec: TestSpec | None = None) -> Judgement:
    """The family's rule over `statuses`; the spec carries the family's quirks for the list
    rule: SWE-smith's "missing means passed", SWE-bench 5's `fail_only` and its skipped
    PASS_TO_PASS test that counts as maintained."""
    rule = rule_for(task)
    if rule == "r2e":
        return _r2e(task.expected_output or {}, statuses)
    if rule == "multiswebench":
        return _msb(task, statuses)
    return _lists(rule, task.fail_to_pass, task.pass_to_pass, statuses, spec)


def _failed(status: str | None, p2p: bool, spec: TestSpec | None) -> bool:
    if spec is not None and spec.eval_type == "fail_only":
        return status == "FAILED"
    if status is None:
        return not (spec is not None and spec.missing_passes)
    if p2p and status == "SKIPPED" and spec is not None and spec.skipped_maintains:
        return False
    return status not in PASSING


def _lists(rule: str, f2p: list[str], p2p: list[str], statuses: dict[str, str],
           spec: TestSpec | None = None) -> Judgement:
    expected = f2p + p2p
    if not expected:
        return Judgement(rule=rule, resolved=False, partial=0.0, expected=0, matched=0,
                         note="the task lists no FAIL_TO_PASS or PASS_TO_PASS tests")
    f2p_set = set(f2p)
    bad = {t: statuses.get(t, MISSING) for t in dict.fromkeys(expected)
           if _failed(statuses.get(t), t not in f2p_set, spec)}
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


# Multi-SWE-bench: the candidate's statuses as its `mapping_to_testresult` reads them; any
# other status (none of swebox's parsers emit one) leaves the test out, like an absent one.
_MSB_STATUS = {"PASSED": "PASS", "XFAIL": "PASS", "FAILED": "FAIL", "ERROR": "FAIL",
               "SKIPPED": "SKIP"}
_MSB_MAPS = ("p2p", "f2p", "s2p", "n2p")  # the order gen_eval_reports checks them in
_MSB_BEFORE = {"p2p": "PASS", "f2p": "FAIL", "s2p": "SKIP", "n2p": "NONE"}


def _msb_stage(value: Any) -> dict[str, str] | None:
    """A row's stage result ({passed,failed,skipped}_tests lists) as {test: PASS|FAIL|SKIP}."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    if not isinstance(value, dict) or not any(
            k in value for k in ("passed_tests", "failed_tests", "skipped_tests")):
        return None
    out: dict[str, str] = {}
    for key, status in (("passed_tests", "PASS"), ("failed_tests", "FAIL"),
                        ("skipped_tests", "SKIP")):  # the harness's order: a later set wins
        for test in value.get(key) or ():
            out[str(test)] = status
    return out


def _msb_listed(extra: dict[str, Any]) -> dict[str, str] | None:
    """The row's listed tests, {test: p2p|f2p|s2p|n2p}; None when the row has no maps."""
    maps = {k: extra.get(f"{k}_tests") for k in _MSB_MAPS}
    if not any(isinstance(v, dict) for v in maps.values()):
        return None
    listed: dict[str, str] = {}
    for kind, tests in maps.items():
        for test in tests if isinstance(tests, dict) else ():
            listed.setdefault(str(test), kind)
    return listed


def _msb(task: Task, statuses: dict[str, str]) -> Judgement:
    run = _msb_stage(task.extra.get("run_result"))
    before = _msb_stage(task.extra.get("test_patch_result"))
    listed = _msb_listed(task.extra)
    if run is None or before is None or listed is None:
        judged = _lists("multiswebench", task.fail_to_pass, task.pass_to_pass, statuses)
        reason = ("the row has no run_result/test_patch_result stage results, so the list rule "
                  "judged (f2p, s2p and n2p must pass, p2p must still pass)")
        judged.note = f"{reason}; {judged.note}" if judged.note else reason
        return judged
    fix = {t: _MSB_STATUS[s] for t, s in statuses.items() if s in _MSB_STATUS}
    tests = sorted(run.keys() | before.keys() | fix.keys())

    def stages(t: str) -> tuple[str, str, str]:
        return run.get(t, "NONE"), before.get(t, "NONE"), fix.get(t, "NONE")

    # Each listed test must land in its bucket again: its test-stage status, then PASS.
    bad = {t: statuses.get(t, MISSING) for t, kind in listed.items()
           if not (stages(t)[1] == _MSB_BEFORE[kind] and stages(t)[2] == "PASS")}
    total = len(listed)
    judged = Judgement(rule="multiswebench", resolved=False, expected=total,
                       matched=total - len(bad), mismatched=bad,
                       partial=(total - len(bad)) / total if total else 0.0)
    broke = [t for t in tests if stages(t)[1:] == ("PASS", "FAIL")]
    odd = [t for t in tests if stages(t)[0] == "PASS" and stages(t)[1] in ("NONE", "SKIP")
           and stages(t)[2] == "FAIL"]
    if not fix:
        judged.note = "the fix stage has no test results"
    elif broke:
        judged.note = f"pass->fail: {broke[0]} ({statuses[broke[0]]})" + _more(broke)
    elif not any(b != "PASS" and f == "PASS" for _, b, f in map(stages, tests)):
        judged.note = "no test newly fixed (none is PASS after the fix and not before it)"
    elif odd:
        judged.note = (f"anomaly: {odd[0]} passed without the test patch, was "
                       f"{stages(odd[0])[1]} with it and fails after the fix" + _more(odd))
    elif bad:
        first = next(iter(bad))
        judged.note = (f"{listed[first]} test not {listed[first]} after the fix: {first} "
                       f"({bad[first]})" + _more(list(bad)))
    else:
        judged.resolved = True
    return judged


def _more(items: list[str]) -> str:
    return f" (and {len(items) - 1} more)" if len(items) > 1 else ""
