"""verl: swebox's tools as verl BaseTools, run by verl's own code (verl 0.9.1, CPU torch) in its
venv (/opt/swebox/venvs/verl, built by scripts/verl_venv.sh), on real docker; nothing mocked.

A driver process in that venv loads the tools with verl's `initialize_tools_from_config` from
the YAML `write_tool_config` writes, reads rows from the parquet `convert_rllm_parquet` makes
of the `--to rllm` writer's (with `datasets`, taking `extra_info.tools_kwargs` as verl's
RLHFDataset does), and makes every call through verl's own `ToolAgentLoop._call_tool` with a
real `AgentData` per trajectory: a new tool instance per call (create -> execute -> release),
as the agent loop does. The driver stays up for the module and answers one scenario per line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pyarrow.parquet as pq
import pytest

from swebox.agents.dialects import get_dialect
from swebox.errors import BadInput
from swebox.integrations import verl
from swebox.tasks.model import Task
from swebox.tasks.writers import rllm as rllm_writer
from swebox.tasks.writers.common import WriteOptions
from tests.agents.modelserver import hacker, names_for, sample_scripts, solver

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(os.environ.get("SWEBOX_VERL_VENV", "/opt/swebox/venvs/verl"))
PREFIX = "SWEBOX-VERL-RESULT "

DRIVER = r'''
import asyncio, gc, json, os, socket, sys, time, traceback
from uuid import uuid4

import datasets, docker
from verl.experimental.agent_loop.tool_agent_loop import AgentData, ToolAgentLoop
from verl.experimental.agent_loop.tool_parser import FunctionCall
from verl.tools.tool_registry import initialize_tools_from_config
from verl.utils.import_utils import load_extern_object

from swebox.integrations.verl_state import registry

OWNER = f"swebox.owner={socket.gethostname()}:{os.getpid()}"
api = docker.from_env()


def containers():
    # the low-level list: no inspect per container, which races with their removal
    found = api.api.containers(all=True, filters={"label": OWNER})
    return sorted(c["Names"][0].lstrip("/") for c in found)


def count_calls(tool, counts):
    create, release = tool.create, tool.release

    async def counted_create(*a, **kw):
        iid, resp = await create(*a, **kw)
        counts["create"].append(iid)
        return iid, resp

    async def counted_release(iid, **kw):
        counts["release"].append(iid)
        return await release(iid, **kw)

    tool.create, tool.release = counted_create, counted_release


def agent_loop(tools):
    """verl's ToolAgentLoop with what _call_tool reads (its __init__ wants a model server)."""
    loop = object.__new__(ToolAgentLoop)
    loop.tools = {t.name: t for t in tools}
    loop.max_tool_response_length = 1_000_000
    loop.tool_response_truncate_side = "middle"
    return loop


def load_rows(parquet):
    ds = datasets.load_dataset("parquet", data_files=parquet, keep_in_memory=True)["train"]
    rows = []
    for row in ds:  # RLHFDataset.__getitem__: tools_kwargs from extra_info
        rows.append({"tools_kwargs": (row.get("extra_info") or {}).get("tools_kwargs", {}),
                     "prompt": row["prompt"], "agent_name": row.get("agent_name")})
    return rows


async def trajectory(loop, tools_kwargs, actions, keep, i):
    ad = AgentData(messages=[], image_data=None, video_data=None, audio_data=None,
                   mm_processor_kwargs=None, metrics={}, request_id=uuid4().hex,
                   tools_kwargs=tools_kwargs)
    calls = []
    for step in actions:  # a list of calls: one turn's parallel calls (max_parallel_calls > 1)
        batch = step if isinstance(step[0], list) else [step]
        results = await asyncio.gather(*[loop._call_tool(
            FunctionCall(name=name, arguments=json.dumps(args), tool_call_id=uuid4().hex),
            ad.tools_kwargs, ad) for name, args in batch])
        for (name, _), (resp, reward, metrics) in zip(batch, results):
            ad.tool_rewards.append(reward)
            calls.append({"name": name, "text": resp.text, "reward": reward,
                          "key": (metrics or {}).get("trajectory"),
                          "done": (metrics or {}).get("done")})
    # the reward function as verl's reward manager loads and calls it (custom_reward_function)
    score_fn = load_extern_object("pkg://swebox.integrations.verl", "compute_score")
    extra_info = {"index": 0}
    extra_info.update({"turn_scores": [], "tool_rewards": list(ad.tool_rewards)}.items())
    score = score_fn(data_source="swebox", solution_str="", ground_truth=None,
                     extra_info=extra_info)
    keys = {c["key"] for c in calls if c["key"]}
    key = keys.pop() if len(keys) == 1 else None
    if keep is not None:
        keep[i] = ad  # verl's loop holds it while the trajectory runs
    return {"calls": calls, "score": score, "key": key, "n_keys": len(keys) + (key is not None),
            "summary": registry().summary(key) if key else None}


