"""Resolved rules per dataset family, and partial scores that never resolve."""

from __future__ import annotations

import json
from pathlib import Path

from swebox.grading.rules import judge, r2e_key, rule_for
from swebox.tasks.model import Task


def _task(**kw: object) -> Task:
    return Task.model_validate({"instance_id": "a__b-1", **kw})


def test_swebench_rule() -> None:
    t = _task(fail_to_pass=["t::f1", "t::f2"], pass_to_pass=["t::p1"], source_format="swebench")
    ok = judge(t, {"t::f1": "PASSED", "t::f2": "XFAIL", "t::p1": "PASSED", "t::other": "FAILED"})
    assert (ok.rule, ok.resolved, ok.partial) == ("swebench", True, 1.0)
    missing = judge(t, {"t::f1": "PASSED", "t::p1": "PASSED"})
    assert not missing.resolved and missing.mismatched == {"t::f2": "MISSING"}
    assert round(missing.partial, 4) == 0.6667
    skipped = judge(t, {"t::f1": "PASSED", "t::f2": "SKIPPED", "t::p1": "PASSED"})
    assert not skipped.resolved
    assert not judge(_task(source_format="swebench"), {"x": "PASSED"}).resolved


def test_r2e_rule_on_the_real_expected_map(realdata: Path) -> None:
    row = json.loads((realdata / "datasets" / "r2egym_lite_aiohttp_f0d74880_PARTIAL.json"
                      ).read_text())
    expected = row["expected_output_json"]
    t = _task(expected_output=expected, source_format="r2e")
    assert rule_for(t) == "r2e"
    # the same map as a pytest run reports it: node ids, colours, " - message" suffixes
    observed = {f"tests/test_urldispatch.py::{k.replace('.', '::')}"
                + (" - AssertionError: x" if v == "FAILED" else ""): v
                for k, v in expected.items()}
    observed = {("\x1b[32m" + k + "\x1b[0m"): v for k, v in observed.items()}
    assert judge(t, observed).resolved
    flipped = dict(observed)
    key = next(k for k, v in observed.items() if v == "PASSED")
    flipped[key] = "FAILED"
    j = judge(t, flipped)
    assert not j.resolved and round(j.partial, 4) == round(63 / 64, 4)
    extra = {**observed, "tests/test_x.py::test_new": "PASSED"}
    assert not judge(t, extra).resolved  # exact equality: no unexpected tests either


def test_r2e_key() -> None:
    assert r2e_key("tests/a.py::TestC::test_x") == "TestC.test_x"
    assert r2e_key("tests/a.py::test_x[a - b] - AssertionError: 1 - 2") == "test_x[a - b]"
    assert r2e_key("\x1b[31mTestC.test_y - boom\x1b[0m") == "TestC.test_y"


def test_multiswebench_rule() -> None:
    t = _task(fail_to_pass=["com.A", "com.New"], pass_to_pass=["com.B"],
              source_format="multiswebench")
    assert judge(t, {"com.A": "PASSED", "com.New": "PASSED", "com.B": "PASSED"}).rule == \
        "multiswebench"
    assert not judge(t, {"com.A": "PASSED", "com.B": "PASSED"}).resolved


def test_swebench_5_skipped_pass_to_pass_is_maintained() -> None:
    from swebox.tasks.specs import TestSpec

    task = Task(instance_id="a__b-1", fail_to_pass=["f"], pass_to_pass=["p"])
    statuses = {"f": "PASSED", "p": "SKIPPED"}
    assert not judge(task, statuses).resolved  # SWE-bench 4's rule: skipped is not passed
    v5 = TestSpec(source="row", skipped_maintains=True)
    assert judge(task, statuses, v5).resolved
    assert not judge(task, {"f": "SKIPPED", "p": "PASSED"}, v5).resolved  # not for F2P
