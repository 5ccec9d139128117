"""OpenHands on plain images: `/start` to `pod_status: ready` through a swebox server.

A `swebox serve` process (docker backend) on a free loopback port. Each run does what the
OpenHands clients do, with plain HTTP so no OpenHands install is needed:

* V0 (`RemoteRuntime`, openhands-ai 1.6.0): `POST /start` with the action server's start line,
  then `GET /runtime/{id}` every 50 ms until `pod_status` is `ready` (the client polls every
  2 s), then `GET {url}/alive` must be 200; then `POST /stop`.
* V1 (`APIRemoteWorkspace`): `POST /start` with `/usr/local/bin/openhands-agent-server --port
  60000`, then `GET /sessions/{session_id}` until `ready`, then `GET {url}/health` with no key
  must be 200; then `POST /stop`. Three servers, each with `--n-cold` runs after one uncounted
  start: exec (`v1_zygote=0`, no warm spares: the agent server is exec'd and imports itself,
  8-9 s), cold (no warm spares; the agent server is forked from the zygote the server loaded
  at its own start, zygote.py; the uncounted first start waits for it and is reported apart)
  and warm (`--n` runs on a server keeping one spare of the image, each start waiting until the
  spare is up; a start that finds none is stopped and retried, uncounted). Needs the
  agent-server bundle (scripts/agent_server_bundle.sh); skipped with a note when it is
  missing.

The baseline in the same run is a plain `start_sandbox` of the same image (docker backend), so
the ratio is what the OpenHands layer costs on top of a sandbox start; V1 cold is also given
as a ratio to V1 launched with an exec in the same run. Both are on the plain
image `--image`: no runtime image is built (building one takes OpenHands 2-5 min per base image;
SkyRL's runtime server takes about 20 s to answer ready).

Targets: V0 p50 <= 1 s; V1 p50 <= 3 s (`pass` holds V1 to it cold; warm is reported apart).

    python benchmarks/bench_openhands.py [--n 10]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    Cleanup,
    Served,
    base_parser,
    log,
    positive_int,
    ratio,
    rnd,
    run_benchmark,
    summary_ms,
)

from swebox.sandbox import start_sandbox

V0_COMMAND = ["/openhands/micromamba/bin/micromamba", "run", "-n", "openhands", "poetry", "run",
              "python", "-u", "-m", "openhands.runtime.action_execution_server", "60000",
              "--working-dir", "/workspace", "--plugins", "agent_skills", "jupyter",
              "--username", "root", "--user-id", "0"]
V1_COMMAND = "/usr/local/bin/openhands-agent-server --port 60000"


def one(http: httpx.Client, image: str, v1: bool, i: int, warm_only: bool = False
        ) -> float | None:
    sid = f"bench-{'v1' if v1 else 'v0'}-{os.getpid()}-{i}"
    body: dict[str, Any] = {"image": image, "command": V1_COMMAND if v1 else V0_COMMAND,
                            "session_id": sid,
            "working_dir": "/" if v1 else "/openhands/code/", "environment": {}}
    t0 = time.perf_counter()
    r = http.post("/start", json=body, timeout=180)
    r.raise_for_status()
    info = r.json()
    rid, url = info["runtime_id"], info["url"]
    if warm_only and info.get("pod_status") != "ready":  # no warm spare up yet
        http.post("/stop", json={"runtime_id": rid})
        return None
    try:
        while True:
            poll = http.get(f"/sessions/{sid}" if v1 else f"/runtime/{rid}")
            poll.raise_for_status()
            status = str(poll.json().get("pod_status", "")).lower()
            if status == "ready":
                break
            if status in ("failed", "unknown", "crashloopbackoff"):
                raise RuntimeError(f"runtime {rid} failed: {poll.json()}")
            if time.perf_counter() - t0 > 120:
                raise RuntimeError(f"runtime {rid} not ready after 120 s: {poll.json()}")
            time.sleep(0.05)
        check = httpx.get(f"{url}/health" if v1 else f"{url}/alive", timeout=10,
                          headers={} if v1 else {"X-Session-API-Key": info["session_api_key"]})
        check.raise_for_status()
        return time.perf_counter() - t0
    finally:
        http.post("/stop", json={"runtime_id": rid})


def body(cleanup: Cleanup) -> dict[str, Any]:
    p = base_parser(__doc__)
    p.add_argument("--n", type=positive_int, default=10)
    p.add_argument("--n-cold", type=positive_int, default=3)
    args = p.parse_args()
    log(f"baseline: {args.n} plain sandbox starts")
    base = []
    for _ in range(args.n):
        t0 = time.perf_counter()
        sb = cleanup.sandbox(start_sandbox(args.image, workdir="/", pull="never", lease=600))
        base.append(time.perf_counter() - t0)
        cleanup.close_sandbox(sb)
    tmp = Path(tempfile.mkdtemp(prefix="swebox-bench-oh-"))
    out: dict[str, Any] = {"baseline_sandbox_start": summary_ms(base)}
    bundle = Path(os.environ.get("SWEBOX_AGENT_SERVER", "/opt/swebox/agent-server"))
    left = 0
    # V0 and V1 launched with an exec (no zygote, no warm spares), then V1 cold (forked from
    # the zygote, no warm spares), then V1 warm (a spare of the image is up).
    for phase, env in (("exec", {"SWEBOX_OPENHANDS_V1_WARM": "0",
                                 "SWEBOX_OPENHANDS_V1_ZYGOTE": "0"}),
                       ("cold", {"SWEBOX_OPENHANDS_V1_WARM": "0"}),
                       ("warm", {"SWEBOX_OPENHANDS_V1_WARM": "1"})):
        srv = Served(str(tmp), env=env)
        try:
            with httpx.Client(base_url=srv.url, headers={"X-API-Key": srv.key},
                              timeout=180) as http:
                if phase == "exec":
                    log(f"V0: {args.n} runs")
                    v0 = [one(http, args.image, False, i) or 0.0 for i in range(args.n)]
                    out["v0_start_to_ready"] = summary_ms(v0)
                if not bundle.is_dir():
                    out["v1_skipped"] = f"no agent-server bundle at {bundle}"
                    continue
                if phase in ("exec", "cold"):
                    log(f"V1 {phase}: {args.n_cold} runs")
                    first = one(http, args.image, True, -1)  # warms the page cache; when
                    # forked, it also waits for the zygote the server started with itself
                    if phase == "cold":
                        out["v1_first_start_after_server_start_ms"] = rnd((first or 0) * 1e3)
                    runs = [one(http, args.image, True, i) or 0.0 for i in range(args.n_cold)]
                    name = "v1_cold_exec_start_to_ready" if phase == "exec" \
                        else "v1_cold_start_to_ready"
                    out[name] = summary_ms(runs)
                else:
                    log(f"V1 warm: {args.n} runs (each waits for the spare to be up)")
                    one(http, args.image, True, -1)  # the image's first start: cold
                    warm: list[float] = []
                    deadline = time.monotonic() + 60 * args.n
                    while len(warm) < args.n and time.monotonic() < deadline:
                        got = one(http, args.image, True, len(warm), warm_only=True)
                        if got is None:
                            time.sleep(1)
                        else:
                            warm.append(got)
                    out["v1_warm_start_to_ready"] = summary_ms(warm)
        finally:
            left += srv.stop()
    b50 = out["baseline_sandbox_start"]["p50_ms"]
    v0_50 = out["v0_start_to_ready"]["p50_ms"]
    cold50 = out.get("v1_cold_start_to_ready", {}).get("p50_ms")
    warm50 = out.get("v1_warm_start_to_ready", {}).get("p50_ms")
    exec50 = out.get("v1_cold_exec_start_to_ready", {}).get("p50_ms")
    out.update({
        "v1_cold_forked_vs_exec": rnd(ratio(cold50, exec50), 3) if cold50 and exec50 else None,
        "v0_ratio_to_sandbox_start": rnd(ratio(v0_50, b50), 2),
        "v1_cold_ratio_to_sandbox_start": rnd(ratio(cold50, b50), 2) if cold50 else None,
        "v1_warm_ratio_to_sandbox_start": rnd(ratio(warm50, b50), 2) if warm50 else None,
        "containers_left": left,
        "targets": {"v0_p50_ms": 1000, "v1_p50_ms": 3000},
        "pass_v0": v0_50 <= 1000,
        "pass_v1_cold": cold50 is not None and cold50 <= 3000,
        "pass_v1_warm": warm50 is not None and warm50 <= 3000,
        "pass": v0_50 <= 1000 and left == 0 and (cold50 is None or cold50 <= 3000),
    })
    return out


if __name__ == "__main__":
    sys.exit(run_benchmark("openhands", body))
