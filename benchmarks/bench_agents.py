"""Agent environments: swebox's SweEnv against mini-swe-agent 2.4.6, same images, same model.

Part 1, reset to first observation, `--n` timed runs of each on one sample task's image (each
env closed, mini's container removed with `docker rm -f`, outside the timing):

* swebox_pool: `SweEnv(task, seat_factory=pool.acquire).reset()` with a warm
  `SeatPool(task, size=--pool-size)`, full again before each timed reset (the main figure);
* swebox_fresh (informational): `SweEnv(task).reset()` with no pool, the sandbox started now;
* mini: `DockerEnvironment(image=..., **swebench.yaml's environment)` construction, which is
  mini-swe-agent's start (`docker run -d`), timed inside its own venv.

Part 2, `--episodes` concurrent episodes of the scripted `busy` policy (29 bash commands, then
a submit: 30 steps) from `tests.agents.modelserver`, a separate process shared by both. The
sandboxes are started first (not timed); then one thread per episode, released together, and
the wall time until the last episode returns:

* swebox: `LLMAgent(LLMConfig(model="busy")).run(SweEnv(task, grading off, max_steps 40,
  seat_factory=<a seat opened up front>))`; the episode's end (diff, sandbox removal) is timed;
* mini: `DefaultAgent(LitellmModel("openai/busy"), DockerEnvironment(...), **swebench.yaml's
  agent, step_limit=40).run(statement)`; its own `env.cleanup()` runs after the timing.

Sample tasks go round robin. Steps are env steps (swebox) and model calls (mini); an error is
an episode that did not end by its submit; containers left are a side's containers present
right after it finished (by this process's owner labels; mini's get one through `run_args`).
Where the time goes: each process's CPU over the run (`cpu_s`, one GIL each; swebox's model
client's share) and per-episode sums (model calls, commands, swebox's diff). mini-swe-agent
runs from /opt/swebox/venvs/mini-swe-agent-2.4.6, pip-installed on the first run and reused.

Targets: swebox_pool p50 / mini p50 <= 1/5, swebox_pool p50 <= 50 ms; swebox steps/s / mini
steps/s >= 10, 0 swebox errors, 0 swebox containers left.

    python benchmarks/bench_agents.py [--n 15] [--episodes 16] [--pool-size 4]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from _common import (
    BENCH_LABEL,
    LEASE,
    OWNER,
    Cleanup,
    log,
    non_negative_int,
    positive_int,
    ratio,
    raw_client,
    rnd,
    run_benchmark,
    summary_ms,
)

from swebox.agents.env import EpisodeLimits, RewardOptions, SweEnv
from swebox.agents.llm import LLMAgent, LLMConfig
from swebox.agents.seat import Seat, SeatPool, open_seat
from swebox.samples import load_tasks
from swebox.samples.builder import build
from swebox.sandbox import lifecycle
from swebox.tasks.model import Task

REPO = Path(__file__).resolve().parent.parent
MINI_PKG = "mini-swe-agent==2.4.6"
MINI_VENV = Path("/opt/swebox/venvs/mini-swe-agent-2.4.6")
MINI_PY = MINI_VENV / "bin" / "python"
MINI_ENV = {**os.environ, "MSWEA_SILENT_STARTUP": "1", "MSWEA_COST_TRACKING": "ignore_errors",
            "LITELLM_LOCAL_MODEL_COST_MAP": "True"}  # no network fetch of the price list
SWEBOX_LABEL = f"{lifecycle.L_OWNER}={OWNER}"
MINI_LABEL = f"{BENCH_LABEL}={OWNER}"  # mini's containers get it through run_args
TARGET_RESET_RATIO = 0.2
TARGET_POOL_P50_MS = 50.0
TARGET_STEPS_RATIO = 10.0
MAX_STEPS = 40
SETTLE_S = 0.1
SEAT_OPTIONS: dict[str, Any] = {"lease": LEASE, "pull": "never", "limits": {"pids": 1024}}

# Runs in mini-swe-agent's venv; argv[1] is a JSON object, stdout's last line the result.
MINI_SCRIPT = r'''
import json, subprocess, sys, threading, time
from concurrent.futures import ThreadPoolExecutor
import yaml
from minisweagent import package_dir
from minisweagent.agents.default import DefaultAgent
from minisweagent.environments.docker import DockerEnvironment
from minisweagent.models.litellm_model import LitellmModel

a = json.loads(sys.argv[1])
cfg = yaml.safe_load((package_dir / "config" / "benchmarks" / "swebench.yaml").read_text())
env_cfg = {k: v for k, v in cfg["environment"].items() if k != "environment_class"}
env_cfg["run_args"] = ["--rm", "--label", a["label"]]

def model():
    return LitellmModel(model_name="openai/" + a["model"], cost_tracking="ignore_errors",
                        model_kwargs={"api_base": a["url"], "api_key": "EMPTY",
                                      "drop_params": True},
                        observation_template=cfg["model"]["observation_template"],
                        format_error_template=cfg["model"]["format_error_template"])

def timed(fn, acc, key):
    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        try: return fn(*args, **kwargs)
        finally: acc[key] += time.perf_counter() - t0
    return wrapper

out = {}
if a["mode"] == "reset":
    times = []
    for i in range(a["warmup"] + a["n"]):
        t0 = time.perf_counter()
        env = DockerEnvironment(image=a["image"], **env_cfg)
        times.append(time.perf_counter() - t0)
        subprocess.run(["docker", "rm", "-f", env.container_id], capture_output=True)
        env.container_id = None  # nothing left for its __del__ to stop
        time.sleep(a["settle"])
    out["reset_s"] = times[a["warmup"]:]
else:
    jobs = a["jobs"]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(4) as ex:
        envs = list(ex.map(lambda j: DockerEnvironment(image=j["image"], **env_cfg), jobs))
    out["start_s"] = time.perf_counter() - t0
    try:
        model().query([{"role": "user", "content": "warm up"}])  # litellm's lazy set-up
        agents, accs = [], []
        for env in envs:
            agent = DefaultAgent(model(), env, **{**cfg["agent"], "step_limit": a["max_steps"]})
            acc = {"model_s": 0.0, "env_s": 0.0}
            agent.model.query = timed(agent.model.query, acc, "model_s")
            env.execute = timed(env.execute, acc, "env_s")
            agents.append(agent)
            accs.append(acc)
        results = [None] * len(jobs)
        barrier = threading.Barrier(len(jobs) + 1)
        def run(i):
            barrier.wait()
            try: results[i] = agents[i].run(jobs[i]["task"]).get("exit_status")
            except Exception as e: results[i] = f"{type(e).__name__}: {e}"[:300]
        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
        [t.start() for t in threads]
        barrier.wait()
        t0, cpu0 = time.perf_counter(), time.process_time()
        [t.join() for t in threads]
        out["wall_s"] = time.perf_counter() - t0
        out["cpu_s"] = time.process_time() - cpu0
        out["steps"] = [ag.n_calls for ag in agents]
        out["exit_status"] = results
        out["model_s"] = sum(x["model_s"] for x in accs)
        out["env_s"] = sum(x["env_s"] for x in accs)
    finally:
        for env in envs:
            env.cleanup()  # mini's own: `docker stop` in the background, then --rm
print(json.dumps(out), flush=True)
'''


def ensure_mini_venv() -> None:
    """Build mini-swe-agent's venv once; reuse it when it imports."""
    check = [str(MINI_PY), "-c", "import minisweagent"]
    if MINI_PY.exists() and not subprocess.run(check, capture_output=True, env=MINI_ENV).returncode:
        return
    log(f"building {MINI_VENV} ({MINI_PKG})")
    shutil.rmtree(MINI_VENV, ignore_errors=True)
    MINI_VENV.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(MINI_VENV)], check=True)
    subprocess.run([str(MINI_VENV / "bin" / "pip"), "install", "-q", "--disable-pip-version-check",
                    MINI_PKG], check=True, stdout=subprocess.DEVNULL)


