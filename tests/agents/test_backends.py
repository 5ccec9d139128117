"""Episodes on the other backends: Podman, and bwrap (no engine, as on training nodes without
Docker). A group of two forked from one prepared state, the rule agent with the gold patch:
reward 1 each, nothing left behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from swebox.agents import RuleAgent, run_rollouts
from swebox.tasks.model import Task
from tests.conftest import _require


@pytest.mark.parametrize("backend", ["podman", "bwrap"])
def test_rule_agent_group_on_backend(sample_tasks: dict[str, Task], tmp_path: Path,
                                     backend: str) -> None:
    from swebox.samples import load_tasks
    from swebox.samples.builder import build

    _require(backend)
    sample = load_tasks(["ini_loader"])[0]
    if backend == "podman":
        build(sample, "podman")
    report = run_rollouts([sample.to_task()], lambda: RuleAgent(use_gold=True), tmp_path / "r",
                          n=2, workers=2, env_options={"backend": backend})
    assert report.errors == 0 and report.episodes == 2
    assert report.mean_reward == 1.0, report
