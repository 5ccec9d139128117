"""Grading overhead: everything but the test command, per instance, on a cached image.

swebox: `grade(task, gold_patch)` on a bundled sample task (fresh sandbox, patch, hidden tests
reset and applied, tests with JUnit XML, verdict, sandbox removed). Baseline, measured in the
same run on the same image: the SWE-bench harness' way with docker-py (run a container, copy
the patches in, `git apply` both, run the tests, remove the container). For both, overhead =
total time - the test command's own time.

Target: swebox overhead p50 at most 1 s; reported also as a ratio to the baseline's.

    python benchmarks/bench_grade.py [--n 10] [--task ini_loader]
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tarfile
import time

import docker

from swebox.grading.grader import grade
from swebox.samples import load_tasks
from swebox.samples.builder import build


def _tar(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def baseline(client: docker.DockerClient, image: str, gold: str, tests: str,
             command: str) -> tuple[float, float, int]:
    start = time.perf_counter()
    c = client.containers.run(image, "sleep infinity", detach=True, network_mode="none")
    try:
        c.put_archive("/tmp", _tar({"fix.patch": gold, "test.patch": tests}))
        for patch in ("/tmp/fix.patch", "/tmp/test.patch"):
            rc, out = c.exec_run(["git", "apply", "--verbose", patch], workdir="/testbed")
            assert rc == 0, out
        t = time.perf_counter()
        rc, _ = c.exec_run(["/bin/sh", "-c", command], workdir="/testbed")
        test_time = time.perf_counter() - t
    finally:
        c.remove(force=True)
    return time.perf_counter() - start, test_time, rc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10)
    parser.add_argument("--task", default="ini_loader")
    args = parser.parse_args()
    sample = load_tasks([args.task])[0]
    build(sample)
    task = sample.to_task()
    client = docker.from_env()
    ours: list[float] = []
    theirs: list[float] = []
    errors = 0
    for i in range(args.n + 1):  # the first round warms caches and is not counted
        verdict, _ = grade(task, task.gold_patch)
        errors += not verdict.resolved
        total, test_time, rc = baseline(client, task.run_image or "", task.gold_patch,
                                        task.test_patch, task.test_command or "")
        errors += rc != 0
        if i:
            ours.append(verdict.duration - verdict.test_duration)
            theirs.append(total - test_time)
        print(f"round {i}: swebox overhead {ours[-1] if i else 0:.3f}s, "
              f"baseline {theirs[-1] if i else 0:.3f}s", file=sys.stderr)
    p50, base = statistics.median(ours), statistics.median(theirs)
    figures = {"benchmark": "grade", "task": args.task, "rounds": args.n,
               "swebox_overhead_p50_s": round(p50, 3),
               "swebox_overhead_max_s": round(max(ours), 3),
               "baseline_overhead_p50_s": round(base, 3),
               "overhead_ratio": round(p50 / base, 3), "errors": errors,
               "target_overhead_s": 1.0, "pass": p50 <= 1.0 and errors == 0}
    print(json.dumps(figures))
    return 0 if figures["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
