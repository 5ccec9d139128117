"""Grading end to end on images in each dataset family's real layout (swebox.samples.layouts):
the row in the family's own format, read by its reader, graded with the spec the resolver picks
for it. Gold resolves, an empty patch does not, nothing is an infrastructure failure."""

from __future__ import annotations

import pytest

from swebox.grading.grader import grade
from swebox.samples import load_tasks
from swebox.samples.layouts import FAMILIES, as_task
from swebox.tasks.model import Task

SPEC = {"swebench": "default", "swegym": "default", "swesmith": "swesmith", "r2e": "r2e",
        "multiswebench": "multiswebench"}


@pytest.fixture(scope="module", params=FAMILIES)
def family_task(request: pytest.FixtureRequest, docker_engine: None) -> tuple[str, Task]:
    sample = load_tasks(["ini_loader"])[0]
    return request.param, as_task(sample, request.param)


def test_gold_resolves_and_empty_does_not(family_task: tuple[str, Task]) -> None:
    family, task = family_task
    # R2E rows carry no patch field (the fix lives in parsed_commit_content): the sample's gold
    gold_patch = task.gold_patch or load_tasks(["ini_loader"])[0].gold_patch
    gold, gold_log = grade(task, gold_patch)
    assert gold.resolved, (family, gold.infra_failure, gold.note, gold.mismatched,
                           gold_log[-1500:])
    assert gold.spec_source == SPEC[family] and not gold.tampering_suspected
    empty, empty_log = grade(task, "")
    assert not empty.resolved and empty.infra_failure is None, (family, empty, empty_log[-800:])


def test_swebench_table_row_runs_the_harness_command_in_the_conda_env(docker_engine: None
                                                                      ) -> None:
    # The sample under a table repository's name: the table's command and re-install run in
    # the (stand-in) conda env `testbed`; the re-install fails harmlessly (no pip offline), as
    # a failing set-up line does in the harness's script too.
    sample = load_tasks(["ini_loader"])[0]
    task = as_task(sample, "swebench").model_copy(update={"repo": "pallets/flask",
                                                          "version": "2.0"})
    verdict, log = grade(task, task.gold_patch)
    assert verdict.resolved and verdict.spec_source == "swebench-table", log[-1500:]
    assert "pytest -rA tests/test_config.py" in log or verdict.source == "junit"


def test_hidden_r2e_tests_are_not_in_the_agents_sandbox(docker_engine: None) -> None:
    from swebox.grading.tamper import hide_from_agent
    from swebox.sandbox import start_sandbox
    from swebox.tasks.specs import resolve_spec

    task = as_task(load_tasks(["ini_loader"])[0], "r2e")
    spec = resolve_spec(task)
    assert spec is not None
    with start_sandbox(task.run_image or "", workdir=task.workdir) as sb:
        assert sb.exec(["test", "-d", "/r2e_tests"]).exit_code == 0  # the image has them
        hide_from_agent(sb, spec.hidden)
        found = sb.exec(["sh", "-c", "ls /r2e_tests /testbed/run_tests.sh 2>&1; "
                         "grep -rl test_file_defaults / --include=*.py 2>/dev/null | "
                         "grep -v '^/proc' | head"])
        assert "No such file" in found.output and "r2e_tests/" not in found.output


def test_agent_sandboxes_start_in_the_tasks_state_without_hidden_tests(docker_engine: None
                                                                        ) -> None:
    from swebox.grading.agent_sandbox import start_agent_sandbox

    sample = load_tasks(["ini_loader"])[0]
    r2e = as_task(sample, "r2e")
    with start_agent_sandbox(r2e) as sb:
        seen = sb.exec(["sh", "-c", "ls -d /r2e_tests /testbed/run_tests.sh /testbed/r2e_tests"
                        " /root/r2e_tests 2>/dev/null; echo done"])
        assert seen.output.strip() == "done"
    smith = as_task(sample, "swesmith")
    with start_agent_sandbox(smith) as sb:
        assert sb.exec(["test", "-e", "tests/test_config.py"]).exit_code != 0  # removed
        # ... and out of reach through git: one parentless commit, no other ref, no blob of
        # the removed test file left in the object store
        assert sb.exec(["git", "rev-list", "--all", "--count"]).stdout.strip() == "1"
        assert sb.exec(["git", "show", "HEAD~1"]).exit_code != 0
        assert sb.exec(["git", "branch", "-a"]).stdout.split() == ["*", "swebox-task"]
        hidden = sb.exec(["sh", "-c", "git cat-file --batch-all-objects --batch-check | "
                          "cut -d' ' -f1 | git cat-file --batch | grep -c "
                          "test_file_defaults_do_not_leak || true"]).stdout.strip()
        assert hidden == "0"
        # the agent's edit from this state grades like the gold patch
        sb.apply_patch(smith.gold_patch, check=True)
        verdict, _ = grade(smith, sb.diff(base="HEAD"))
        assert verdict.resolved
