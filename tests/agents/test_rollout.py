"""`swebox rollout` and `swebox trajectories export` as a user runs them: real processes, a real
engine, the bundled sample tasks (two of them), the scripted model server on loopback.

What is tested: resumable runs (a rerun runs nothing; kill -9 and a torn line cost only what was
missing, nothing twice), predictions per sample, the report, `--json` output, Ctrl-C, orphans
left to `swebox gc`, the exports as `datasets` loads them, predictions graded by `swebox eval`,
and one-line errors for bad input.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from swebox.sandbox.engine import connect
from swebox.sandbox.lifecycle import HOST, L_OWNER
from swebox.tasks.model import Task
from tests.agents.modelserver import ScriptedServer, sample_scripts

SAMPLES = ["ini_loader", "paginate"]  # one SWE-bench-style image name, one R2E-style


# -- helpers --------------------------------------------------------------------------------
def _cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "swebox.cli", *args]


def swebox(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_cmd(*args), capture_output=True, text=True, timeout=timeout)


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.is_file() else []


def _records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in _lines(path)]


def _keys(rows: list[dict[str, Any]]) -> list[tuple[str, int]]:
    return [(r["instance_id"], r["sample"]) for r in rows]


def _owned_by(pid: int) -> list[dict[str, Any]]:
    """Every container (running or not) whose owner label names `pid` on this host."""
    api = connect("docker").api
    return list(api.containers(all=True, filters={"label": f"{L_OWNER}={HOST}:{pid}"}))


def _snapshots_of(pid: int) -> list[dict[str, Any]]:
    api = connect("docker").api
    return list(api.images(filters={"label": f"{L_OWNER}={HOST}:{pid}"}))


def _wait_none_owned_by(pid: int, seconds: float = 15) -> list[dict[str, Any]]:
    """Containers still owned by `pid` after up to `seconds` (AutoRemove may lag a little)."""
    deadline = time.monotonic() + seconds
    left = _owned_by(pid)
    while left and time.monotonic() < deadline:
        time.sleep(0.3)
        left = _owned_by(pid)
    return left


def _one_line_error(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode != 0, done.stdout
    assert "Traceback" not in done.stderr, done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error:"), done.stderr


# -- fixtures (module scope; names prefixed so that no conftest clashes) ---------------------
@pytest.fixture(scope="module")
def _ro_tasks() -> list[Task]:
    from swebox.samples import load_tasks
    from swebox.samples.builder import build
    from tests.conftest import _require

    _require("docker")
    samples = load_tasks(SAMPLES)
    for s in samples:
        build(s)
    return [s.to_task() for s in samples]


@pytest.fixture(scope="module")
def _ro_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rollout")


@pytest.fixture(scope="module")
def _ro_task_files(_ro_tasks: list[Task], _ro_dir: Path) -> tuple[Path, Path]:
    """(both tasks, the first task only) as swebox task JSONL files."""
    both, first = _ro_dir / "tasks.jsonl", _ro_dir / "task1.jsonl"
    both.write_text("".join(t.model_dump_json() + "\n" for t in _ro_tasks))
    first.write_text(_ro_tasks[0].model_dump_json() + "\n")
    return both, first


@pytest.fixture(scope="module")
def _ro_server() -> Iterator[ScriptedServer]:
    server = ScriptedServer(sample_scripts()).start()
    yield server
    server.stop()


def _gold_args(out: Path, tasks: Path) -> list[str]:
    return ["rollout", "--agent", "rule", "--patch", "gold", "-n", "2", "-w", "2",
            "-o", str(out), "--tasks", str(tasks)]


@pytest.fixture(scope="module")
def _ro_gold_run(_ro_task_files: tuple[Path, Path], _ro_dir: Path
                 ) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """The rule agent with the gold patches: 2 tasks x 2 samples, 2 at a time."""
    out = _ro_dir / "gold"
    return out, swebox(*_gold_args(out, _ro_task_files[0]))


@pytest.fixture(scope="module")
def _ro_nopatch_run(_ro_task_files: tuple[Path, Path], _ro_dir: Path
                    ) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """The rule agent without a patch (reward 0), printing JSON lines: 1 task x 2 samples."""
    out = _ro_dir / "nopatch"
    return out, swebox("rollout", "--agent", "rule", "-n", "2", "-w", "2", "-o", str(out),
                       "--tasks", str(_ro_task_files[1]), "--json")


@dataclass
class Killed:
    out: Path
    killed_pid: int
    lines_at_kill: int
    orphans: list[dict[str, Any]]  # its containers and snapshot images, there after it died
    rerun: subprocess.CompletedProcess[str]
    rerun_pid: int
    expected: set[tuple[str, int]]


@pytest.fixture(scope="module")
def _ro_killed_run(_ro_task_files: tuple[Path, Path], _ro_dir: Path,
                   _ro_server: ScriptedServer, _ro_tasks: list[Task]) -> Killed:
    """The solver model on 2 tasks x 3 samples, one at a time: SIGKILLed once the first
    trajectory is written and the next episode's sandbox is up, a torn half line appended
    (as if it had died mid-write), then run again to completion (the same command, with two
    workers)."""
    out = _ro_dir / "killed"
    args = _cmd("rollout", "--agent", "llm", "--model", "solver", "--base-url",
                _ro_server.base_url, "--api-key", "test", "-n", "3", "-w", "1",
                "-o", str(out), "--tasks", str(_ro_task_files[0]))
    traj = out / "trajectories.jsonl"
    with open(_ro_dir / "killed.log", "wb") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=log, start_new_session=True)
        try:
            deadline = time.monotonic() + 90
            while len(_lines(traj)) < 1:
                assert proc.poll() is None, (_ro_dir / "killed.log").read_text()
                assert time.monotonic() < deadline, "no trajectory within 90 s"
                time.sleep(0.05)
            while not _owned_by(proc.pid):  # the next episode's sandbox is up
                assert proc.poll() is None, (_ro_dir / "killed.log").read_text()
                assert time.monotonic() < deadline, "no second episode within 90 s"
                time.sleep(0.05)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    lines_at_kill = len(_lines(traj))
    orphans = _owned_by(proc.pid) + _snapshots_of(proc.pid)
    with open(traj, "ab") as f:  # the crash cut a line in half
        f.write(b'{"schema_version":1,"instance_id":"' + _ro_tasks[1].instance_id.encode()
                + b'","sample":2,"model":"solver","messages":[{"role":"sys')
    # resumed with two workers: what is done is the file's, not the worker count's
    args[args.index("-w") + 1] = "2"
    rerun = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stdout, stderr = rerun.communicate(timeout=240)
    done = subprocess.CompletedProcess(args, rerun.returncode, stdout, stderr)
    expected = {(t.instance_id, k) for t in _ro_tasks for k in range(3)}
    return Killed(out, proc.pid, lines_at_kill, orphans, done, rerun.pid, expected)


@dataclass
class Interrupted:
    out: Path
    returncode: int
    seconds: float  # from SIGINT to exit
    stderr: str
    left: list[dict[str, Any]]
    snapshots: list[dict[str, Any]]


@pytest.fixture(scope="module")
def _ro_interrupted(_ro_task_files: tuple[Path, Path], _ro_dir: Path,
                    _ro_server: ScriptedServer) -> Interrupted:
    """A rollout whose one episode is stuck in `sleep 1000` (the flailer's fifth action, with
    a 120 s command timeout) gets Ctrl-C, as a terminal sends it: SIGINT to the group."""
    out = _ro_dir / "interrupted"
    seen = _ro_server.requests
    proc = subprocess.Popen(
        _cmd("rollout", "--agent", "llm", "--model", "flailer", "--base-url",
             _ro_server.base_url, "--api-key", "test", "-n", "1", "-w", "1",
             "--bash-timeout", "120", "-o", str(out), "--tasks", str(_ro_task_files[1])),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        # its agent sandbox is up, and the model has answered with `sleep 1000`
        while not _owned_by(proc.pid) or _ro_server.requests - seen < 5:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the episode did not get going in 90 s"
            time.sleep(0.1)
        time.sleep(1.0)
        assert proc.poll() is None
        os.killpg(proc.pid, signal.SIGINT)
        t0 = time.monotonic()
        _, stderr = proc.communicate(timeout=60)
        seconds = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return Interrupted(out, proc.returncode, seconds, stderr, _owned_by(proc.pid),
                       _snapshots_of(proc.pid))


# -- 1. a rollout, and its rerun ------------------------------------------------------------
def test_rule_gold_rollout_writes_everything_and_reruns_nothing(
        _ro_gold_run: tuple[Path, subprocess.CompletedProcess[str]],
        _ro_task_files: tuple[Path, Path], _ro_tasks: list[Task]) -> None:
    out, done = _ro_gold_run
    assert done.returncode == 0, done.stderr
    trajs = _records(out / "trajectories.jsonl")
    keys = _keys(trajs)
    assert len(trajs) == 4 and len(set(keys)) == 4
    assert set(keys) == {(t.instance_id, k) for t in _ro_tasks for k in range(2)}
    gold = {t.instance_id: t.gold_patch for t in _ro_tasks}
    for t in trajs:
        assert t["reward"] == 1.0 and t["resolved"] is True, t["exit_reason"]
        assert t["exit_reason"] == "submitted" and t["agent"] == "rule"
        assert t["patch"].strip() and t["verdict"]["resolved"] is True
    for sample, name in ((0, "predictions.jsonl"), (1, "predictions.sample-1.jsonl")):
        preds = _records(out / name)
        assert sorted(p["instance_id"] for p in preds) == sorted(gold), name
        patches = {t["instance_id"]: t["patch"] for t in trajs if t["sample"] == sample}
        for p in preds:
            assert p["model_patch"] == patches[p["instance_id"]] and p["model_patch"].strip()
            assert p["model_name_or_path"] == "rule"
    assert not list(out.glob("predictions.sample-2*"))
    assert _lines(out / "errors.jsonl") == []
    report = json.loads((out / "report.json").read_text())
    assert report["mean_reward"] == 1.0 and report["episodes"] == 4
    assert report["planned"] == 4 and report["ran_now"] == 4 and report["errors"] == 0
    assert report["resolved"] == 4 and sorted(report["resolved_tasks"]) == sorted(gold)
    assert report["exit_reasons"] == {"submitted": 4}

    before = {p.name: p.read_bytes() for p in out.glob("*.jsonl")}
    t0 = time.monotonic()
    again = swebox(*_gold_args(out, _ro_task_files[0]))
    assert again.returncode == 0, again.stderr
    assert time.monotonic() - t0 < 20  # nothing ran: no sandbox, no grading
    assert "resuming: 4 of 4" in again.stderr
    assert {p.name: p.read_bytes() for p in out.glob("*.jsonl")} == before
    report = json.loads((out / "report.json").read_text())
    assert report["ran_now"] == 0 and report["episodes"] == 4 and report["mean_reward"] == 1.0


# -- 2. --json ------------------------------------------------------------------------------
def test_json_prints_one_json_object_per_episode_and_nothing_else(
        _ro_nopatch_run: tuple[Path, subprocess.CompletedProcess[str]],
        _ro_tasks: list[Task]) -> None:
    out, done = _ro_nopatch_run
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 2, done.stdout
    rows = [json.loads(line) for line in lines]
    assert all(isinstance(r, dict) for r in rows)
    iid = _ro_tasks[0].instance_id
    assert sorted(_keys(rows)) == [(iid, 0), (iid, 1)]
    for r in rows:
        assert r["reward"] == 0.0 and r["exit_reason"] == "submitted" and r["steps"] >= 1
    # the lines agree with the file
    trajs = {(t["instance_id"], t["sample"]): t for t in _records(out / "trajectories.jsonl")}
    assert set(trajs) == set(_keys(rows))
    for r in rows:
        t = trajs[r["instance_id"], r["sample"]]
        assert (t["reward"], t["exit_reason"], t["steps"]) == (r["reward"], r["exit_reason"],
                                                              r["steps"])
        assert t["resolved"] is False and t["patch"] == ""


# -- 3. kill -9, a torn line, resume; orphans to `swebox gc` --------------------------------
def test_kill_9_then_resume_runs_each_episode_once(_ro_killed_run: Killed) -> None:
    k = _ro_killed_run
    assert 1 <= k.lines_at_kill < 6, "the run was not interrupted in the middle"
    assert k.rerun.returncode == 0, k.rerun.stderr
    assert f"resuming: {k.lines_at_kill} of 6" in k.rerun.stderr
    raw = _lines(k.out / "trajectories.jsonl")
    assert len(raw) == 6
    trajs = [json.loads(line) for line in raw]  # every line whole: the torn one was cut
    assert len(set(_keys(trajs))) == 6 and set(_keys(trajs)) == k.expected
    for t in trajs:
        assert t["reward"] == 1.0 and t["exit_reason"] == "submitted" and t["model"] == "solver"
        assert t["usage"]["calls"] >= 2 and t["usage"]["completion_tokens"] > 0
    for sample, name in ((0, "predictions.jsonl"), (1, "predictions.sample-1.jsonl"),
                         (2, "predictions.sample-2.jsonl")):
        preds = _records(k.out / name)
        want = sorted(iid for iid, s in k.expected if s == sample)
        assert sorted(p["instance_id"] for p in preds) == want, name
    assert _lines(k.out / "errors.jsonl") == []
    report = json.loads((k.out / "report.json").read_text())
    assert report["episodes"] == 6 and report["planned"] == 6 and report["mean_reward"] == 1.0
    assert report["ran_now"] == 6 - k.lines_at_kill
    assert report["completion_tokens"] > 0


def test_rerun_leaves_nothing_and_gc_takes_the_killed_runs_orphans(
        _ro_killed_run: Killed) -> None:
    k = _ro_killed_run
    assert _wait_none_owned_by(k.rerun_pid) == [], "the finished rerun left containers"
    assert _snapshots_of(k.rerun_pid) == [], "the finished rerun left snapshot images"
    done = swebox("gc", "--json", timeout=120)
    assert done.returncode == 0, done.stderr
    collected = {c["id"]: c for c in
                 (json.loads(line) for line in done.stdout.splitlines() if line.strip())}
    # the killed run's episode sandbox (its lease runs for an hour) and the snapshot its
    # samples start from outlived it; gc takes them because their owner is gone
    kinds = set()
    for o in k.orphans:
        short = o["Id"].removeprefix("sha256:")[:12]
        assert short in collected, f"swebox gc left {short}: {done.stdout}"
        c = collected[short]
        # a sandbox the kill caught between create and start is "not running" instead
        assert c["removed"] is True and c["reason"] in ("owner process is gone",
                                                        "not running (created)"), c
        kinds.add(c["kind"])
    assert "container" in kinds, "the killed run left no sandbox: nothing was tested"
    assert _owned_by(k.killed_pid) == [], "a container of the killed run survived swebox gc"
    assert _snapshots_of(k.killed_pid) == [], "a snapshot of the killed run survived swebox gc"


# -- 4. Ctrl-C ------------------------------------------------------------------------------
def test_ctrl_c_stops_at_once_and_closes_every_sandbox(_ro_interrupted: Interrupted) -> None:
    r = _ro_interrupted
    assert r.returncode == 130, r.stderr
    assert r.seconds < 20, f"took {r.seconds:.1f} s to stop"
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr
    assert r.left == [], "containers of the interrupted run remain"
    assert r.snapshots == []


def test_ctrl_c_does_not_record_the_interrupted_episode(_ro_interrupted: Interrupted) -> None:
    r = _ro_interrupted
    assert r.returncode == 130
    assert _lines(r.out / "trajectories.jsonl") == []
    assert _lines(r.out / "predictions.jsonl") == []


# -- 5. exports -----------------------------------------------------------------------------
def _load(kind: str, path: Path) -> Any:
    import datasets

    return datasets.load_dataset(kind, data_files=str(path), split="train")


def test_sft_export_jsonl_and_parquet_load_with_datasets(
        _ro_gold_run: tuple[Path, subprocess.CompletedProcess[str]],
        _ro_nopatch_run: tuple[Path, subprocess.CompletedProcess[str]],
        _ro_killed_run: Killed, tmp_path: Path) -> None:
    # rule-agent episodes resolved and not, and model episodes with editor calls
    mixed = tmp_path / "mixed.jsonl"
    src = [_ro_gold_run[0], _ro_nopatch_run[0], _ro_killed_run.out]
    mixed.write_text("".join((d / "trajectories.jsonl").read_text() for d in src))
    trajs = _records(mixed)
    assert len(trajs) == 12 and sum(t["resolved"] for t in trajs) == 10

    dest = tmp_path / "sft.jsonl"
    done = swebox("trajectories", "export", str(mixed), "--to", "sft", "-o", str(dest))
    assert done.returncode == 0, done.stderr
    assert "wrote 12 row(s)" in done.stderr
    raw = _records(dest)
    assert len(raw) == 12
    ds = _load("json", dest)
    assert len(ds) == 12
    editor_calls = 0
    for row, orig, t in zip(ds, raw, trajs, strict=True):
        assert (row["instance_id"], row["sample"], row["reward"]) == \
            (t["instance_id"], t["sample"], t["reward"])
        assert [m["role"] for m in row["messages"]][:2] == ["system", "user"]
        assert len(row["messages"]) == len(t["messages"])
        calls = [c for m in row["messages"] if m["role"] == "assistant"
                 for c in (m.get("tool_calls") or [])]
        assert calls, "no tool calls in an episode that made some"
        for c in calls:
            assert isinstance(c["function"]["arguments"], dict), c
            editor_calls += c["function"]["name"] == "str_replace_editor"
        for m in orig["messages"]:  # the file itself, not datasets' reading of it
            for c in m.get("tool_calls") or []:
                assert isinstance(c["function"]["arguments"], dict), c
        names = {c["function"]["name"] for c in calls}
        assert isinstance(row["tools"], list) and row["tools"]
        schemas = {s["function"]["name"]: s["function"] for s in row["tools"]}
        assert names <= set(schemas), (names, set(schemas))
        assert all(isinstance(s["parameters"], dict) for s in schemas.values())
    assert editor_calls >= 6  # the model's views and edits kept their arguments

    # the solver's str_replace arguments round-trip exactly
    llm = next(i for i, t in enumerate(trajs) if t["agent"] == "llm")
    sent = [json.loads(c["function"]["arguments"]) for m in trajs[llm]["messages"]
            for c in m.get("tool_calls") or []]
    got = [c["function"]["arguments"] for m in raw[llm]["messages"]
           for c in m.get("tool_calls") or []]
    assert got == sent

    pq = tmp_path / "sft.parquet"
    done = swebox("trajectories", "export", str(mixed), "--to", "sft", "-o", str(pq))
    assert done.returncode == 0, done.stderr
    table = _load("parquet", pq)
    assert len(table) == 12
    for row, orig in zip(table, raw, strict=True):
        assert json.loads(row["tools"]) == orig["tools"]
        assert [m["content"] for m in row["messages"]] == \
            [m["content"] for m in orig["messages"]]
        pq_args = [json.loads(c["function"]["arguments"]) for m in row["messages"]
                   for c in m["tool_calls"] or []]
        js_args = [c["function"]["arguments"] for m in orig["messages"]
                   for c in m.get("tool_calls") or []]
        assert pq_args == js_args

    only = tmp_path / "resolved.jsonl"
    done = swebox("trajectories", "export", str(mixed), "--to", "sft", "--resolved-only",
                  "-o", str(only))
    assert done.returncode == 0, done.stderr
    kept = _records(only)
    assert len(kept) == 10 and all(r["reward"] == 1.0 for r in kept)
    assert sorted(_keys(kept)) == sorted(_keys([t for t in trajs if t["resolved"]]))
    assert len(_load("json", only)) == 10


def test_mini_swe_agent_export(_ro_gold_run: tuple[Path, subprocess.CompletedProcess[str]],
                               tmp_path: Path) -> None:
    out = _ro_gold_run[0]
    dest = tmp_path / "mini"
    done = swebox("trajectories", "export", str(out), "--to", "mini-swe-agent", "-o", str(dest))
    assert done.returncode == 0, done.stderr
    trajs = {(t["instance_id"], t["sample"]): t for t in _records(out / "trajectories.jsonl")}
    want = {(f"{iid}.traj.json" if s == 0 else f"{iid}.{s}.traj.json"): (iid, s)
            for iid, s in trajs}
    files = sorted(p.name for p in dest.iterdir())
    assert files == sorted(want)
    for name, key in want.items():
        doc = json.loads((dest / name).read_text())
        t = trajs[key]
        assert doc["trajectory_format"] == "mini-swe-agent-1.1"
        assert doc["instance_id"] == key[0]
        assert doc["messages"][-1]["role"] == "exit"
        assert doc["messages"][:-1] == t["messages"]
        assert doc["info"]["exit_status"] == "Submitted"
        assert doc["info"]["submission"] == t["patch"] and t["patch"].strip()
    first = dest / sorted(want)[0]
    ds = _load("json", first)
    assert len(ds) == 1 and ds[0]["trajectory_format"] == "mini-swe-agent-1.1"
    assert ds[0]["info"]["exit_status"] == "Submitted"


def test_predictions_export_is_graded_by_swebox_eval(
        _ro_gold_run: tuple[Path, subprocess.CompletedProcess[str]],
        _ro_task_files: tuple[Path, Path], _ro_tasks: list[Task], tmp_path: Path) -> None:
    out = _ro_gold_run[0]
    preds = tmp_path / "preds.jsonl"
    done = swebox("trajectories", "export", str(out), "--to", "predictions", "-o", str(preds))
    assert done.returncode == 0, done.stderr
    rows = _records(preds)
    by_id = sorted(rows, key=lambda r: r["instance_id"])
    assert len(rows) == 2  # sample 0 only, as the run's own predictions.jsonl has it
    assert by_id == sorted(_records(out / "predictions.jsonl"), key=lambda r: r["instance_id"])
    assert {r["instance_id"] for r in rows} == {t.instance_id for t in _ro_tasks}
    # graded on the first task only (the other prediction is an unknown id there)
    done = swebox("eval", "--predictions", str(preds), "--tasks", str(_ro_task_files[1]),
                  "-o", str(tmp_path / "eval"), "--run-id", "r", "-w", "1", "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["submitted_instances"] == 1 and summary["resolved_instances"] == 1
    assert summary["error_instances"] == 0 and summary["empty_patch_instances"] == 0
    report = json.loads(Path(summary["report"]).read_text())
    assert report["resolved_ids"] == [_ro_tasks[0].instance_id]
    assert report["unknown_ids"] == [_ro_tasks[1].instance_id]


# -- 6. bad input ---------------------------------------------------------------------------
def test_export_of_a_missing_file_is_a_one_line_error(tmp_path: Path) -> None:
    done = swebox("trajectories", "export", str(tmp_path / "missing.jsonl"), "--to", "sft",
                  "-o", str(tmp_path / "x"))
    _one_line_error(done)
    assert "missing.jsonl" in done.stderr
    assert not (tmp_path / "x").exists()


def test_export_to_an_unknown_format_is_a_one_line_error(
        _ro_gold_run: tuple[Path, subprocess.CompletedProcess[str]], tmp_path: Path) -> None:
    done = swebox("trajectories", "export", str(_ro_gold_run[0]), "--to", "nonsense",
                  "-o", str(tmp_path / "x"))
    _one_line_error(done)
    assert "nonsense" in done.stderr
    assert not (tmp_path / "x").exists()


def test_export_of_a_file_that_holds_no_trajectories_is_refused(
        _ro_gold_run: tuple[Path, subprocess.CompletedProcess[str]],
        _ro_task_files: tuple[Path, Path], tmp_path: Path) -> None:
    preds = _ro_gold_run[0] / "predictions.jsonl"  # sits right beside trajectories.jsonl
    for src in (_ro_task_files[0], preds):
        done = swebox("trajectories", "export", str(src), "--to", "predictions",
                      "-o", str(tmp_path / "x.jsonl"))
        _one_line_error(done)
        assert f"{src}:1" in done.stderr
        assert not (tmp_path / "x.jsonl").exists()


def test_llm_agent_without_model_exits_2(tmp_path: Path) -> None:
    done = swebox("rollout", "--agent", "llm", "-o", str(tmp_path / "run"))
    assert done.returncode == 2
    _one_line_error(done)
    assert "--model" in done.stderr
    assert not (tmp_path / "run").exists()


def test_unknown_dialect_fails_before_anything_starts(tmp_path: Path,
                                                      _ro_task_files: tuple[Path, Path]) -> None:
    proc = subprocess.Popen(_cmd("rollout", "--agent", "rule", "--patch", "gold", "--dialect",
                                 "nope", "-o", str(tmp_path / "run"), "--tasks",
                                 str(_ro_task_files[0])),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stdout, stderr = proc.communicate(timeout=60)
    done = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    _one_line_error(done)
    assert "nope" in stderr and "swebox" in stderr  # names the dialects there are
    assert not (tmp_path / "run").exists()
    assert _owned_by(proc.pid) == [] and _snapshots_of(proc.pid) == []
