"""`swebox validate`: is each task sound? The gold patch must resolve it, an empty patch must
not, both K times; tests whose result changes between identical runs are reported as flaky.

Writes `<out>/validation_report.json`, `<out>/valid_ids.txt` and one log per task in
`<out>/logs/<instance_id>.log`. A task is valid when every gold run resolves it, no empty run
does, and no run had an infrastructure failure.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel

from swebox.grading.grader import GradeOptions, Verdict, grade
from swebox.jobs import run_all
from swebox.tasks.io import atomic_text
from swebox.tasks.model import Task


class TaskValidation(BaseModel):
    instance_id: str
    repo: str
    valid: bool
    runs: int
    gold_resolved: int
    empty_resolved: int
    infra_failures: list[str] = []
    gold_apply_method: str | None = None
    flaky_tests: dict[str, float] = {}  # test -> share of runs that disagreed with the rest
    reasons: list[str] = []
    duration: float = 0.0


def flake_rates(runs: list[dict[str, str]]) -> dict[str, float]:
    """For each test seen in any run: the share of runs whose status is not the most common."""
    tests = {t for r in runs for t in r}
    rates = {}
    for t in sorted(tests):
        counts = Counter(r.get(t, "MISSING") for r in runs)
        minority = len(runs) - counts.most_common(1)[0][1]
        if minority:
            rates[t] = round(minority / len(runs), 4)
    return rates


def validate_task(task: Task, runs: int, opts: GradeOptions | None = None
                  ) -> tuple[TaskValidation, str]:
    gold: list[Verdict] = []
    empty: list[Verdict] = []
    logs: list[str] = []
    for k in range(runs):
        for label, patch, bucket in (("gold", task.gold_patch, gold), ("empty", "", empty)):
            verdict, log = grade(task, patch, opts)
            bucket.append(verdict)
            logs.append(f"===== {label} run {k + 1}/{runs}: resolved={verdict.resolved} "
                        f"infra_failure={verdict.infra_failure} rule={verdict.rule} "
                        f"partial={verdict.partial} =====\n{log}\n")
    infra = [f"{v.infra_failure}" for v in gold + empty if v.infra_failure]
    result = TaskValidation(
        instance_id=task.instance_id, repo=task.repo, valid=False, runs=runs,
        gold_resolved=sum(v.resolved for v in gold),
        empty_resolved=sum(v.resolved for v in empty), infra_failures=infra,
        gold_apply_method=gold[0].apply_method if gold else None,
        flaky_tests=flake_rates([v.statuses for v in gold]) | {
            f"{t} (empty patch)": r for t, r in flake_rates([v.statuses for v in empty]).items()},
        duration=round(sum(v.duration for v in gold + empty), 3))
    if not task.gold_patch.strip():
        result.reasons.append("the task has no gold patch")
    if result.gold_resolved < runs:
        result.reasons.append(f"the gold patch resolved {result.gold_resolved}/{runs} runs")
    if result.empty_resolved:
        result.reasons.append(f"an empty patch resolved {result.empty_resolved}/{runs} runs")
    if infra:
        result.reasons.append(f"{len(infra)} run(s) failed for infrastructure reasons")
    result.valid = not result.reasons
    return result, "".join(logs)


def validate(tasks: list[Task], *, runs: int, out: Path, workers: int = 2,
             opts: GradeOptions | None = None,
             on_done: Callable[[TaskValidation], None] | None = None) -> list[TaskValidation]:
    (out / "logs").mkdir(parents=True, exist_ok=True)
    results: dict[str, TaskValidation] = {}
    for res, log in run_all(lambda t: validate_task(t, runs, opts), tasks, workers):
        name = "".join(c if c.isalnum() or c in "._-" else "_" for c in res.instance_id)
        (out / "logs" / f"{name}.log").write_text(log)
        results[res.instance_id] = res
        if on_done:
            on_done(res)
    ordered = [results[t.instance_id] for t in tasks if t.instance_id in results]
    with atomic_text(out / "validation_report.json") as f:
        json.dump({"runs": runs, "tasks": len(ordered),
                   "valid": sum(r.valid for r in ordered),
                   "results": [r.model_dump() for r in ordered]}, f, indent=2)
    with atomic_text(out / "valid_ids.txt") as f:
        f.writelines(f"{r.instance_id}\n" for r in ordered if r.valid)
    return ordered