def run_mini(args: dict[str, Any], logfile: Path) -> dict[str, Any]:
    with open(logfile, "a") as err:
        proc = subprocess.run([str(MINI_PY), "-c", MINI_SCRIPT, json.dumps(args)], text=True,
                              stdout=subprocess.PIPE, stderr=err, env=MINI_ENV, timeout=900)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = logfile.read_text(errors="replace")[-1500:]
        raise RuntimeError(f"mini-swe-agent script exited {proc.returncode}; {logfile}:\n{tail}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def count(label: str) -> int:
    client = raw_client()
    try:
        return len(client.api.containers(all=True, filters={"label": label}))
    finally:
        client.close()


def start_server(cleanup: Cleanup, logfile: Path) -> str:
    """The scripted model server in a process of its own (its own GIL)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = open(logfile, "w")  # noqa: SIM115 - closed by the cleanup callback
    proc = subprocess.Popen([sys.executable, "-m", "tests.agents.modelserver", "--port",
                             str(port)], cwd=REPO, stdout=out, stderr=subprocess.STDOUT)

    def stop() -> None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        out.close()

    cleanup.callback(stop)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=2):
                return url
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"model server did not start; see {logfile}") from None
            time.sleep(0.2)


# -- part 1: reset ----------------------------------------------------------------------------
def swebox_resets(cleanup: Cleanup, task: Task, n: int, warmup: int, pool: SeatPool | None
                  ) -> list[float]:
    samples: list[float] = []
    for i in range(warmup + n):
        if pool is not None:
            pool.wait_ready(timeout=300)
            env = SweEnv(task, seat_factory=pool.acquire)
        else:
            env = SweEnv(task, sandbox_options={"lease": LEASE, "pull": "never"})
        try:
            t0 = time.perf_counter()
            env.reset()
            dt = time.perf_counter() - t0
        finally:
            sb = cleanup.sandbox(env.seat.sandbox) if env.seat is not None else None
        env.close()
        if sb is not None:
            cleanup.close_sandbox(sb)  # closed by env.close(); off the cleanup's list
        if i >= warmup:
            samples.append(dt)
        time.sleep(SETTLE_S)
    return samples


def part_reset(cleanup: Cleanup, task: Task, n: int, warmup: int, pool_size: int,
               logfile: Path) -> dict[str, Any]:
    log(f"reset: {warmup} warm-up + {n} of swebox fresh, mini, swebox pool on {task.run_image}")
    fresh = swebox_resets(cleanup, task, n, warmup, None)
    mini = run_mini({"mode": "reset", "image": task.run_image, "n": n, "warmup": warmup,
                     "settle": SETTLE_S, "label": MINI_LABEL}, logfile)["reset_s"]
    pool = SeatPool(task, size=pool_size, **SEAT_OPTIONS)
    cleanup.callback(pool.close)
    t0 = time.perf_counter()
    pool.wait_ready(timeout=300)
    fill_s = time.perf_counter() - t0
    pooled = swebox_resets(cleanup, task, n, warmup, pool)
    pool.close()
    stats = {"swebox_pool": summary_ms(pooled), "swebox_fresh": summary_ms(fresh),
             "mini": summary_ms(mini)}
    log("reset p50 ms: " + ", ".join(f"{k} {v['p50_ms']}" for k, v in stats.items()))
    return {"image": task.run_image, "pool_size": pool_size, "pool_fill_s": rnd(fill_s, 3),
            **stats}


# -- part 2: episodes -------------------------------------------------------------------------
def _given(seat: Seat) -> Seat:
    return seat


class _CpuTimed:
    """The agent's own model client, adding up the CPU time (its thread's) of its requests."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.cpu = 0.0

    def post(self, *args: Any, **kwargs: Any) -> Any:
        t0 = time.thread_time()
        try:
            return self.client.post(*args, **kwargs)
        finally:
            self.cpu += time.thread_time() - t0


