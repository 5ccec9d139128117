"""Many concurrent sandboxes: persistent sessions vs one docker-py `exec_run` per command.

`--sandboxes` sandboxes are started first, in parallel (`--starters` threads; not timed). Then,
with one thread per sandbox released together by a barrier:

* phase A (swebox): each thread opens `sb.shell()` and runs `--commands` commands through it;
* phase B (baseline, how mini-swe-agent / R2E-Gym run commands): on the same containers, each
  thread runs the same commands with docker-py
  `client.containers.get(sb.id).exec_run(["/bin/sh", "-c", command])` (containers looked up
  before the timing; a plain docker-py client whose pool has a connection per thread).

An error is an exception or a non-zero exit. Throughput counts successful commands over the
phase's wall time (phase A's includes opening the shells).

Targets: swebox throughput / baseline throughput >= 3, and no swebox errors.

    python benchmarks/bench_concurrency.py [--sandboxes 64] [--commands 20] [--starters 8]
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

from _common import (
    Cleanup,
    base_parser,
    head,
    log,
    positive_int,
    ratio,
    raw_client,
    rnd,
    run_benchmark,
    start_swebox,
    summary_ms,
)
from docker.models.containers import Container

from swebox.sandbox import Sandbox, Session

COMMAND = "echo $RANDOM; ls / >/dev/null"
TARGET_THROUGHPUT_RATIO = 3.0
CMD_TIMEOUT = 120.0


@dataclass
class WorkerResult:
    latencies: list[float] = field(default_factory=list)
    ok: int = 0
    errors: int = 0
    first_error: str | None = None
    open_s: float | None = None

    def fail(self, message: str, count: int = 1) -> None:
        self.errors += count
        if self.first_error is None:
            self.first_error = message[:300]


def start_all(cleanup: Cleanup, image: str, n: int, starters: int
              ) -> tuple[list[Sandbox], list[str]]:
    ex = ThreadPoolExecutor(starters, thread_name_prefix="bench-start")
    # At cleanup, let in-flight starts finish (they register what they start) before closing.
    cleanup.callback(lambda: ex.shutdown(wait=True, cancel_futures=True))
    boxes: list[Sandbox] = []
    errors: list[str] = []
    futures = [ex.submit(lambda: cleanup.sandbox(start_swebox(image))) for _ in range(n)]
    try:
        for fut in as_completed(futures):
            try:
                boxes.append(fut.result())
            except Exception as e:
                errors.append(f"{type(e).__name__}: {e}"[:300])
            done = len(boxes) + len(errors)
            if done % 16 == 0 or done == n:
                log(f"  started {len(boxes)}/{n} ({len(errors)} failed)")
    finally:
        ex.shutdown(wait=False, cancel_futures=True)
    return boxes, errors


def run_phase(n: int, work: Callable[[int], WorkerResult]) -> tuple[list[WorkerResult], float]:
    """Run `work(i)` for i < n on n threads released together; (results, wall seconds)."""
    barrier = threading.Barrier(n + 1)
    results: list[WorkerResult] = [WorkerResult() for _ in range(n)]

    def target(i: int) -> None:
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            return
        try:
            results[i] = work(i)
        except Exception as e:  # work() catches per command; this is a bug guard
            results[i].fail(f"worker crashed: {type(e).__name__}: {e}")

    threads = [threading.Thread(target=target, args=(i,), name=f"bench-{i}", daemon=True)
               for i in range(n)]
    for t in threads:
        t.start()
    try:
        barrier.wait()
        t0 = time.perf_counter()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
    finally:
        barrier.abort()
    return results, wall


def phase_summary(results: list[WorkerResult], wall: float, planned: int) -> dict[str, Any]:
    ok = sum(r.ok for r in results)
    errors = sum(r.errors for r in results)
    firsts = [r.first_error for r in results if r.first_error]
    out: dict[str, Any] = {
        "commands_planned": planned,
        "commands_ok": ok,
        "errors": errors,
        "first_errors": firsts[:3] or None,
        "wall_s": rnd(wall, 3),
        "commands_per_s": rnd(ratio(ok, wall), 1),
        "command_latency": summary_ms([x for r in results for x in r.latencies]),
    }
    opens = [r.open_s for r in results if r.open_s is not None]
    if opens:
        out["shell_open"] = summary_ms(opens)
    return out


def body(cleanup: Cleanup, n: int, commands: int, starters: int, image: str) -> dict[str, Any]:
    log(f"starting {n} sandboxes from {image} with {starters} threads (not timed)")
    t0 = time.perf_counter()
    boxes, start_errors = start_all(cleanup, image, n, starters)
    start_s = time.perf_counter() - t0
    started = len(boxes)
    base: dict[str, Any] = {
        "image": image,
        "command": COMMAND,
        "sandboxes_requested": n,
        "sandboxes_started": started,
        "all_started": started == n,
        "start_errors": start_errors[:5] or None,
        "start_wall_s": rnd(start_s, 2),
        "commands_per_sandbox": commands,
    }
    if started == 0:
        log("no sandbox started")
        return {**base, "error": "no sandbox could be started", "pass": False}
    if started < n:
        log(f"only {started}/{n} sandboxes started; measuring with those")
    m = started
    planned = m * commands

    # -- phase A: persistent sessions ---------------------------------------------------------
    sessions: list[Session | None] = [None] * m

    def swebox_worker(i: int) -> WorkerResult:
        res = WorkerResult()
        t_open = time.perf_counter()
        try:
            session = boxes[i].shell()
        except Exception as e:
            res.fail(f"shell(): {type(e).__name__}: {e}", commands)
            return res
        res.open_s = time.perf_counter() - t_open
        sessions[i] = session
        for k in range(commands):
            t1 = time.perf_counter()
            try:
                out = session.run(COMMAND, timeout=CMD_TIMEOUT)
            except Exception as e:
                res.fail(f"run: {type(e).__name__}: {e}")
                if session.closed:
                    res.fail("session closed", commands - k - 1)
                    break
                continue
            res.latencies.append(time.perf_counter() - t1)
            if out.ok:
                res.ok += 1
            else:
                res.fail(f"exit {out.exit_code}: {out.output[:200]}")
        return res

    log(f"phase A (swebox sessions): {m} threads x {commands} commands")
    a_results, a_wall = run_phase(m, swebox_worker)
    for s in sessions:
        if s is not None:
            s.close()
    phase_a = phase_summary(a_results, a_wall, planned)
    log(f"  {phase_a['commands_per_s']} commands/s, {phase_a['errors']} errors, "
        f"{a_wall:.2f} s")

    # -- phase B: docker-py exec_run per command ------------------------------------------------
    client = raw_client(max_pool_size=max(10, m))
    cleanup.callback(client.close)
    containers: list[Container] = [client.containers.get(sb.id) for sb in boxes]
    argv = ["/bin/sh", "-c", COMMAND]

    def exec_worker(i: int) -> WorkerResult:
        res = WorkerResult()
        container = containers[i]
        for _ in range(commands):
            t1 = time.perf_counter()
            try:
                out = container.exec_run(argv)
            except Exception as e:
                res.fail(f"exec_run: {type(e).__name__}: {e}")
                continue
            res.latencies.append(time.perf_counter() - t1)
            if out.exit_code == 0:
                res.ok += 1
            else:
                res.fail(f"exit {out.exit_code}: {head(out.output)}")
        return res

    log(f"phase B (docker-py exec_run): {m} threads x {commands} commands")
    b_results, b_wall = run_phase(m, exec_worker)
    phase_b = phase_summary(b_results, b_wall, planned)
    log(f"  {phase_b['commands_per_s']} commands/s, {phase_b['errors']} errors, "
        f"{b_wall:.2f} s")

    tput_ratio = ratio(ratio(phase_a["commands_ok"], a_wall), ratio(phase_b["commands_ok"],
                                                                     b_wall))
    ok_ratio = tput_ratio >= TARGET_THROUGHPUT_RATIO
    ok_errors = phase_a["errors"] == 0
    return {
        **base,
        "swebox": phase_a,
        "baseline_exec_run": phase_b,
        "swebox_commands_per_s": phase_a["commands_per_s"],
        "baseline_commands_per_s": phase_b["commands_per_s"],
        "swebox_wall_s": phase_a["wall_s"],
        "baseline_wall_s": phase_b["wall_s"],
        "swebox_errors": phase_a["errors"],
        "baseline_errors": phase_b["errors"],
        "throughput_ratio": rnd(tput_ratio, 3),
        "targets": {
            "throughput_ratio": {"value": rnd(tput_ratio, 3), "min": TARGET_THROUGHPUT_RATIO,
                                 "pass": ok_ratio},
            "swebox_errors": {"value": phase_a["errors"], "max": 0, "pass": ok_errors},
            "all_sandboxes_started": {"value": started, "min": n, "pass": started == n},
        },
        "pass": ok_ratio and ok_errors and started == n,
    }


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__)
    parser.add_argument("--sandboxes", type=positive_int, default=64,
                        help="concurrent sandboxes (one thread each)")
    parser.add_argument("--commands", type=positive_int, default=20,
                        help="commands per sandbox in each phase")
    parser.add_argument("--starters", type=positive_int, default=8,
                        help="threads starting the sandboxes")
    args = parser.parse_args(argv)
    return run_benchmark("concurrency", lambda c: body(c, args.sandboxes, args.commands,
                                                       args.starters, args.image))


if __name__ == "__main__":
    sys.exit(main())
