"""Grading with the resolved test spec, end to end on a real engine: rows that carry no test
command (SWE-bench-format rows of a repository no table knows), SWE-bench 5 rows with their own
eval_script (fixed markers swapped, fail_only honoured), a conda env that is activated when the
image has one, and the --test-command override."""

from __future__ import annotations

import pytest

from swebox.grading.grader import GradeOptions, grade, patch_paths
from swebox.grading.runscript import between, grading_program
from swebox.sandbox import start_sandbox
from swebox.tasks.model import Task
from swebox.tasks.specs import TestSpec


@pytest.fixture(scope="module")
def sample(task: Task) -> Task:
    return task


def _as_swebench_row(task: Task, **extra: object) -> Task:
    """The sample as a SWE-bench-format row: no test command of its own, and (as SWE-bench's
    lists are made) expected tests only from the files the test patch touches."""
    files = set(patch_paths(task.test_patch))
    p2p = [t for t in task.pass_to_pass if t.split("::", 1)[0] in files]
    assert p2p, "the sample needs pass-to-pass tests in its test patch's files"
    return task.model_copy(update={"test_command": None, "source_format": "swebench",
                                   "pass_to_pass": p2p,
                                   "repo": "newcomer/tinyini", "version": "0.1",
                                   "extra": dict(extra)})


def _eval_script(task: Task, command: str) -> str:
    """A SWE-bench 5 style eval script (the harness's shape: reset, heredoc test patch,
    fixed markers, reset again)."""
    files = " ".join(p for p in patch_paths(task.test_patch))
    return "\n".join([
        "#!/bin/bash", "set -uxo pipefail", "cd /testbed",
        f"git checkout {task.base_commit} {files}",
        "git apply -v - <<'EOF_114329324912'", task.test_patch.rstrip("\n"),
        "EOF_114329324912", ": '>>>>> Start Test Output'", command,
        ": '>>>>> End Test Output'", f"git checkout {task.base_commit} {files}", ""])


def test_row_without_a_command_gets_the_documented_default(sample: Task) -> None:
    row = _as_swebench_row(sample)
    gold, _ = grade(row, row.gold_patch)
    assert gold.resolved, (gold.infra_failure, gold.mismatched)
    assert gold.default_command and gold.spec_source == "default"
    empty, _ = grade(row, "")
    assert not empty.resolved and empty.infra_failure is None


def test_swebench_5_row_runs_its_own_eval_script(sample: Task) -> None:
    files = [p for p in patch_paths(sample.test_patch) if p.endswith(".py")]
    script = _eval_script(sample, "pytest -rA " + " ".join(files))
    row = _as_swebench_row(sample, eval_script=script, log_parser="parse_log_pytest",
                           eval_type="pass_and_fail")
    gold, log = grade(row, row.gold_patch)
    assert gold.resolved and gold.spec_source == "row" and gold.source == "junit"
    assert ">>>>> Start Test Output" not in log  # swapped for this run's own markers
    empty, _ = grade(row, "")
    assert not empty.resolved
    # the forged fixed marker in a patch's output cannot end the section early
    assert empty.test_exit_code not in (None, 0)


def test_fail_only_counts_only_failed(sample: Task) -> None:
    files = [p for p in patch_paths(sample.test_patch) if p.endswith(".py")]
    # deselect the failing tests: under fail_only a test that did not run is not a failure
    deselect = " ".join(f"--deselect {t}" for t in sample.fail_to_pass)
    script = _eval_script(sample, f"pytest -rA {' '.join(files)} {deselect}")
    row = _as_swebench_row(sample, eval_script=script, log_parser="parse_log_pytest",
                           eval_type="fail_only")
    verdict, _ = grade(row, "")
    assert verdict.resolved and verdict.rule == "swebench"
    strict = _as_swebench_row(sample, eval_script=script, log_parser="parse_log_pytest",
                              eval_type="pass_and_fail")
    verdict2, _ = grade(strict, "")
    assert not verdict2.resolved


def test_conda_env_is_activated_when_the_image_has_one(sample: Task) -> None:
    # A stand-in miniconda whose `conda activate NAME` exports NAME: the grader's program
    # activates `testbed` where /opt/miniconda3 exists and runs unchanged where it does not.
    spec = TestSpec(command='echo "env=${SWEBOX_CONDA_ENV:-none}"', conda_env="testbed",
                    source="swebench-table")
    program = grading_program(spec, "tok", sample.workdir)
    with start_sandbox(sample.run_image or "", workdir=sample.workdir) as sb:
        plain = sb.exec(["bash", "-c", program])
        assert between(plain.output, "tok") == ("env=none\n", 0)
        sb.write_file("/opt/miniconda3/bin/activate",
                      "conda() { export SWEBOX_CONDA_ENV=$2; }\n")
        active = sb.exec(["bash", "-c", program])
        assert between(active.output, "tok") == ("env=testbed\n", 0)


def test_test_command_override(sample: Task) -> None:
    row = _as_swebench_row(sample)
    verdict, _ = grade(row, row.gold_patch, GradeOptions(test_command="pytest -rA tests"))
    assert verdict.resolved and verdict.spec_source == "override"
    none, _ = grade(row.model_copy(update={"language": "cobol"}), row.gold_patch)
    assert none.infra_failure and "--test-command" in none.infra_failure