def part_episodes_swebox(cleanup: Cleanup, tasks: list[Task], url: str) -> dict[str, Any]:
    t0 = time.perf_counter()

    def seat(task: Task) -> Seat:
        s = open_seat(task, **SEAT_OPTIONS)
        cleanup.sandbox(s.sandbox)
        return s

    with ThreadPoolExecutor(4) as ex:
        seats = list(ex.map(seat, tasks))
    start_s = time.perf_counter() - t0
    limits = EpisodeLimits(max_steps=MAX_STEPS)
    envs = [SweEnv(t, reward=RewardOptions(grade=False), limits=limits,
                   seat_factory=functools.partial(_given, s)) for t, s in zip(tasks, seats,
                                                                               strict=True)]
    agents = [LLMAgent(LLMConfig(model="busy", base_url=url)) for _ in tasks]
    clients = [_CpuTimed(a.client) for a in agents]
    for agent, client in zip(agents, clients, strict=True):
        agent.client = client
    trajs: list[Any] = [None] * len(tasks)
    barrier = threading.Barrier(len(tasks) + 1)

    def run(i: int) -> None:
        barrier.wait()
        try:
            trajs[i] = agents[i].run(envs[i])
        except Exception as e:
            trajs[i] = f"{type(e).__name__}: {e}"[:300]

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(tasks))]
    for t in threads:
        t.start()
    barrier.wait()
    t0, cpu0 = time.perf_counter(), time.process_time()
    for t in threads:
        t.join()
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    for env in envs:  # an episode's end removes its sandbox in the background; wait for it
        env.close()
    left = count(SWEBOX_LABEL)  # each episode's end removed its sandbox, or should have
    for s in seats:
        cleanup.close_sandbox(s.sandbox)
    ok = [t for t in trajs if not isinstance(t, str)]
    errors = [t if isinstance(t, str) else f"{t.instance_id}: {t.exit_reason} {t.error or ''}"
              for t in trajs if isinstance(t, str) or t.exit_reason != "submitted" or t.error]
    steps = sum(t.steps for t in ok)

    def total(key: str) -> float | None:
        return rnd(sum(t.timings.get(key, 0.0) for t in ok), 3)

    return {"start_s": rnd(start_s, 3), "wall_s": rnd(wall, 3), "steps": steps,
            "steps_per_s": rnd(ratio(steps, wall), 2), "errors": len(errors),
            "error_detail": errors[:5], "containers_left": left,
            # this process's CPU over the run, and the part its model client used
            "cpu_s": rnd(cpu, 3), "client_cpu_s": rnd(sum(c.cpu for c in clients), 3),
            # summed over episodes: model = model calls, episode = reset to submit, then diff
            "model_s": total("model"), "episode_s": total("episode"), "diff_s": total("diff")}


