"""The main job on the sample tasks: for each task, in its own sandbox, run the tests with the
hidden tests added (before), apply the gold patch, run them again (after), and judge."""

from __future__ import annotations

import time
from collections.abc import Callable

from pydantic import BaseModel

from swebox.errors import SweboxError
from swebox.grading.parsers import parse_pytest
from swebox.jobs import run_all
from swebox.samples import SampleTask
from swebox.samples.builder import build
from swebox.sandbox import start_sandbox
from swebox.sandbox.models import BackendName

PASSING = ("PASSED", "XFAIL")


class Outcome(BaseModel):
    task: str
    instance_id: str
    image: str
    built: bool = False
    before: dict[str, str] = {}
    after: dict[str, str] = {}
    gold_method: str | None = None
    fail_to_pass_failed_before: int = 0
    fail_to_pass_fixed: int = 0
    fail_to_pass_total: int = 0
    pass_to_pass_kept: int = 0
    pass_to_pass_total: int = 0
    resolved: bool = False
    matches_expected: bool = False
    error: str | None = None
    duration: float = 0.0

    @property
    def as_expected(self) -> bool:
        """Before: every FAIL_TO_PASS fails. After: resolved and the R2E map matches."""
        return (self.error is None and self.resolved and self.matches_expected
                and self.fail_to_pass_failed_before == self.fail_to_pass_total)


def _count(statuses: dict[str, str]) -> tuple[int, int]:
    passed = sum(1 for s in statuses.values() if s in PASSING)
    return passed, len(statuses) - passed


def run_task(task: SampleTask, backend: BackendName = "docker", timeout: float = 300) -> Outcome:
    start = time.monotonic()
    out = Outcome(task=task.name, instance_id=task.instance_id, image=task.image,
                  fail_to_pass_total=len(task.fail_to_pass),
                  pass_to_pass_total=len(task.pass_to_pass))
    try:
        out.built = build(task, backend)
        with start_sandbox(task.image, backend=backend, pull="never", task_id=task.instance_id,
                           base_commit=task.base_commit) as sb:
            sb.apply_patch(task.test_patch, check=True)
            out.before = parse_pytest(sb.exec(task.test_command, timeout=timeout).output)
            out.gold_method = sb.apply_patch(task.gold_patch, check=True).method
            out.after = parse_pytest(sb.exec(task.test_command, timeout=timeout).output)
    except SweboxError as e:
        out.error = str(e)
    f2p, p2p = task.fail_to_pass, task.pass_to_pass
    out.fail_to_pass_failed_before = sum(1 for t in f2p if out.before.get(t) not in PASSING)
    out.fail_to_pass_fixed = sum(1 for t in f2p if out.before.get(t) not in PASSING
                                 and out.after.get(t) in PASSING)
    out.pass_to_pass_kept = sum(1 for t in p2p if out.after.get(t) in PASSING)
    out.resolved = out.error is None and all(out.after.get(t) in PASSING for t in f2p + p2p)
    out.matches_expected = out.after == task.expected_output
    out.duration = time.monotonic() - start
    return out


def run_samples(tasks: list[SampleTask], backend: BackendName = "docker", workers: int = 2,
                on_done: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    results: dict[str, Outcome] = {}
    for res in run_all(lambda t: run_task(t, backend), tasks, workers):
        results[res.task] = res
        if on_done:
            on_done(res)
    return [results[t.name] for t in tasks]
