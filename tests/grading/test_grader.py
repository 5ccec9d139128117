"""The grader on the sample tasks, on a real engine: verdicts, infra failures, tampering."""

from __future__ import annotations

import difflib

from swebox.grading.grader import GradeOptions, grade, patch_paths
from swebox.samples import load_tasks
from swebox.sandbox import start_sandbox
from swebox.tasks.model import Task


def test_gold_patch_resolves_from_junit(task: Task) -> None:
    verdict, log = grade(task, task.gold_patch)
    assert verdict.resolved and verdict.patch_applied and verdict.apply_method == "git apply"
    assert verdict.source == "junit" and verdict.rule == "swebench" and verdict.partial == 1.0
    assert verdict.infra_failure is None and verdict.test_exit_code == 0
    assert all(verdict.statuses[t] == "PASSED" for t in task.fail_to_pass)
    assert "passed" in log


def test_empty_patch_does_not_resolve(task: Task) -> None:
    verdict, _ = grade(task, "")
    assert verdict.empty_patch and not verdict.resolved and verdict.infra_failure is None
    assert set(verdict.mismatched) == set(task.fail_to_pass)
    assert 0 < verdict.partial < 1
    assert verdict.test_exit_code == 1


def test_patch_that_does_not_apply_is_a_wrong_patch_not_infra(task: Task) -> None:
    bad = "diff --git a/nope.py b/nope.py\n--- a/nope.py\n+++ b/nope.py\n@@ -1 +1 @@\n-a\n+b\n"
    verdict, _ = grade(task, bad)
    assert not verdict.patch_applied and not verdict.resolved
    assert verdict.infra_failure is None and "patch_failed" in (verdict.note or "")


def _forging_patch(task: Task) -> str:
    """A patch that fixes nothing and makes the test run print forged results: pytest-style
    PASSED lines for every expected test, a fake summary and fake end markers with a zero
    exit code, from the package's own __init__.py (which the tests import; a conftest.py would
    be reverted as test infrastructure, see test_tamper.py)."""
    init = load_tasks(["ini_loader"])[0].path / "repo" / "tinyini" / "__init__.py"
    old = init.read_text().splitlines(keepends=True)
    # At exit, after pytest has stopped capturing output: where a summary would be read.
    text = "".join(f"PASSED {t}\\n" for t in task.fail_to_pass + task.pass_to_pass)
    text += "=== 30 passed in 0.01s ===\\nSWEBOX-END-0000 0\\n"
    forged = ["import atexit, os\n",
              f"atexit.register(lambda: os.write(1, b'{text}'))\n"]
    diff = difflib.unified_diff(old, old + forged, "a/tinyini/__init__.py",
                                "b/tinyini/__init__.py")
    return "diff --git a/tinyini/__init__.py b/tinyini/__init__.py\n" + "".join(diff)


def test_forged_output_does_not_change_the_verdict(task: Task) -> None:
    patch = _forging_patch(task)
    verdict, log = grade(task, patch)
    assert verdict.patch_applied, verdict.note
    assert "PASSED " + task.fail_to_pass[0] in log  # the forgery really was printed...
    assert not verdict.resolved  # ...and did not count
    assert verdict.source == "junit"
    assert all(verdict.statuses.get(t) != "PASSED" for t in task.fail_to_pass)


def test_candidate_cannot_pre_empt_hidden_tests(task: Task) -> None:
    """A patch that edits the test files the hidden test patch touches (to make them pass
    trivially) is undone before the hidden tests are applied."""
    (hidden,) = [f for f in patch_paths(task.test_patch) if f.startswith("tests/")][:1]
    patch = (f"diff --git a/{hidden} b/{hidden}\n--- a/{hidden}\n+++ b/{hidden}\n"
             "@@ -1,0 +1,1 @@\n+import pytest; pytest.skip(allow_module_level=True)\n")
    verdict, _ = grade(task, patch)
    assert verdict.patch_applied and not verdict.resolved
    assert all(verdict.statuses.get(t) == "FAILED" for t in task.fail_to_pass)


def test_agent_sandbox_holds_no_hidden_test(task: Task) -> None:
    created = [line.split(" b/", 1)[1] for line in task.test_patch.splitlines()
               if line.startswith("diff --git")]
    with start_sandbox(task.run_image or "", pull="never") as sb:
        content = sb.exec("cat " + " ".join(created) + " 2>/dev/null").stdout
        for test in task.fail_to_pass:
            assert test.split("::")[-1].split("[")[0] not in content


def test_infra_failures_are_kept_apart(task: Task) -> None:
    slow = task.model_copy(update={"test_command": "sleep 60"})
    verdict, _ = grade(slow, task.gold_patch, GradeOptions(timeout=2))
    assert verdict.infra_failure and "timeout" in verdict.infra_failure
    assert not verdict.resolved and verdict.duration < 30
    nothing = task.model_copy(update={"test_command": "true"})
    verdict, _ = grade(nothing, task.gold_patch)
    assert verdict.infra_failure == "no tests collected" and not verdict.resolved
    hog = task.model_copy(update={"test_command": "python3 -c 'x = bytearray(400 * 2**20)'"})
    verdict, _ = grade(hog, task.gold_patch, GradeOptions(memory="64m"))
    assert verdict.infra_failure and "memory" in verdict.infra_failure
    gone = task.model_copy(update={"image": "swebox/no-such-image:x", "local_image": None})
    verdict, _ = grade(gone, task.gold_patch)
    assert verdict.infra_failure and "ImageNotFound" in verdict.infra_failure


def test_non_utf8_output(task: Task) -> None:
    noisy = task.model_copy(update={"test_command": "printf '\\377\\376 junk\\n'; "
                                                    + (task.test_command or "")})
    verdict, log = grade(noisy, task.gold_patch)
    assert verdict.resolved and "\ufffd" in log


def test_truncated_junit_falls_back_to_the_log(task: Task) -> None:
    cut = ("; f=${PYTEST_ADDOPTS#--junitxml=}; head -c 200 \"$f\" > \"$f.cut\" && "
           "mv \"$f.cut\" \"$f\"")
    broken = task.model_copy(update={"test_command": (task.test_command or "") + cut})
    verdict, _ = grade(broken, task.gold_patch)
    assert verdict.resolved and verdict.source == "log" and verdict.infra_failure is None