def part_episodes_mini(tasks: list[Task], url: str, logfile: Path) -> dict[str, Any]:
    jobs = [{"image": t.run_image, "task": t.problem_statement} for t in tasks]
    r = run_mini({"mode": "episodes", "jobs": jobs, "url": url, "model": "busy",
                  "max_steps": MAX_STEPS, "label": MINI_LABEL}, logfile)
    at_exit = count(MINI_LABEL)
    t0 = time.monotonic()
    left = at_exit
    while left and time.monotonic() - t0 < 20:  # its cleanup stops them in the background
        time.sleep(0.5)
        left = count(MINI_LABEL)
    steps = sum(r["steps"])
    errors = [s for s in r["exit_status"] if s != "Submitted"]
    return {"start_s": rnd(r["start_s"], 3), "wall_s": rnd(r["wall_s"], 3), "steps": steps,
            "steps_per_s": rnd(ratio(steps, r["wall_s"]), 2), "errors": len(errors),
            "error_detail": errors[:5], "containers_left": at_exit,
            "containers_left_after_s": {"s": rnd(time.monotonic() - t0, 1), "left": left},
            "cpu_s": rnd(r["cpu_s"], 3),  # its process's CPU over the run
            # summed over episodes: model = model calls, env = commands (`docker exec`)
            "model_s": rnd(r["model_s"], 3), "env_s": rnd(r["env_s"], 3)}