async def run(spec):
    tools = initialize_tools_from_config(spec["yaml"])
    out = {"tools": [{"name": t.name, "class": type(t).__name__, "module": type(t).__module__,
                      "schema": t.tool_schema.model_dump(exclude_unset=True, exclude_none=True),
                      "config": t.config} for t in tools]}
    if spec.get("load_only"):
        return out
    counts = {"create": [], "release": []}
    for t in tools:
        count_calls(t, counts)
    loop = agent_loop(tools)
    rows = load_rows(spec["parquet"])
    before = dict(registry().counts)
    held = {}
    t0 = time.monotonic()
    trajs = await asyncio.gather(*[
        trajectory(loop, rows[tr["row"]]["tools_kwargs"], tr["actions"],
                   held if tr.get("keep") else None, i)
        for i, tr in enumerate(spec["trajectories"])])
    out["elapsed"] = round(time.monotonic() - t0, 2)
    out["trajectories"] = trajs
    out["rows"] = [{"prompt": r["prompt"], "agent_name": r["agent_name"]} for r in rows]
    out["creates"], out["releases"] = len(counts["create"]), len(counts["release"])
    out["distinct_instances"] = len(set(counts["create"]))
    out["live_after_run"] = len(registry().live())
    out["containers_after_run"] = containers()
    if spec.get("after_end"):  # the model calls again after the end; and calc_reward
        tool = next(t for t in tools if t.name == spec["after_end"]["tool"])
        for i, tr in enumerate(trajs):
            ad = held[i]
            iid, _ = await tool.create(create_kwargs={})
            resp, reward, _ = await tool.execute(iid, spec["after_end"]["args"], agent_data=ad)
            tr["after_end"] = {"text": resp.text, "reward": reward,
                               "calc_reward": await tool.calc_reward(iid)}
            await tool.release(iid)
        out["containers_after_late_calls"] = containers()
        held.clear()
    if spec.get("abandon"):
        out["held_containers"] = containers()
        if spec["abandon"] == "drop":
            held.clear()
            gc.collect()
        deadline = time.monotonic() + spec["wait"]
        while (registry().live() or containers()) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        out["reclaimed_after"] = round(time.monotonic() - t0 - out["elapsed"], 2)
        out["live_after_wait"] = registry().live()
        out["containers_after_wait"] = containers()
        out["summaries"] = [registry().summary(tr["key"]) for tr in trajs]
        late = []
        for ad in held.values():  # the model calls again after the reclaim
            fc = FunctionCall(name=spec["late_call"][0], arguments=json.dumps(spec["late_call"][1]))
            resp, reward, _ = await loop._call_tool(fc, ad.tools_kwargs, ad)
            late.append({"text": resp.text, "reward": reward})
        out["late_calls"] = late
        out["containers_after_late_calls"] = containers()
        held.clear()
    out["counts"] = {k: v - before.get(k, 0) for k, v in registry().counts.items()}
    return out


for line in sys.stdin:
    spec = json.loads(line)
    try:
        result = {"ok": True, **asyncio.run(run(spec))}
    except BaseException:
        result = {"ok": False, "error": traceback.format_exc()}
    print(PREFIX + json.dumps(result), flush=True)
