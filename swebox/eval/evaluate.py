"""`swebox eval`: grade SWE-bench-style predictions, resumably, with SWE-bench's report.

Layout under `<out>/<run_id>/`:
    results.jsonl                       one verdict a line, appended as instances finish
    <model>/<instance_id>/report.json   per instance (SWE-bench's shape plus swebox's verdict)
    <model>/<instance_id>/test_output.txt, patch.diff
    report.json                         the run's summary (replaced atomically)
An instance with a report.json is finished: a rerun with the same run id skips it, so an
interrupted evaluation resumes where it stopped.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel

from swebox.atomic import repair_tail
from swebox.eval.predictions import Prediction
from swebox.grading.grader import GradeOptions, Verdict, grade
from swebox.grading.rules import PASSING
from swebox.jobs import run_all
from swebox.tasks.io import Reject, atomic_text, dumps
from swebox.tasks.model import Task


class EvalReport(BaseModel):
    run_id: str
    total_instances: int = 0
    submitted_instances: int = 0
    completed_instances: int = 0
    resolved_instances: int = 0
    unresolved_instances: int = 0
    empty_patch_instances: int = 0
    error_instances: int = 0
    submitted_ids: list[str] = []
    completed_ids: list[str] = []
    resolved_ids: list[str] = []
    unresolved_ids: list[str] = []
    empty_patch_ids: list[str] = []
    error_ids: list[str] = []
    patch_failed_ids: list[str] = []  # counted as unresolved: the patch is wrong
    unknown_ids: list[str] = []
    rejected_predictions: list[str] = []
    by_repo: dict[str, dict[str, int]] = {}


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name).strip(".") or "_"


def instance_report(task: Task, verdict: Verdict, patch: str | None) -> dict[str, Any]:
    """SWE-bench's per-instance report shape, with swebox's verdict beside it."""

    def split(tests: list[str]) -> dict[str, list[str]]:
        ok = [t for t in tests if verdict.statuses.get(t) in PASSING]
        return {"success": ok, "failure": [t for t in tests if t not in set(ok)]}

    return {task.instance_id: {
        "patch_is_None": patch is None,
        "patch_exists": bool(patch and patch.strip()),
        "patch_successfully_applied": verdict.patch_applied,
        "resolved": verdict.resolved,
        "tests_status": {"FAIL_TO_PASS": split(task.fail_to_pass),
                         "PASS_TO_PASS": split(task.pass_to_pass)},
        "swebox": verdict.model_dump(exclude={"statuses"}) | {"statuses": verdict.statuses},
    }}


def _finished(run_dir: Path) -> dict[str, Verdict]:
    done: dict[str, Verdict] = {}
    results = run_dir / "results.jsonl"
    if results.is_file():
        for line in results.read_text().splitlines():
            try:
                v = Verdict.model_validate_json(line)
            except ValueError:
                continue  # a line cut short by a crash: that instance simply runs again
            done[v.instance_id] = v
    return done


def evaluate(tasks: dict[str, Task], predictions: Iterator[Prediction | Reject], *,
             run_id: str, out: Path, workers: int = 2, opts: GradeOptions | None = None,
             on_start: Callable[[int], None] | None = None,
             on_done: Callable[[Verdict], None] | None = None) -> EvalReport:
    run_dir = out / _safe(run_id)
    run_dir.mkdir(parents=True, exist_ok=True)
    report = EvalReport(run_id=run_id, total_instances=len(tasks))
    todo: list[Prediction] = []
    seen: set[str] = set()
    for p in predictions:
        if isinstance(p, Reject):
            report.rejected_predictions.append(f"{p.where}: {p.reason}")
        elif p.instance_id not in tasks:
            report.unknown_ids.append(p.instance_id)
        elif p.instance_id in seen:
            report.rejected_predictions.append(f"{p.where}: duplicate prediction for "
                                               f"{p.instance_id}")
        else:
            seen.add(p.instance_id)
            todo.append(p)
    report.submitted_ids = [p.instance_id for p in todo]
    verdicts = _finished(run_dir)
    pending = [p for p in todo if p.instance_id not in verdicts]
    if on_start:
        on_start(len(pending))
    lock = threading.Lock()
    repair_tail(run_dir / "results.jsonl")  # a line cut by a crash must not spoil the next
    with open(run_dir / "results.jsonl", "a", encoding="utf-8") as results:
        grade_one = _grader(tasks, run_dir, opts, results, lock)
        # On Ctrl-C running grades end at once; finished instances are kept for a resume.
        for v in run_all(grade_one, pending, workers):
            verdicts[v.instance_id] = v
            if on_done:
                on_done(v)
    _summarise(report, todo, verdicts, tasks)
    with atomic_text(run_dir / "report.json") as f:
        json.dump(report.model_dump(), f, indent=2)
    return report


def _grader(tasks: dict[str, Task], run_dir: Path, opts: GradeOptions | None,
            results: IO[str], lock: threading.Lock) -> Callable[[Prediction], Verdict]:
    """Grades one prediction, writes its files, and appends its verdict to results.jsonl."""

    def one(p: Prediction) -> Verdict:
        task = tasks[p.instance_id]
        try:
            if (p.model_patch or "").strip():
                verdict, log = grade(task, p.model_patch or "", opts)
            else:  # as SWE-bench does: an empty prediction is reported, not run
                verdict, log = Verdict(instance_id=p.instance_id, empty_patch=True), ""
        except Exception as e:  # one instance's surprise must not stop the others
            verdict = Verdict(instance_id=p.instance_id, empty_patch=not (p.model_patch or ""
                                                                          ).strip(),
                              infra_failure=f"internal error: {type(e).__name__}: {e}")
            log = ""
        inst_dir = run_dir / _safe(p.model_name_or_path) / _safe(p.instance_id)
        inst_dir.mkdir(parents=True, exist_ok=True)
        (inst_dir / "patch.diff").write_text(p.model_patch or "")
        (inst_dir / "test_output.txt").write_text(log)
        with atomic_text(inst_dir / "report.json") as f:
            json.dump(instance_report(task, verdict, p.model_patch), f, indent=2)
        with lock:
            results.write(dumps(verdict.model_dump(mode="json")) + "\n")
            results.flush()
        return verdict

    return one


def _summarise(report: EvalReport, todo: list[Prediction], verdicts: dict[str, Verdict],
               tasks: dict[str, Task]) -> None:
    for p in todo:
        v = verdicts.get(p.instance_id)
        if v is None:
            continue
        repo = report.by_repo.setdefault(tasks[p.instance_id].repo or "(none)",
                                         {"submitted": 0, "resolved": 0})
        repo["submitted"] += 1
        if v.empty_patch:
            report.empty_patch_ids.append(p.instance_id)
            continue
        report.completed_ids.append(p.instance_id)
        if v.infra_failure:
            report.error_ids.append(p.instance_id)
        elif v.resolved:
            report.resolved_ids.append(p.instance_id)
            repo["resolved"] += 1
        else:
            report.unresolved_ids.append(p.instance_id)
            if not v.patch_applied:
                report.patch_failed_ids.append(p.instance_id)
    report.submitted_instances = len(report.submitted_ids)
    report.completed_instances = len(report.completed_ids)
    report.resolved_instances = len(report.resolved_ids)
    report.unresolved_instances = len(report.unresolved_ids)
    report.empty_patch_instances = len(report.empty_patch_ids)
    report.error_instances = len(report.error_ids)