def body(cleanup: Cleanup, n: int, warmup: int, episodes: int, pool_size: int
         ) -> dict[str, Any]:
    ensure_mini_venv()
    samples = load_tasks()
    log(f"built images: {[s.image for s in samples if build(s)]}")
    tasks = [s.to_task() for s in samples]
    work = Path(tempfile.mkdtemp(prefix="swebox-bench-agents-"))
    mini_log = work / "mini.log"  # the server's log is next to it

    reset = part_reset(cleanup, tasks[0], n, warmup, pool_size, mini_log)
    pool_p50 = reset["swebox_pool"]["p50_ms"]
    mini_p50 = reset["mini"]["p50_ms"]
    reset_ratio = ratio(pool_p50, mini_p50)

    url = start_server(cleanup, work / "modelserver.log")
    chosen = [tasks[i % len(tasks)] for i in range(episodes)]
    log(f"episodes: {episodes} concurrent x busy (30 steps), swebox then mini; server {url}")
    ours = part_episodes_swebox(cleanup, chosen, url)
    log(f"swebox: {ours['steps']} steps in {ours['wall_s']} s, {ours['errors']} errors")
    theirs = part_episodes_mini(chosen, url, mini_log)
    log(f"mini: {theirs['steps']} steps in {theirs['wall_s']} s, {theirs['errors']} errors")
    steps_ratio = ratio(ours["steps"] / ours["wall_s"], theirs["steps"] / theirs["wall_s"])

    targets = {
        "reset_ratio": {"value": rnd(reset_ratio), "max": TARGET_RESET_RATIO,
                        "pass": reset_ratio <= TARGET_RESET_RATIO},
        "reset_pool_p50_ms": {"value": pool_p50, "max": TARGET_POOL_P50_MS,
                              "pass": pool_p50 <= TARGET_POOL_P50_MS},
        "steps_ratio": {"value": rnd(steps_ratio, 2), "min": TARGET_STEPS_RATIO,
                        "pass": steps_ratio >= TARGET_STEPS_RATIO},
        "swebox_errors": {"value": ours["errors"], "max": 0, "pass": ours["errors"] == 0},
        "swebox_containers_left": {"value": ours["containers_left"], "max": 0,
                                   "pass": ours["containers_left"] == 0},
    }
    return {"reset": reset, "reset_pool_p50_ms": pool_p50,
            "reset_fresh_p50_ms": reset["swebox_fresh"]["p50_ms"], "mini_start_p50_ms": mini_p50,
            "reset_ratio": rnd(reset_ratio),
            "episodes": {"n": episodes, "max_steps": MAX_STEPS, "swebox": ours, "mini": theirs},
            "swebox_steps_per_s": ours["steps_per_s"], "mini_steps_per_s": theirs["steps_per_s"],
            "steps_ratio": rnd(steps_ratio, 2), "targets": targets,
            "pass": all(t["pass"] for t in targets.values())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--n", type=positive_int, default=15, help="timed resets of each kind")
    parser.add_argument("--warmup", type=non_negative_int, default=1, help="untimed resets first")
    parser.add_argument("--episodes", type=positive_int, default=16)
    parser.add_argument("--pool-size", type=positive_int, default=4)
    args = parser.parse_args(argv)
    result: dict[str, Any] = {}

    def run(cleanup: Cleanup) -> dict[str, Any]:
        result.update(body(cleanup, args.n, args.warmup, args.episodes, args.pool_size))
        return result

    code = run_benchmark("agents", run)
    return code or (0 if result.get("pass") else 1)


if __name__ == "__main__":
    sys.exit(main())
