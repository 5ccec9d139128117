"""`swebox eval` and `swebox validate` as a user runs them, on the bundled sample tasks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from swebox.eval.validate import flake_rates
from swebox.samples import load_tasks
from swebox.samples.builder import build
from swebox.tasks.model import Task


def swebox(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "swebox.cli", *args], capture_output=True,
                          text=True, timeout=600, cwd=cwd)


@pytest.fixture(scope="module")
def tasks(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Task]]:
    from tests.conftest import _require

    _require("docker")
    samples = load_tasks(["ini_loader", "paginate", "rate_limiter"])
    for s in samples:
        build(s)
    tasks = [s.to_task() for s in samples]
    path = tmp_path_factory.mktemp("eval") / "tasks.jsonl"
    path.write_text("".join(t.model_dump_json() + "\n" for t in tasks))
    return path, tasks


def test_eval_report_resume_and_bad_predictions(tasks: tuple[Path, list[Task]],
                                                tmp_path: Path) -> None:
    path, ts = tasks
    preds = tmp_path / "preds.jsonl"
    rows = [{"instance_id": ts[0].instance_id, "model_name_or_path": "m/x",
             "model_patch": ts[0].gold_patch},
            {"instance_id": ts[1].instance_id, "model_name_or_path": "m/x", "model_patch": ""},
            {"instance_id": ts[2].instance_id, "model_name_or_path": "m/x",
             "model_patch": "this is not a diff"},
            {"instance_id": "unknown__task-1", "model_patch": "x"}]
    preds.write_text("".join(json.dumps(r) + "\n" for r in rows) + "{not json\n"
                     + json.dumps({"model_patch": "no id"}) + "\n")
    done = swebox("eval", "--tasks", str(path), "--predictions", str(preds), "--run-id", "t1",
                  "--workers", "2", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "swebox-runs" / "t1" / "report.json").read_text())
    assert report["resolved_ids"] == [ts[0].instance_id]
    assert report["empty_patch_ids"] == [ts[1].instance_id]
    assert report["unresolved_ids"] == report["patch_failed_ids"] == [ts[2].instance_id]
    assert report["unknown_ids"] == ["unknown__task-1"]
    assert len(report["rejected_predictions"]) == 2
    inst = tmp_path / "swebox-runs" / "t1" / "m_x" / ts[0].instance_id
    detail = json.loads((inst / "report.json").read_text())[ts[0].instance_id]
    assert detail["resolved"] and detail["patch_successfully_applied"]
    assert detail["tests_status"]["FAIL_TO_PASS"]["failure"] == []
    assert "passed" in (inst / "test_output.txt").read_text()
    assert "cfgtools/tinyini" in done.stdout and "100.0%" in done.stdout
    # resume: nothing is graded again, the report is the same
    before = (tmp_path / "swebox-runs" / "t1" / "results.jsonl").read_text()
    again = swebox("eval", "--tasks", str(path), "--predictions", str(preds), "--run-id", "t1",
                   cwd=tmp_path)
    assert again.returncode == 0
    assert (tmp_path / "swebox-runs" / "t1" / "results.jsonl").read_text() == before
    assert json.loads((tmp_path / "swebox-runs" / "t1" / "report.json").read_text()
                      )["resolved_ids"] == report["resolved_ids"]


def test_eval_resumes_after_a_crash_mid_run(tasks: tuple[Path, list[Task]],
                                            tmp_path: Path) -> None:
    """A results.jsonl cut off mid-line (the process was killed) loses only that instance."""
    path, ts = tasks
    preds = tmp_path / "preds.json"
    preds.write_text(json.dumps([{"instance_id": t.instance_id, "model_patch": t.gold_patch}
                                 for t in ts[:2]]))
    run = tmp_path / "swebox-runs" / "c1"
    run.mkdir(parents=True)
    (run / "results.jsonl").write_text('{"instance_id": "' + ts[0].instance_id + '", "res')
    done = swebox("eval", "--tasks", str(path), "--predictions", str(preds), "--run-id", "c1",
                  cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads((run / "report.json").read_text())["resolved_instances"] == 2


def test_validate_marks_gold_resolving_tasks_valid(tasks: tuple[Path, list[Task]],
                                                   tmp_path: Path) -> None:
    path, ts = tasks
    broken = ts[0].model_copy(update={"instance_id": "broken__gold-1",
                                      "gold_patch": ts[1].gold_patch})
    both = tmp_path / "tasks.jsonl"
    both.write_text(path.read_text() + broken.model_dump_json() + "\n")
    done = swebox("validate", "--tasks", str(both), "--runs", "2", "--out", "v", cwd=tmp_path)
    assert done.returncode == 1  # one task is not valid
    valid = (tmp_path / "v" / "valid_ids.txt").read_text().split()
    assert valid == [t.instance_id for t in ts]
    report = json.loads((tmp_path / "v" / "validation_report.json").read_text())
    bad = next(r for r in report["results"] if r["instance_id"] == "broken__gold-1")
    assert not bad["valid"] and bad["reasons"]
    assert all(r["gold_resolved"] == 2 and r["empty_resolved"] == 0
               for r in report["results"] if r["valid"])
    log = (tmp_path / "v" / "logs" / f"{ts[0].instance_id}.log").read_text()
    assert log.count("===== gold run") == 2 and log.count("===== empty run") == 2


def test_flake_rates() -> None:
    runs = [{"a": "PASSED", "b": "PASSED"}, {"a": "FAILED", "b": "PASSED"},
            {"a": "PASSED", "b": "PASSED", "c": "PASSED"}]
    # c ran in one run of three: the majority (missing) disagrees with one run
    assert flake_rates(runs) == {"a": round(1 / 3, 4), "c": round(1 / 3, 4)}
    assert flake_rates([{"a": "PASSED"}] * 3) == {}
