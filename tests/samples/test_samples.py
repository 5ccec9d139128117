"""The bundled sample tasks: images build reproducibly, hidden tests stay hidden, and the main
job sees every FAIL_TO_PASS test fail before the gold patch and pass after it."""

from __future__ import annotations

import re

import pytest

from swebox.samples import load_tasks
from swebox.samples.builder import build
from swebox.samples.run import run_task
from swebox.sandbox import start_sandbox

TASKS = load_tasks()


def test_at_least_four_tasks_in_both_naming_conventions() -> None:
    assert len(TASKS) >= 4
    images = [t.image for t in TASKS]
    assert any(re.fullmatch(r"sweb\.eval\.x86_64\.[a-z0-9_.-]+__[a-z0-9_.-]+:latest", i)
               for i in images)
    assert any(re.fullmatch(r"[a-z0-9-]+/[a-z0-9_.-]+_final:[0-9a-f]{40}", i) for i in images)
    for t in TASKS:
        assert set(t.fail_to_pass) | set(t.pass_to_pass) <= set(t.expected_output)
        assert len(t.fail_to_pass) >= 2 and t.problem_statement.strip()


def _added_files(patch: str) -> list[str]:
    return re.findall(r"^\+\+\+ b/(.+)$", patch, flags=re.M)


@pytest.mark.parametrize("task", TASKS, ids=[t.name for t in TASKS])
def test_sample_task_end_to_end(task, docker_backend: str) -> None:  # type: ignore[no-untyped-def]
    build(task, "docker")
    with start_sandbox(task.image, pull="never") as sb:
        assert sb.exec("git rev-parse HEAD").stdout.strip() == task.base_commit
        assert sb.exec("git status --porcelain").stdout == ""
        hidden = [f for f in _added_files(task.test_patch)
                  if "--- /dev/null" in task.test_patch.split(f"+++ b/{f}")[0][-200:]]
        for f in hidden:
            assert not sb.exec(f"test -e {f}").ok, f"{f} should be hidden"
    outcome = run_task(task, "docker")
    assert outcome.error is None, outcome.error
    assert outcome.as_expected, outcome.model_dump()
    assert outcome.gold_method == "git apply"


def test_sample_task_on_podman() -> None:
    from tests.conftest import _require

    _require("podman")
    task = TASKS[0]
    outcome = run_task(task, "podman")
    assert outcome.error is None and outcome.as_expected, outcome.model_dump()