'''.replace("PREFIX", repr(PREFIX))


class Driver:
    def __init__(self, tmp: Path) -> None:
        script = tmp / "verl_driver.py"
        script.write_text(DRIVER)
        self.stderr_path = tmp / "driver.stderr"
        self.stderr = self.stderr_path.open("w")
        env = {**os.environ, "PYTHONPATH": str(ROOT), "VERL_USE_EXTERNAL_PLUGINS": "none",
               "RAY_DEDUP_LOGS": "0"}
        self.proc = subprocess.Popen([str(VENV / "bin" / "python"), str(script)], cwd=tmp,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.stderr, text=True, env=env)

    def run(self, spec: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(spec) + "\n")
        self.proc.stdin.flush()
        for line in self.proc.stdout:
            if line.startswith(PREFIX):
                out: dict[str, Any] = json.loads(line[len(PREFIX):])
                assert out["ok"], out["error"]
                return out
        self.stderr.flush()
        pytest.fail("the verl driver died:\n" + self.stderr_path.read_text()[-4000:])

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.stderr.close()


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Driver]:
    if not (VENV / "bin" / "python").exists():
        pytest.skip(f"the verl venv {VENV} is missing: run `bash scripts/verl_venv.sh`")
    d = Driver(tmp_path_factory.mktemp("verl-driver"))
    yield d
    d.close()


@pytest.fixture(scope="module")
def scripts() -> dict[str, Any]:
    return {s.instance_id: s for s in sample_scripts()}


def actions(policy: Any, script: Any, task: Task, dialect: str) -> list[list[Any]]:
    names = names_for([t.name for t in get_dialect(dialect).tools])
    return [[name, args] for name, args in policy(script, names, task.workdir)]


def verl_parquet(tasks: list[Task], tmp: Path, dialect: str, once: bool = False) -> Path:
    src, dst = tmp / f"rllm-{dialect}.parquet", tmp / f"verl-{dialect}.parquet"
    rllm_writer.write(tasks, src, WriteOptions())
    assert verl.convert_rllm_parquet(src, dst, dialect=dialect, once=once) == len(tasks)
    return dst


# -- without verl: the config and rows ------------------------------------------------------
def test_tool_config_and_rows(sample_tasks: dict[str, Task], tmp_path: Path) -> None:
    doc = verl.tool_config("r2e", lease=30, max_steps=20)
    assert [(e["class_name"].rsplit(".", 1)[1], e["config"]["tool"]) for e in doc["tools"]] == [
        ("SweboxEditorTool", "file_editor"), ("SweboxBashTool", "execute_bash"),
        ("SweboxSearchTool", "search"), ("SweboxSubmitTool", "finish")]
    assert doc["tools"][0]["config"] == {"type": "native", "dialect": "r2e", "max_steps": 20,
                                         "lease": 30.0, "tool": "file_editor"}
    with pytest.raises(BadInput, match="no tool"):
        verl.tool_config("swebox", tools=["finish"])
    with pytest.raises(ValueError, match="max_stepz"):
        verl.tool_config("swebox", max_stepz=3)
    task = sample_tasks["paginate"]
    path = verl_parquet([task], tmp_path, "swebox")
    row = pq.read_table(path).to_pylist()[0]
    assert row["agent_name"] == "tool_agent" and row["extra_info"]["need_tools_kwargs"]
    assert list(row["extra_info"]["tools_kwargs"]) == ["bash", "str_replace_editor", "search",
                                                       "submit"]
    ck = row["extra_info"]["tools_kwargs"]["submit"]["create_kwargs"]
    assert Task.model_validate_json(ck["task"]) == task
    assert [m["role"] for m in row["prompt"]] == ["system", "user"]
    assert task.problem_statement in row["prompt"][1]["content"]
    assert row["extra_info"]["instance_id"] == task.instance_id  # the rllm columns stay
    # a row may carry the task under one tool only: the others find it through AgentData
    tools_kwargs = {"bash": {"create_kwargs": {}}, "submit": {"create_kwargs": ck}}
    assert verl.find_task({}, SimpleNamespace(tools_kwargs=tools_kwargs)) == task
    with pytest.raises(BadInput, match="no task"):
        verl.find_task({}, SimpleNamespace(tools_kwargs={"bash": {"create_kwargs": {}}}))
    ad = SimpleNamespace(request_id="r1")
    assert verl.trajectory_key(ad, {"trajectory_id": "t"}) == (f"r1@{id(ad):x}", ad)
    assert verl.trajectory_key(None, {"trajectory_id": "t"}) == ("t", None)
    with pytest.raises(BadInput, match="no trajectory"):
        verl.trajectory_key(None, {})
    assert verl.compute_score("d", "", None, {"tool_rewards": [0.0, 0.0, 1.0]}) == 1.0
    assert verl.compute_score("d", "", None, {}) == 0.0


# -- verl's loader ----------------------------------------------------------------------------
@pytest.mark.parametrize("dialect", ["swebox", "r2e", "sweagent", "openhands"])
def test_verl_loads_the_generated_config(driver: Driver, tmp_path: Path, dialect: str) -> None:
    path = verl.write_tool_config(tmp_path / "tools.yaml", dialect=dialect, bash_timeout=60)
    out = driver.run({"yaml": str(path), "load_only": True})
    d = get_dialect(dialect)
    assert [t["name"] for t in out["tools"]] == [t.name for t in d.tools]
    for got, want in zip(out["tools"], d.tools, strict=True):
        assert got["module"] == "swebox.integrations.verl"
        assert got["class"].startswith("Swebox") and got["class"].endswith("Tool")
        fn = got["schema"]["function"]
        assert fn["description"] == want.description
        assert set(fn["parameters"]["properties"]) == set(want.parameters["properties"])
        assert fn["parameters"].get("required", []) == want.parameters.get("required", [])
        assert got["config"]["type"] == "native" and got["config"]["bash_timeout"] == 60


# -- trajectories through ToolAgentLoop._call_tool ------------------------------------------
@pytest.mark.parametrize("dialect", ["swebox", "r2e"])
def test_gold_trajectory_gets_1_and_hacker_gets_0(
        driver: Driver, sample_tasks: dict[str, Task], scripts: dict[str, Any], tmp_path: Path,
        dialect: str) -> None:
    task = sample_tasks["paginate"]
    path = verl.write_tool_config(tmp_path / "tools.yaml", dialect=dialect)
    d = get_dialect(dialect)
    submit = next(t for t in d.tools if t.submits)
    out = driver.run({
        # r2e rows carry the task under their first tool only (file_editor): the bash call
        # that opens the trajectory finds it through AgentData.tools_kwargs
        "yaml": str(path),
        "parquet": str(verl_parquet([task], tmp_path, dialect, once=dialect == "r2e")),
        "trajectories": [
            # its first turn: three parallel calls racing to open the trajectory
            {"row": 0, "actions": [[[d.bash_tool, {d.bash_arg: f"echo {i} >> /tmp/turn1"}]
                                    for i in range(3)],
                                   [d.bash_tool, {d.bash_arg: "sort /tmp/turn1 | tr -d '\\n'"}],
                                   *actions(solver, scripts[task.instance_id], task, dialect)],
             "keep": True},
            {"row": 0, "actions": [[d.bash_tool, ["not", "an", "object"]],
                                   *actions(hacker, scripts[task.instance_id], task, dialect)],
             "keep": True},
        ],
        # the model calls again once the episode is over: told so, no sandbox starts
        "after_end": {"tool": d.bash_tool, "args": {d.bash_arg: "echo again"}},
    })
    gold, hack = out["trajectories"]
    n_calls = len(gold["calls"]) + len(hack["calls"])
    # a new instance per call, each released; one sandbox per trajectory
    assert out["creates"] == out["releases"] == out["distinct_instances"] == n_calls
    assert gold["n_keys"] == hack["n_keys"] == 1 and gold["key"] != hack["key"]
    assert out["counts"]["opened"] == 2 and out["counts"]["ended"] == 2
    for c in gold["calls"][:-1] + hack["calls"][:-1]:
        assert c["reward"] == 0.0 and not c["done"], c
    assert gold["calls"][-1]["name"] == hack["calls"][-1]["name"] == submit.name
    assert gold["calls"][-1]["reward"] == 1.0 and gold["score"] == 1.0, gold["calls"][-1]
    assert hack["calls"][-1]["reward"] == 0.0 and hack["score"] == 0.0
    assert gold["summary"]["exit_reason"] == "submitted"
    assert gold["summary"]["verdict"]["resolved"] is True
    assert hack["summary"]["verdict"]["resolved"] is False
    assert "pagekit/paginator.py" in gold["summary"]["patch"]
    assert "012" in gold["calls"][3]["text"]  # the parallel calls ran in one sandbox
    assert "must be a JSON object" in hack["calls"][0]["text"]
    edits = [c for c in gold["calls"] if c["name"] in ("str_replace_editor", "file_editor")]
    assert edits and all("rror" not in c["text"][:80] for c in edits), edits
    assert out["live_after_run"] == 0 and out["containers_after_run"] == []
    for tr in (gold, hack):
        late = tr["after_end"]
        assert "episode is over (submitted)" in late["text"] and late["reward"] == 0.0
    assert gold["after_end"]["calc_reward"] == 1.0 and hack["after_end"]["calc_reward"] == 0.0
    assert out["containers_after_late_calls"] == []
    assert out["rows"][0]["agent_name"] == "tool_agent"


@pytest.mark.parametrize("how", ["lease", "drop"])
def test_abandoned_trajectory_is_reclaimed(
        driver: Driver, sample_tasks: dict[str, Task], tmp_path: Path, how: str) -> None:
    """`lease`: verl keeps the AgentData but calls no more: the 2 s lease reclaims it.
    `drop`: the agent loop is over (its AgentData is collected): reclaimed at once, although
    the lease is an hour."""
    task = sample_tasks["semver_range"]
    lease = 2.0 if how == "lease" else 3600.0
    path = verl.write_tool_config(tmp_path / "tools.yaml", dialect="swebox", lease=lease)
    acts = [["bash", {"command": "echo started > /tmp/mine"}],
            ["str_replace_editor", {"command": "view", "path": "/tmp/mine"}]]
    out = driver.run({
        "yaml": str(path), "parquet": str(verl_parquet([task], tmp_path, "swebox")),
        "trajectories": [{"row": 0, "actions": acts, "keep": True}] * 2,
        "abandon": how, "wait": 30, "late_call": ["bash", {"command": "cat /tmp/mine"}],
    })
    for tr in out["trajectories"]:
        assert [c["done"] for c in tr["calls"]] == [False, False]
        assert "started" in tr["calls"][1]["text"]
    assert len(out["held_containers"]) == 2  # one sandbox each, running while abandoned
    assert out["live_after_wait"] == [] and out["containers_after_wait"] == []
    assert out["counts"]["reclaimed"] == 2 and out["counts"]["opened"] == 2
    if how == "lease":
        assert 1.5 <= out["reclaimed_after"] < 10, out["reclaimed_after"]
        assert [s["exit_reason"] for s in out["summaries"]] == ["lease_expired"] * 2
        for late in out["late_calls"]:  # told the episode is over; no new sandbox
            assert "episode is over (lease_expired)" in late["text"] and late["reward"] == 0.0
        assert out["containers_after_late_calls"] == []
    else:
        assert out["reclaimed_after"] < 10, out["reclaimed_after"]
        assert out["summaries"] == [None, None]  # nothing remembered for a dead owner


@pytest.mark.timeout(900)
def test_32_concurrent_trajectories(driver: Driver, sample_tasks: dict[str, Task],
                                    scripts: dict[str, Any], tmp_path: Path) -> None:
    names = sorted(sample_tasks)
    tasks = [sample_tasks[n] for n in names]
    path = verl.write_tool_config(tmp_path / "tools.yaml", dialect="swebox")
    trajs: list[dict[str, Any]] = []
    for i in range(32):
        t = tasks[i % len(tasks)]
        policy = hacker if i % 8 == 7 else solver
        trajs.append({"row": i % len(tasks), "actions": actions(policy, scripts[t.instance_id],
                                                                t, "swebox")})
    t0 = time.monotonic()
    out = driver.run({"yaml": str(path),
                      "parquet": str(verl_parquet(tasks, tmp_path, "swebox")),
                      "trajectories": trajs})
    wall = time.monotonic() - t0
    got = [tr["score"] for tr in out["trajectories"]]
    want = [0.0 if i % 8 == 7 else 1.0 for i in range(32)]
    assert got == want, [(i, tr["summary"]) for i, tr in enumerate(out["trajectories"])
                         if got[i] != want[i]]
    errors = [c for tr in out["trajectories"] for c in tr["calls"]
              if c["text"].startswith(("Error executing tool", "The environment could not"))]
    assert errors == []
    assert len({tr["key"] for tr in out["trajectories"]}) == 32
    assert out["counts"] == {"opened": 32, "ended": 32, "reclaimed": 0, "failed": 0}
    assert out["live_after_run"] == 0 and out["containers_after_run"] == []
    print(f"32 trajectories ({sum(len(t['actions']) for t in trajs)} calls): "
          f"{out['elapsed']} s in the driver, {wall:.1f} s with the parquet", file=sys.stderr)
