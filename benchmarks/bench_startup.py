"""Start to first command: swebox vs raw docker-py, and warm-pool acquire latency.

Ways to get from nothing to the first finished command, alternated round-robin (the order
rotates every round) so that all see the same background load:

* swebox_shell: `start_sandbox(...)` then `sb.shell().run("true")` (the main figure);
* swebox_exec:  `start_sandbox(...)` then `sb.exec("true")`;
* raw:          `client.containers.run(image, "sleep infinity", detach=True,
                network_mode="none", auto_remove=True)` then `container.exec_run("true")`;
* raw_network_disabled (informational): the same plus `network_disabled=True`, as swebox
  creates its containers (the engine then skips setting up a network namespace).

Closing/removing is done after each measurement, outside the timed region. Then a
`SandboxPool(size=4)` is filled, and each of `--acquires` acquires is timed once the pool is
full again (so each finds a ready sandbox); the acquired sandbox is closed outside the timing.

Targets: swebox_shell median / raw median <= 1.1; pool acquire p50 <= 10 ms.

    python benchmarks/bench_startup.py [--n 15] [--acquires 30] [--pool-size 4] [--image IMG]
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

import docker
from _common import (
    BENCH_LABELS,
    LEASE,
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

from swebox.sandbox import make_config
from swebox.sandbox.pool import SandboxPool

TARGET_RATIO = 1.1
TARGET_ACQUIRE_P50_MS = 10.0
SETTLE_S = 0.1  # pause after each removal so the next start does not overlap it


class CommandFailed(RuntimeError):
    pass


def swebox_shell(cleanup: Cleanup, image: str) -> float:
    sb = None
    t0 = time.perf_counter()
    try:
        sb = start_swebox(image)
        session = sb.shell()
        res = session.run("true")
        dt = time.perf_counter() - t0
    finally:
        if sb is not None:
            cleanup.sandbox(sb)
    if not res.ok:
        raise CommandFailed(f"swebox shell: exit {res.exit_code}: {res.output[:200]}")
    session.close()
    cleanup.close_sandbox(sb)
    return dt


def swebox_exec(cleanup: Cleanup, image: str) -> float:
    sb = None
    t0 = time.perf_counter()
    try:
        sb = start_swebox(image)
        res = sb.exec("true")
        dt = time.perf_counter() - t0
    finally:
        if sb is not None:
            cleanup.sandbox(sb)
    if not res.ok:
        raise CommandFailed(f"swebox exec: exit {res.exit_code}: {res.output[:200]}")
    cleanup.close_sandbox(sb)
    return dt


def raw(cleanup: Cleanup, client: docker.DockerClient, image: str,
        network_disabled: bool = False) -> float:
    container = None
    extra: dict[str, Any] = {"network_disabled": True} if network_disabled else {}
    t0 = time.perf_counter()
    try:
        container = client.containers.run(image, "sleep infinity", detach=True,
                                           network_mode="none", auto_remove=True,
                                           labels=BENCH_LABELS, **extra)
        res = container.exec_run("true")
        dt = time.perf_counter() - t0
    finally:
        if container is not None:
            cleanup.container(str(container.id))
    if res.exit_code != 0:
        raise CommandFailed(f"raw exec_run: exit {res.exit_code}: {head(res.output)}")
    cleanup.remove_container(client, str(container.id))
    return dt


def body(cleanup: Cleanup, n: int, warmup: int, acquires: int, pool_size: int, image: str
         ) -> dict[str, Any]:
    client = raw_client()
    cleanup.callback(client.close)
    kinds: dict[str, Callable[[], float]] = {
        "swebox_shell": lambda: swebox_shell(cleanup, image),
        "swebox_exec": lambda: swebox_exec(cleanup, image),
        "raw": lambda: raw(cleanup, client, image),
        # Informational: swebox creates its containers with NetworkDisabled, which skips the
        # engine's network-namespace set-up; this baseline does the same.
        "raw_network_disabled": lambda: raw(cleanup, client, image, network_disabled=True),
    }
    names = list(kinds)
    samples: dict[str, list[float]] = {k: [] for k in names}
    log(f"start to first command: {warmup} warm-up + {n} rounds of {', '.join(names)}")
    for i in range(warmup + n):
        order = names[i % len(names):] + names[:i % len(names)]
        for kind in order:
            dt = kinds[kind]()
            if i >= warmup:
                samples[kind].append(dt)
            time.sleep(SETTLE_S)
        if i >= warmup and (i - warmup + 1) % 5 == 0:
            log(f"  {i - warmup + 1}/{n} rounds")

    stats = {k: summary_ms(v) for k, v in samples.items()}
    raw_median = stats["raw"]["p50_ms"]
    shell_median = stats["swebox_shell"]["p50_ms"]
    exec_median = stats["swebox_exec"]["p50_ms"]
    start_ratio = ratio(shell_median, raw_median)

    log(f"pool: size {pool_size}, {acquires} timed acquires (each with the pool full)")
    config = make_config(image=image, workdir="/", pull="never", lease=LEASE)
    pool = SandboxPool(config, size=pool_size)
    cleanup.callback(pool.close)
    t0 = time.perf_counter()
    pool.wait_ready(timeout=300)
    fill_s = time.perf_counter() - t0
    acquire_s: list[float] = []
    first_cmd_s: list[float] = []
    for i in range(acquires):
        pool.wait_ready(timeout=300)
        t0 = time.perf_counter()
        sb = pool.acquire(timeout=300)
        t1 = time.perf_counter()
        cleanup.sandbox(sb)
        # Informational: acquire plus a fresh session's first command (not a target).
        if i % 2 == 0:
            t2 = time.perf_counter()
            session = sb.shell()
            res = session.run("true")
            t3 = time.perf_counter()
            if not res.ok:
                raise CommandFailed(f"pooled sandbox: exit {res.exit_code}: {res.output[:200]}")
            first_cmd_s.append(t1 - t0 + t3 - t2)
            session.close()
        acquire_s.append(t1 - t0)
        cleanup.close_sandbox(sb)
    acq = summary_ms(acquire_s)
    acquire_p50 = acq["p50_ms"]
    acquire_ratio = ratio(acquire_p50, raw_median)

    ok_ratio = start_ratio <= TARGET_RATIO
    ok_acquire = acquire_p50 <= TARGET_ACQUIRE_P50_MS
    return {
        "image": image,
        "rounds": n,
        "swebox_shell": stats["swebox_shell"],
        "swebox_exec": stats["swebox_exec"],
        "raw": stats["raw"],
        "raw_network_disabled": stats["raw_network_disabled"],
        "swebox_median_ms": shell_median,
        "swebox_exec_median_ms": exec_median,
        "raw_median_ms": raw_median,
        "ratio": rnd(start_ratio),
        "exec_ratio": rnd(ratio(exec_median, raw_median)),
        "ratio_vs_raw_network_disabled": rnd(
            ratio(shell_median, stats["raw_network_disabled"]["p50_ms"])),
        "pool": {
            "size": pool_size,
            "fill_s": rnd(fill_s, 3),
            "acquire": acq,
            "acquire_then_first_shell_cmd": summary_ms(first_cmd_s),
        },
        "acquire_p50_ms": acquire_p50,
        "acquire_ratio": rnd(acquire_ratio, 6),
        "targets": {
            "ratio": {"value": rnd(start_ratio), "max": TARGET_RATIO, "pass": ok_ratio},
            "acquire_p50_ms": {"value": acquire_p50, "max": TARGET_ACQUIRE_P50_MS,
                               "pass": ok_acquire},
        },
        "pass": ok_ratio and ok_acquire,
    }


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__)
    parser.add_argument("--n", type=positive_int, default=15, help="timed rounds of each way")
    parser.add_argument("--warmup", type=non_negative_int, default=1,
                        help="untimed rounds first")
    parser.add_argument("--acquires", type=positive_int, default=30, help="timed pool acquires")
    parser.add_argument("--pool-size", type=positive_int, default=4)
    args = parser.parse_args(argv)
    return run_benchmark("startup", lambda c: body(c, args.n, args.warmup, args.acquires,
                                                   args.pool_size, args.image))


if __name__ == "__main__":
    sys.exit(main())
