"""Round trip of `true` through a persistent swebox session vs docker-py `exec_run`.

Both run against the same container. After a warm-up, the session runs and the exec_run runs
alternate in blocks (10 blocks of each), so both see the same background load over the run,
while a session run is not timed in the wake of an exec_run's teardown (runc still reaping the
previous exec), which measures the engine's clean-up rather than the round trip.

Targets: session p50 / exec_run p50 <= 1/50, and session p50 <= 1 ms.

    python benchmarks/bench_session.py [--n 500] [--n-exec 100] [--warmup 20] [--image IMG]
"""

from __future__ import annotations

import sys
import time
from typing import Any

from _common import (
    Cleanup,
    base_parser,
    head,
    log,
    non_negative_int,
    positive_int,
    ratio,
    raw_client,
    rnd,
    run_benchmark,
    start_swebox,
    summary_ms,
)

TARGET_RATIO_P50 = 1 / 50
TARGET_SESSION_P50_MS = 1.0


def schedule(n_session: int, n_exec: int, blocks: int = 10) -> list[str]:
    """'s'/'e' operations in alternating blocks: s-block, e-block, ... (`blocks` of each)."""
    ops: list[str] = []
    for b in range(blocks):
        s_here = n_session * (b + 1) // blocks - n_session * b // blocks
        e_here = n_exec * (b + 1) // blocks - n_exec * b // blocks
        ops += ["s"] * s_here + ["e"] * e_here
    return ops


def body(cleanup: Cleanup, n_session: int, n_exec: int, warmup: int, image: str
         ) -> dict[str, Any]:
    log(f"starting a sandbox from {image}")
    sb = cleanup.sandbox(start_swebox(image))
    client = raw_client()
    cleanup.callback(client.close)
    container = client.containers.get(sb.id)
    session = sb.shell()
    cleanup.callback(session.close)

    errors = {"session": 0, "exec_run": 0}
    first_error: dict[str, str] = {}

    def run_session() -> float:
        t0 = time.perf_counter()
        res = session.run("true")
        dt = time.perf_counter() - t0
        if not res.ok:
            errors["session"] += 1
            first_error.setdefault("session", f"exit {res.exit_code}: {res.output[:200]}")
        return dt

    def run_exec() -> float:
        t0 = time.perf_counter()
        res = container.exec_run("true")
        dt = time.perf_counter() - t0
        if res.exit_code != 0:
            errors["exec_run"] += 1
            first_error.setdefault("exec_run", f"exit {res.exit_code}: {head(res.output)}")
        return dt

    log(f"warm-up: {warmup} session runs and {warmup} exec_run runs")
    for _ in range(warmup):
        run_session()
        run_exec()
    errors.update(session=0, exec_run=0)

    log(f"measuring {n_session} session runs and {n_exec} exec_run runs in alternating blocks")
    samples: dict[str, list[float]] = {"s": [], "e": []}
    for op in schedule(n_session, n_exec):
        samples[op].append(run_session() if op == "s" else run_exec())

    sess = summary_ms(samples["s"])
    exe = summary_ms(samples["e"])
    sess_p50, exe_p50 = sess["p50_ms"], exe["p50_ms"]
    ratio_p50 = ratio(sess_p50, exe_p50)
    ok_ratio = ratio_p50 <= TARGET_RATIO_P50
    ok_abs = sess_p50 <= TARGET_SESSION_P50_MS
    ok_errors = errors["session"] == 0
    return {
        "image": image,
        "command": "true",
        "method": "same container; session and exec_run runs in alternating blocks",
        "session": sess,
        "exec_run": exe,
        "errors": errors,
        "first_error": first_error or None,
        "ratio_p50": rnd(ratio_p50, 5),
        "speedup_p50": rnd(ratio(exe_p50, sess_p50), 1),
        "session_ops_per_s": rnd(1000.0 / sess["mean_ms"], 1),
        "exec_run_ops_per_s": rnd(1000.0 / exe["mean_ms"], 1),
        "targets": {
            "ratio_p50": {"value": rnd(ratio_p50, 5), "max": rnd(TARGET_RATIO_P50, 5),
                          "pass": ok_ratio},
            "session_p50_ms": {"value": sess_p50, "max": TARGET_SESSION_P50_MS,
                               "pass": ok_abs},
            "session_errors": {"value": errors["session"], "max": 0, "pass": ok_errors},
        },
        "pass": ok_ratio and ok_abs and ok_errors,
    }


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__)
    parser.add_argument("--n", type=positive_int, default=500, help="timed session runs")
    parser.add_argument("--n-exec", type=positive_int, default=100, help="timed exec_run runs")
    parser.add_argument("--warmup", type=non_negative_int, default=20,
                        help="untimed runs of each before measuring")
    args = parser.parse_args(argv)
    return run_benchmark("session", lambda c: body(c, args.n, args.n_exec, args.warmup,
                                                   args.image))


if __name__ == "__main__":
    sys.exit(main())
