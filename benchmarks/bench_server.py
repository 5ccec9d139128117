"""The runtime server: remote exec overhead, and many clients at once (loopback only).

A `swebox serve` process (docker backend, one API key) is started on a free loopback port.

Part 1, overhead (`--n` round trips each, after 20 warm-up runs): the same command (`true`)
through a persistent shell session, locally (`sandbox.shell().run`, docker backend) and through
the server (`start_sandbox(backend="remote").shell().run`), both on the same image. The figure
is the difference of the medians; also the stateless exec for the record.

Part 2, load: `--clients` threads, each with its own HTTP connection, released together, each
sending exactly `--requests` requests of a start/exec/close mix: without a sandbox it asks for
one (a 429 is an answer: it waits as Retry-After says, with jitter); with one it runs
`--execs` commands and closes it. The server holds at most `--max-sandboxes`. Counted by
status; a 5xx, a connection error or a client timeout (60 s) is a failure, and every 429 must
carry Retry-After. The baseline is the same mix from a single client in the same run
(requests/s), so the ratio is how well the server scales across clients.

Targets: remote session p50 - local session p50 <= 2 ms; 0 5xx, 0 timeouts, every 429 with
Retry-After, 0 containers left after the server stops.

    python benchmarks/bench_server.py [--n 500] [--clients 200] [--requests 50]
"""

from __future__ import annotations

import random
import sys
import tempfile
import threading
import time
from collections import Counter
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


def session_p50(sb: Any, n: int) -> dict[str, Any]:
    with sb.shell() as sh:
        for _ in range(20):
            sh.run("true")
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            res = sh.run("true")
            times.append(time.perf_counter() - t0)
            assert res.exit_code == 0
    execs = []
    for _ in range(min(n, 100)):
        t0 = time.perf_counter()
        sb.exec(["true"])
        execs.append(time.perf_counter() - t0)
    return {"session": summary_ms(times), "exec": summary_ms(execs)}


def client(url: str, key: str, requests: int, execs: int, image: str, gate: threading.Event,
           counts: Counter[str], lat: list[float], lock: threading.Lock) -> None:
    mine: Counter[str] = Counter()
    times: list[float] = []
    sid: str | None = None
    left = 0
    with httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=60.0) as http:
        gate.wait()
        for i in range(requests + 1):
            if i == requests and sid is None:
                break
            t0 = time.perf_counter()
            try:
                if sid is None:
                    r = http.post("/v1/sandboxes", json={"image": image, "pull": "never",
                                                         "workdir": "/", "lease": 600})
                    if r.status_code == 201:
                        sid, left = r.json()["id"], execs
                elif left and i < requests:
                    r = http.post(f"/v1/sandboxes/{sid}/exec", json={"cmd": "echo hi"})
                    left -= 1
                else:  # done with it, or the last request: close
                    r = http.delete(f"/v1/sandboxes/{sid}")
                    sid = None
            except httpx.TimeoutException:
                mine["timeout"] += 1
                continue
            except httpx.HTTPError as e:
                mine[f"error {type(e).__name__}"] += 1
                continue
            times.append(time.perf_counter() - t0)
            mine[str(r.status_code)] += 1
            if r.status_code == 429:
                if "retry-after" not in r.headers:
                    mine["429 without Retry-After"] += 1
                wait = float(r.headers.get("retry-after", "1"))
                time.sleep(wait * random.uniform(0.5, 1.0))
    with lock:
        counts.update(mine)
        lat.extend(times)


def load(url: str, key: str, n_clients: int, requests: int, execs: int,
         image: str) -> dict[str, Any]:
    counts: Counter[str] = Counter()
    lat: list[float] = []
    lock, gate = threading.Lock(), threading.Event()
    threads = [threading.Thread(target=client, args=(url, key, requests, execs, image, gate,
                                                     counts, lat, lock))
               for _ in range(n_clients)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    t0 = time.perf_counter()
    gate.set()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    total = sum(v for k, v in counts.items() if k.isdigit())
    return {"clients": n_clients, "requests": total, "wall_s": rnd(wall, 2),
            "requests_per_s": rnd(total / wall, 1), "status": dict(sorted(counts.items())),
            "latency": summary_ms(lat)}


def body(cleanup: Cleanup) -> dict[str, Any]:
    p = base_parser(__doc__)
    p.add_argument("--n", type=positive_int, default=500)
    p.add_argument("--clients", type=positive_int, default=200)
    p.add_argument("--requests", type=positive_int, default=50)
    p.add_argument("--execs", type=positive_int, default=8)
    p.add_argument("--max-sandboxes", type=positive_int, default=24)
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="swebox-bench-server-"))
    srv = Served(str(tmp), "--max-sandboxes", str(args.max_sandboxes), "--max-per-key",
                 str(args.max_sandboxes))
    url, key = srv.url, srv.key
    try:
        log("part 1: session round trips, local then remote")
        local_sb = cleanup.sandbox(start_sandbox(args.image, workdir="/", pull="never",
                                                 lease=600))
        local = session_p50(local_sb, args.n)
        cleanup.close_sandbox(local_sb)
        remote_sb = cleanup.sandbox(start_sandbox(args.image, backend="remote", url=url,
                                                  api_key=key, workdir="/", pull="never",
                                                  lease=600))
        remote = session_p50(remote_sb, args.n)
        cleanup.close_sandbox(remote_sb)
        extra = remote["session"]["p50_ms"] - local["session"]["p50_ms"]
        log(f"session p50: local {local['session']['p50_ms']} ms, remote "
            f"{remote['session']['p50_ms']} ms (+{extra:.3f} ms)")
        log(f"part 2: baseline, one client x {args.requests} requests")
        single = load(url, key, 1, args.requests, args.execs, args.image)
        log(f"part 2: {args.clients} clients x {args.requests} requests")
        many = load(url, key, args.clients, args.requests, args.execs, args.image)
        log(f"{many['requests']} requests in {many['wall_s']} s: {many['status']}")
    finally:
        left = srv.stop()
    status = many["status"]
    bad = {k: v for k, v in status.items() if not k.isdigit() or k.startswith("5")}
    ok = (extra <= 2.0 and not bad and left == 0 and
          status.get("429 without Retry-After", 0) == 0)
    return {
        "local": local, "remote": remote, "session_p50_extra_ms": rnd(extra, 3),
        "session_p50_ratio": rnd(ratio(remote["session"]["p50_ms"],
                                       local["session"]["p50_ms"]), 2),
        "single_client": single, "many_clients": many,
        "throughput_ratio_vs_single_client": rnd(ratio(many["requests_per_s"] or 0,
                                                       single["requests_per_s"] or 0), 2),
        "failures": bad, "containers_left": left,
        "targets": {"session_p50_extra_ms_max": 2.0, "5xx": 0, "timeouts": 0},
        "pass": ok,
    }


if __name__ == "__main__":
    sys.exit(run_benchmark("server", body))
