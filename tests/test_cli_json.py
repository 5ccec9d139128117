"""`--json` on the listing commands: stdout is JSON lines and nothing else, one object per row."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from swebox.samples import load_tasks
from tests.conftest import BASE_IMAGE


def swebox(*args: str, env: dict[str, str] | None = None,
           timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "swebox.cli", *args], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


def json_lines(done: subprocess.CompletedProcess[str], keys: set[str]) -> list[dict[str, Any]]:
    """Every stdout line as a JSON object holding `keys`; fails on any other output."""
    rows = []
    for line in done.stdout.splitlines():
        row = json.loads(line)  # a stray text line or a wrapped one fails here
        assert isinstance(row, dict) and keys <= row.keys(), row
        rows.append(row)
    return rows


def test_samples_list_json() -> None:
    done = swebox("samples", "list", "--json")
    assert done.returncode == 0, done.stderr
    rows = json_lines(done, {"task", "instance_id", "image", "fail_to_pass", "pass_to_pass"})
    samples = load_tasks()
    assert [r["task"] for r in rows] == [t.name for t in samples]
    assert [r["fail_to_pass"] for r in rows] == [len(t.fail_to_pass) for t in samples]
    table = swebox("samples", "list")  # the default stays a table
    assert table.returncode == 0 and "instance_id" in table.stdout
    with pytest.raises(json.JSONDecodeError):
        json.loads(table.stdout.splitlines()[0])


def test_gc_json_dry_run(docker_backend: str) -> None:
    done = swebox("gc", "--json", "--dry-run")
    assert done.returncode == 0, done.stderr
    rows = json_lines(done, {"engine", "kind", "id", "name", "reason", "removed"})
    assert all(r["engine"] == "docker" and r["removed"] is False for r in rows)
    assert "nothing to collect" not in done.stdout


def test_cache_stats_json_of_an_empty_cache(tmp_path: Path) -> None:
    done = swebox("cache", "stats", "--json", "--cache-dir", str(tmp_path / "cache"))
    assert done.returncode == 0, done.stderr
    assert json_lines(done, set()) == [{"entries": 0, "files": 0, "logical_bytes": 0,
                                        "stored_bytes": 0, "objects": 0}]


@pytest.fixture
def ledger_image(docker_backend: str, tmp_path: Path,
                 monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An image of its own (the base plus a label) in a private ledger, as if swebox pulled it:
    what `images prune` may consider. Yields its id."""
    from swebox.images import ledger
    from swebox.sandbox.engine import connect, engine_url

    monkeypatch.setenv("SWEBOX_STATE_DIR", str(tmp_path / "state"))
    api = connect("docker").api
    tag = f"swebox-test/prune-json:{uuid.uuid4().hex[:12]}"
    dockerfile = f"FROM {BASE_IMAGE}\nLABEL swebox.test={tag}\n".encode()
    for _ in api.build(fileobj=io.BytesIO(dockerfile), tag=tag, rm=True, pull=False):
        pass
    image = api.inspect_image(tag)
    ledger.record(engine_url("docker"), image["Id"], [tag], int(image["Size"]), "pulled")
    try:
        yield str(image["Id"])
    finally:
        api.remove_image(tag)


def test_images_prune_json_dry_run(ledger_image: str) -> None:
    # More free space than any disk has: every image of the ledger would go.
    done = swebox("images", "prune", "--json", "--dry-run", "--keep-free", "1000000T")
    assert done.returncode == 0, done.stderr
    rows = json_lines(done, {"id", "names", "size", "removed"})
    assert [r["id"] for r in rows] == [ledger_image]
    assert rows[0]["removed"] is False and rows[0]["size"] > 0
    assert "free before" in done.stderr  # the summary, off stdout
    nothing = swebox("images", "prune", "--json", "--dry-run", "--keep-free", "0")
    assert nothing.returncode == 0 and nothing.stdout == "", nothing.stderr
    from swebox.sandbox.engine import connect

    assert connect("docker").api.inspect_image(ledger_image)  # a dry run removes nothing


@pytest.fixture(scope="module")
def ini_loader_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A task file holding the ini_loader sample task, its image built if missing."""
    from swebox.samples.builder import build
    from tests.conftest import _require

    _require("docker")
    sample = load_tasks(["ini_loader"])[0]
    build(sample)
    path = tmp_path_factory.mktemp("tasks") / "ini_loader.jsonl"
    path.write_text(json.dumps(sample.to_task().to_json_dict()) + "\n")
    return path


def test_validate_json(ini_loader_file: Path, tmp_path: Path) -> None:
    from swebox.eval.validate import TaskValidation

    done = swebox("validate", "--json", "--tasks", str(ini_loader_file), "--out",
                  str(tmp_path / "out"), "--workers", "1", timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = json_lines(done, set(TaskValidation.model_fields))
    assert len(rows) == 1
    result = TaskValidation.model_validate(rows[0])
    assert result.instance_id == load_tasks(["ini_loader"])[0].instance_id and result.valid
    assert "tasks valid" in done.stderr  # the summary, off stdout
    report = json.loads((tmp_path / "out" / "validation_report.json").read_text())
    assert report["results"] == [result.model_dump()]


def test_images_fetch_json_of_a_present_image(ini_loader_file: Path) -> None:
    done = swebox("images", "fetch", "--json", "--tasks", str(ini_loader_file))
    assert done.returncode == 0, done.stdout + done.stderr
    rows = json_lines(done, {"reference", "local", "action", "bytes", "seconds"})
    assert len(rows) == 1 and rows[0]["action"] == "present"
    assert rows[0]["reference"] == load_tasks(["ini_loader"])[0].image


def test_eval_json_is_one_summary_object(ini_loader_file: Path, tmp_path: Path) -> None:
    task = load_tasks(["ini_loader"])[0].to_task()
    predictions = tmp_path / "preds.jsonl"
    predictions.write_text(json.dumps({"instance_id": task.instance_id, "model_name_or_path":
                                       "gold", "model_patch": task.gold_patch}) + "\n")
    done = swebox("eval", "--json", "--tasks", str(ini_loader_file), "--predictions",
                  str(predictions), "--out", str(tmp_path / "runs"), "--run-id", "r1",
                  timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = json_lines(done, {"run_id", "submitted_instances", "resolved_instances",
                             "error_instances", "by_repo", "report"})
    assert len(rows) == 1
    assert rows[0]["resolved_instances"] == 1
    assert rows[0]["by_repo"] == {task.repo: {"submitted": 1, "resolved": 1}}
    assert json.loads(Path(rows[0]["report"]).read_text())["resolved_ids"] == [task.instance_id]


def test_samples_run_json(ini_loader_file: Path) -> None:
    done = swebox("samples", "run", "ini_loader", "--json", timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = json_lines(done, {"task", "instance_id", "before", "after", "resolved",
                             "as_expected"})
    assert [(r["task"], r["resolved"], r["as_expected"]) for r in rows] == [
        ("ini_loader", True, True)]
