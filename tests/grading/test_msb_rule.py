"""Multi-SWE-bench's resolved rule over the two real Java rows (google/gson-1093 and
fasterxml/jackson-core-980), fed fix-stage status maps as swebox's grader reports them."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from swebox.grading.rules import judge, rule_for
from swebox.tasks.model import Task
from swebox.tasks.readers import read_tasks

GSON = "google__gson-1093"
JACKSON = "fasterxml__jackson-core-980"


@pytest.fixture(scope="module")
def rows(realdata: Path) -> dict[str, Task]:
    tasks = list(read_tasks(realdata / "datasets" / "multiswebench_java_2rows.jsonl"))
    assert all(isinstance(t, Task) for t in tasks), tasks
    return {t.instance_id: t for t in tasks if isinstance(t, Task)}


def _statuses(result: dict[str, Any]) -> dict[str, str]:
    """A row's stage result as the {test: status} map the grader hands to `judge`."""
    out = {t: "PASSED" for t in result["passed_tests"]}
    out |= {t: "FAILED" for t in result["failed_tests"]}
    return out | {t: "SKIPPED" for t in result["skipped_tests"]}


def _with_stages(task: Task, **stages: dict[str, Any]) -> Task:
    extra = copy.deepcopy(task.extra)
    extra.update(stages)
    return task.model_copy(update={"extra": extra})


def test_rows_are_read_with_their_stage_results(rows: dict[str, Task]) -> None:
    assert set(rows) == {GSON, JACKSON}
    for t in rows.values():
        assert rule_for(t) == "multiswebench"
        assert {"run_result", "test_patch_result", "fix_patch_result", "p2p_tests",
                "f2p_tests", "s2p_tests", "n2p_tests"} <= t.extra.keys()


@pytest.mark.parametrize("iid", [GSON, JACKSON])
def test_gold_fix_stage_resolves(rows: dict[str, Task], iid: str) -> None:
    t = rows[iid]
    j = judge(t, _statuses(t.extra["fix_patch_result"]))
    assert (j.rule, j.resolved, j.partial, j.mismatched, j.note) == (
        "multiswebench", True, 1.0, {}, None)
    listed = sum(len(t.extra[f"{k}_tests"]) for k in ("p2p", "f2p", "s2p", "n2p"))
    assert j.expected == j.matched == listed  # gson: 87 p2p + 1 f2p; jackson: 1 f2p


@pytest.mark.parametrize("iid", [GSON, JACKSON])
def test_empty_patch_does_not_resolve(rows: dict[str, Task], iid: str) -> None:
    t = rows[iid]
    j = judge(t, _statuses(t.extra["test_patch_result"]))  # the fix stage = the test stage
    assert not j.resolved
    assert j.note is not None and j.note.startswith("no test newly fixed")
    f2p = next(iter(t.extra["f2p_tests"]))
    assert j.mismatched == {f2p: "FAILED"}
    assert j.matched == j.expected - 1


def test_failing_p2p_test(rows: dict[str, Task]) -> None:
    t = rows[GSON]
    statuses = _statuses(t.extra["fix_patch_result"])
    victim = "com.google.gson.functional.FieldNamingTest"
    assert victim in t.extra["p2p_tests"]
    statuses[victim] = "FAILED"
    j = judge(t, statuses)
    assert not j.resolved
    assert j.note == f"pass->fail: {victim} (FAILED)"
    assert j.mismatched == {victim: "FAILED"}
    assert j.partial == 87 / 88
    statuses[victim] = "ERROR"  # an error counts as a failure, as the harness maps it
    assert judge(t, statuses).note == f"pass->fail: {victim} (ERROR)"


def test_missing_listed_test(rows: dict[str, Task]) -> None:
    t = rows[GSON]
    statuses = _statuses(t.extra["fix_patch_result"])
    victim = "com.google.gson.stream.JsonReaderTest"
    del statuses[victim]
    j = judge(t, statuses)
    assert not j.resolved
    assert j.note == f"p2p test not p2p after the fix: {victim} (MISSING)"
    assert j.mismatched == {victim: "MISSING"}
    skipped = {**statuses, victim: "SKIPPED"}  # PASS -> SKIP is no pass->fail, but not p2p
    assert judge(t, skipped).note == f"p2p test not p2p after the fix: {victim} (SKIPPED)"
    # jackson's only listed test missing: nothing was fixed, which the harness checks first
    jt = rows[JACKSON]
    jj = judge(jt, {})
    assert not jj.resolved and jj.note == "the fix stage has no test results"
    jj = judge(jt, {"com.fasterxml.jackson.other.Test": "PASSED"})
    assert not jj.resolved and jj.partial == 0.0
    assert jj.mismatched == {"com.fasterxml.jackson.failing.PerfBigDecimalToInteger968":
                             "MISSING"}


def test_unlisted_test_pass_to_fail(rows: dict[str, Task]) -> None:
    # Every test that passes in the real rows' test stage is listed (gson's 87 passes are its
    # 87 p2p tests), so the row gains one that passed there and that the gold fix stage left
    # out (NONE), which the harness allows and leaves unlisted.
    t = rows[GSON]
    extra_test = "com.google.gson.internal.ExtraTest"
    run, before = (copy.deepcopy(t.extra[k]) for k in ("run_result", "test_patch_result"))
    for stage in (run, before):
        stage["passed_tests"].append(extra_test)
        stage["passed_count"] += 1
    row = _with_stages(t, run_result=run, test_patch_result=before)
    gold = _statuses(t.extra["fix_patch_result"])
    assert extra_test not in gold and judge(row, gold).resolved
    j = judge(row, {**gold, extra_test: "FAILED"})
    assert not j.resolved
    assert j.note == f"pass->fail: {extra_test} (FAILED)"
    assert j.mismatched == {} and j.partial == 1.0  # every listed test still landed

    # Passing only without the test patch, absent with it, failing after the fix: the
    # harness's anomalous pattern.
    run_only = _with_stages(t, run_result=run)
    j = judge(run_only, {**gold, extra_test: "FAILED"})
    assert not j.resolved and j.note is not None and j.note.startswith(f"anomaly: {extra_test}")


def test_fail_to_fail_unlisted_is_allowed(rows: dict[str, Task]) -> None:
    t = rows[GSON]
    statuses = _statuses(t.extra["fix_patch_result"])
    failing = t.extra["fix_patch_result"]["failed_tests"]
    assert failing and all(statuses[f] == "FAILED" for f in failing)
    assert judge(t, statuses).resolved  # the gold run keeps 3 unlisted tests failing
    newly = {**statuses, "com.google.gson.NewTest": "PASSED"}  # an extra NONE->PASS is fine
    assert judge(t, newly).resolved


def test_rows_without_stage_results_use_the_list_rule(rows: dict[str, Task]) -> None:
    t = rows[JACKSON]
    extra = {k: v for k, v in t.extra.items()
             if k not in ("run_result", "test_patch_result", "fix_patch_result")}
    old = t.model_copy(update={"extra": extra})
    f2p = "com.fasterxml.jackson.failing.PerfBigDecimalToInteger968"
    j = judge(old, {f2p: "PASSED"})
    assert j.rule == "multiswebench" and j.resolved
    assert j.note is not None and "list rule" in j.note
    j = judge(old, {f2p: "FAILED"})
    assert not j.resolved and j.mismatched == {f2p: "FAILED"}
