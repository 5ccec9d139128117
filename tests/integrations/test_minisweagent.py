"""mini-swe-agent 2.4.6 on swebox: mini's own code (DefaultAgent, LitellmModel, its SWE-bench
batch runner, swebench.yaml) runs in its venv in a subprocess, against the scripted model
server started here and real containers. Each subprocess counts the containers it owns (the
`swebox.owner` label of its pid) after cleaning up, before its atexit hook could hide a leak."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import docker
import pytest

from swebox.integrations.minisweagent import grade_submission
from swebox.sandbox.lifecycle import HOST, L_OWNER
from swebox.tasks.model import Task
from tests.agents.modelserver import IGNORES_TERM, ScriptedServer

REPO = Path(__file__).resolve().parents[2]
MINI_VENV = Path("/opt/swebox/venvs/mini-swe-agent-2.4.6")
MINI_PY = MINI_VENV / "bin" / "python"
pytestmark = pytest.mark.skipif(
    not MINI_PY.exists(), reason=f"mini-swe-agent's venv {MINI_VENV} is missing: build it with "
    "`python benchmarks/bench_agents.py` (or scripts/testbed.sh), then "
    f"`{MINI_VENV}/bin/pip install -e {REPO}`")

# Runs in mini's venv; argv[1] is a JSON object, the last stdout line the result.
SCRIPT = r'''
import gc, json, os, sys, threading, time
from concurrent.futures import ThreadPoolExecutor
import docker, yaml
from minisweagent import package_dir
from minisweagent.agents.default import DefaultAgent
from minisweagent.environments import get_environment
from minisweagent.exceptions import Submitted
from minisweagent.models.litellm_model import LitellmModel
from swebox.integrations.minisweagent import CLASS_PATH, SweboxEnvironment, SweboxEnvironmentConfig
from swebox.sandbox.lifecycle import HOST, L_OWNER

a = json.loads(sys.argv[1])
cfg = yaml.safe_load((package_dir / "config" / "benchmarks" / "swebench.yaml").read_text())
env_cfg = {**cfg["environment"], "environment_class": CLASS_PATH, "sandbox": {"pull": "never"}}

def model(policy):
    return LitellmModel(model_name="openai/" + policy, cost_tracking="ignore_errors",
                        model_kwargs={"api_base": a["url"], "api_key": "EMPTY",
                                      "drop_params": True},
                        observation_template=cfg["model"]["observation_template"],
                        format_error_template=cfg["model"]["format_error_template"])

def mine():
    api = docker.from_env()
    try:
        mine = {"label": f"{L_OWNER}={HOST}:{os.getpid()}"}
        return len(api.containers.list(all=True, filters=mine))
    finally:
        api.close()

def submit(env, text):
    try:
        env.execute({"command": "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT && " + text})
    except Submitted as e:
        return e.messages[0]["extra"]
    return None

out = {}
if a["mode"] == "solve":
    env = get_environment({**env_cfg, "task": a["task"]})  # mini's factory, by dotted path
    agent = DefaultAgent(model("solver"), env, **{**cfg["agent"], "step_limit": 15})
    out["info"] = agent.run(a["task"]["problem_statement"])
    out["environment_type"] = agent.serialize()["info"]["config"]["environment_type"]
    out["commands"] = [m["extra"]["actions"][0]["command"][:40] for m in agent.messages
                       if m["role"] == "assistant"]
    env.cleanup()
    out["left"] = mine()
elif a["mode"] == "many":
    tasks = a["tasks"]
    with ThreadPoolExecutor(8) as ex:
        envs = list(ex.map(lambda i: get_environment({**env_cfg, "task": tasks[i % len(tasks)]}),
                           range(a["n"])))
    errors, statuses = [], [None] * a["n"]
    def run(i):
        env = envs[i]
        real = env.execute
        def execute(action, cwd="", **kw):
            r = real(action, cwd, **kw)
            if r["exception_info"] or r["returncode"]:
                errors.append(f"{i}: {action['command']}: {r['returncode']} {r['exception_info']}")
            return r
        env.execute = execute
        try:
            agent = DefaultAgent(model("busy"), env, **{**cfg["agent"], "step_limit": 5})
            statuses[i] = agent.run(tasks[i % len(tasks)]["problem_statement"])["exit_status"]
            got = submit(env, f"echo done-{i}")
            if got != {"exit_status": "Submitted", "submission": f"done-{i}\n"}:
                errors.append(f"{i}: submission {got}")
        except Exception as e:
            errors.append(f"{i}: {type(e).__name__}: {e}")
    threads = [threading.Thread(target=run, args=(i,)) for i in range(a["n"])]
    [t.start() for t in threads]
    [t.join() for t in threads]
    with ThreadPoolExecutor(8) as ex:
        list(ex.map(lambda e: e.cleanup(), envs))
    out.update(errors=errors, statuses=statuses, left=mine())
else:  # edge cases of one environment
    env = get_environment({**env_cfg, "task": a["task"], "timeout": 1})
    run = lambda cmd, **kw: env.execute({"command": cmd}, **kw)
    out["pwd"] = run("pwd")
    out["stateless"] = [run("cd /tmp && export FOO=1")["returncode"], run('pwd; echo "[$FOO]"')]
    out["cwd_arg"] = run("pwd", cwd="/tmp")["output"]
    out["env"] = run("echo $PAGER; echo err >&2")["output"]
    out["exit3"] = run("exit 3")["returncode"]
    for key, cmd in (("sleep", "sleep 1000"), ("ignores_term", a["ignores_term"])):
        t0 = time.monotonic()
        out[key] = {**run(cmd), "seconds": time.monotonic() - t0}
    out["override"] = run("sleep 1.5; echo slept", timeout=5)["output"]
    out["leftover"] = run("for p in /proc/[0-9]*; do c=$(tr '\\0' ' ' < $p/cmdline 2>/dev/null);"
                          " [ \"$c\" = 'sleep 1000 ' ] && echo LEFT $p; done; echo checked"
                          )["output"]
    out["big"] = len(run("head -c 20000000 /dev/zero | tr '\\0' a")["output"])
    out["not_submitted"] = run("echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT; false")["returncode"]
    out["submitted"] = submit(env, "printf 'a\\nb\\n'")
    ser = env.serialize()["info"]["config"]
    out["round_trip"] = SweboxEnvironmentConfig(**ser["environment"]) == env.config
    out["environment_type"] = ser["environment_type"]
    tv = env.get_template_vars()
    out["template_vars"] = [tv.get("cwd"), "system" in tv, "task" in tv]
    out["after_use"] = run("echo alive")["output"]
    env.cleanup(); env.cleanup()
    out["after_cleanup"] = run("echo x")["returncode"]
    out["left_cleanup"] = mine()
    env = SweboxEnvironment(image=a["task"]["local_image"], sandbox={"pull": "never"})
    out["image_mode"] = [env.execute({"command": "pwd"})["output"], mine()]
    del env  # as mini's batch runner leaves it: __del__ removes the sandbox
    gc.collect()
    out["left_del"] = mine()
print(json.dumps(out), flush=True)
'''


def mini_env(tmp: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "MSWEA_SILENT_STARTUP": "1",
            "MSWEA_COST_TRACKING": "ignore_errors", "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "MSWEA_GLOBAL_CONFIG_DIR": str(tmp / "mswea"), "HF_HUB_OFFLINE": "1",
            "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp / "hf")}


def owned_by(pid: int) -> int:
    api = docker.from_env()
    try:
        return len(api.containers.list(all=True, filters={"label": f"{L_OWNER}={HOST}:{pid}"}))
    finally:
        api.close()


def run_mini(tmp: Path, args: dict[str, Any], timeout: float = 240) -> dict[str, Any]:
    log = tmp / "mini.log"
    with open(log, "w") as err:
        proc = subprocess.Popen([str(MINI_PY), "-c", SCRIPT, json.dumps(args)], text=True,
                                stdout=subprocess.PIPE, stderr=err, env=mini_env(tmp))
        stdout, _ = proc.communicate(timeout=timeout)
    lines = stdout.strip().splitlines()
    if proc.returncode and "ModuleNotFoundError: No module named 'docker'" in log.read_text():
        pytest.fail(f"swebox's dependencies are missing in {MINI_VENV}: run `{MINI_VENV}/bin/pip "
                    f"install -e {REPO}`", pytrace=False)
    assert proc.returncode == 0 and lines, log.read_text()[-3000:]
    assert owned_by(proc.pid) == 0  # nothing left after it exited either
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def dump(task: Task) -> dict[str, Any]:
    return task.model_dump(mode="json")


def test_default_agent_solves_and_swebox_grades(tmp_path: Path, sample_tasks: dict[str, Task],
                                                 model_server: ScriptedServer) -> None:
    task = sample_tasks["semver_range"]
    out = run_mini(tmp_path, {"mode": "solve", "task": dump(task), "url": model_server.base_url})
    info = out["info"]
    assert info["exit_status"] == "Submitted", out
    assert out["commands"][1].startswith("git apply <<") and out["left"] == 0
    assert out["environment_type"] == "swebox.integrations.minisweagent.SweboxEnvironment"
    assert info["submission"].startswith("diff --git a/semverkit/version.py")
    verdict = grade_submission(dump(task), info["submission"], pull="never")
    assert verdict.resolved and verdict.infra_failure is None, verdict


def test_swebench_batch_runner_by_config(tmp_path: Path, sample_tasks: dict[str, Task],
                                         model_server: ScriptedServer) -> None:
    """mini's own batch CLI, through swebox's entry point: `environment_class: swebox`."""
    task = sample_tasks["texttable"]
    data = tmp_path / "dataset"
    data.mkdir()
    row = {"instance_id": task.instance_id, "problem_statement": task.problem_statement,
           "swebox_task": task.model_dump_json()}
    (data / "test.jsonl").write_text(json.dumps(row) + "\n")
    out = tmp_path / "out"
    cmd = [str(MINI_PY), "-m", "swebox.integrations.minisweagent", "swebench",
           "--subset", str(data), "--split", "test", "-o", str(out), "-w", "1",
           "-c", "swebench.yaml", "-c", "environment.environment_class=swebox",
           "-c", 'environment.sandbox={"pull": "never"}', "-c", "model.model_name=openai/solver",
           "-c", f"model.model_kwargs.api_base={model_server.base_url}",
           "-c", "model.model_kwargs.api_key=EMPTY", "-c", "model.cost_tracking=ignore_errors",
           "-c", "agent.step_limit=15"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=mini_env(tmp_path),
                          timeout=240)
    log = out / "minisweagent.log"
    detail = (log.read_text()[-3000:] if log.exists() else "") + proc.stderr[-2000:]
    assert proc.returncode == 0, detail
    pred = json.loads((out / "preds.json").read_text())[task.instance_id]
    traj = json.loads((out / task.instance_id / f"{task.instance_id}.traj.json").read_text())
    assert traj["info"]["exit_status"] == "Submitted", detail
    assert traj["info"]["config"]["environment_type"].endswith("minisweagent.SweboxEnvironment")
    assert grade_submission(row, pred["model_patch"], pull="never").resolved


def test_32_concurrent_episodes(tmp_path: Path, sample_tasks: dict[str, Task],
                                model_server: ScriptedServer) -> None:
    tasks = [dump(t) for t in sample_tasks.values()]
    t0 = time.monotonic()
    out = run_mini(tmp_path, {"mode": "many", "n": 32, "tasks": tasks,
                              "url": model_server.base_url})
    assert out["errors"] == [], out["errors"][:5]
    assert out["statuses"] == ["LimitsExceeded"] * 32  # busy's 5 commands, then the step limit
    assert out["left"] == 0, f"{out['left']} containers left ({time.monotonic() - t0:.0f} s)"


def test_timeouts_statelessness_and_cleanup(tmp_path: Path, sample_tasks: dict[str, Task]
                                            ) -> None:
    task = sample_tasks["paginate"]
    out = run_mini(tmp_path, {"mode": "edge", "task": dump(task), "ignores_term": IGNORES_TERM})
    assert out["pwd"] == {"output": "/testbed\n", "returncode": 0, "exception_info": ""}
    assert out["stateless"] == [0, {"output": "/testbed\n[]\n", "returncode": 0,
                                    "exception_info": ""}]
    assert out["cwd_arg"] == "/tmp\n" and out["env"] == "cat\nerr\n" and out["exit3"] == 3
    for key in ("sleep", "ignores_term"):
        r = out[key]
        assert r["returncode"] == -1 and r["output"] == "", r
        assert "timed out after 1 seconds" in r["exception_info"], r
        assert r["extra"]["exception_type"] == "TimeoutExpired" and r["seconds"] < 10, r
    assert out["override"] == "slept\n"  # execute's timeout wins over the config's
    assert out["leftover"] == "checked\n"  # the SIGTERM-ignoring sleep was killed
    assert 8 * 1024**2 <= out["big"] < 8 * 1024**2 + 1000  # capped: head and tail kept
    assert out["not_submitted"] == 1
    assert out["submitted"] == {"exit_status": "Submitted", "submission": "a\nb\n"}
    assert out["round_trip"] and out["environment_type"].endswith(".SweboxEnvironment")
    assert out["template_vars"] == ["/testbed", True, False]
    assert out["after_use"] == "alive\n" and out["after_cleanup"] == -1
    assert out["left_cleanup"] == 0 and out["left_del"] == 0
    assert out["image_mode"] == ["/\n", 1]
