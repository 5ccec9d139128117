"""Grading a predictions file: `swebox eval` against the official SWE-bench harness (5.0.2).

Both tools grade the same rows, on the same local images, with the same predictions and the
same number of workers, each as one whole command timed by the wall clock. The rows are the
bundled sample tasks in SWE-bench 5's shape: each carries its own `eval_script` (SWE-bench's
classic eval.sh: reset the test files, apply the test patch from a heredoc, `python3 -m pytest
-rA` over the test patch's files between the `>>>>> Start/End Test Output` markers, reset
again), `log_parser` parse_log_pytest and `eval_type` pass_and_fail; FAIL_TO_PASS and
PASS_TO_PASS are cut down to the tests in the files that script runs.

Each prediction gets its own row (instance id `<sample id>_<kind><round>`), so that one
predictions file and one command per tool grade them all (SWE-bench keys predictions by
instance id). Kinds: `gold` (the gold patch), `empty` (an empty patch: both tools report it
unresolved without running it, as SWE-bench does), `noop` (a patch that applies and fixes
nothing: the tests run and fail). Each sample runs on two images: its own (no conda), and
the same repository in SWE-bench's real layout (`swebox.samples.layouts`: /testbed and the
conda env `testbed`, which the row's script activates as SWE-bench's scripts do). The row's
`image` field names it, and both tools run that image. Nothing is pulled: every image exists
locally before either tool runs.

The verdicts (resolved or not, per instance) must be identical, else the script exits 1.
Target: swebox wall time / harness wall time at most 1/3.

    python benchmarks/bench_eval.py [--rounds 1] [--kinds gold,empty] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from _common import Cleanup, log, positive_int, ratio, raw_client, rnd, run_benchmark

from swebox.grading.grader import patch_paths
from swebox.samples import SampleTask, load_tasks
from swebox.samples.builder import build
from swebox.samples.layouts import build_layout
from swebox.sandbox import lifecycle

HARNESS_PY = "/opt/swebox/venvs/swebench-5.0.2/bin/python"
TARGET_RATIO = 1 / 3
MODEL = "bench"
DELIM = "EOF_114329324912"  # SWE-bench's heredoc delimiter
PYTEST = "python3 -m pytest -rA -p no:cacheprovider"  # the samples' images have no conda
NOOP_PATCH = """diff --git a/NOTES.md b/NOTES.md
new file mode 100644
--- /dev/null
+++ b/NOTES.md
@@ -0,0 +1 @@
+Nothing fixed here.
"""


def eval_script(sample: SampleTask, files: list[str], new: set[str], conda: bool) -> str:
    """SWE-bench's eval.sh for a sample: files the test patch adds are removed, not checked out
    (`git checkout <base> <new file>` fails on the whole pathspec)."""
    old = " ".join(shlex.quote(f) for f in files if f not in new)
    reset = [f"git checkout {sample.base_commit} {old}"] if old else []
    reset += [f"rm -f {shlex.quote(f)}" for f in files if f in new]
    activate = ["source /opt/miniconda3/bin/activate", "conda activate testbed"] if conda else []
    return "\n".join([
        "#!/bin/bash", "set -uxo pipefail", *activate, "cd /testbed", *reset,
        f"git apply -v - <<'{DELIM}'", sample.test_patch.rstrip("\n"), DELIM,
        ": '>>>>> Start Test Output'", " ".join([PYTEST, *map(shlex.quote, files)]),
        ": '>>>>> End Test Output'", *reset]) + "\n"


def make_row(sample: SampleTask, iid: str, image: str, conda: bool) -> dict[str, Any]:
    files = [f for f in patch_paths(sample.test_patch) if f != "/dev/null"]
    new = {f for f in files if f"--- /dev/null\n+++ b/{f}\n" in sample.test_patch}

    def keep(tests: list[str]) -> str:
        return json.dumps([t for t in tests if t.split("::", 1)[0] in files])

    return {"instance_id": iid, "repo": sample.repo, "base_commit": sample.base_commit,
            "environment_setup_commit": sample.base_commit,
            "version": str(sample.meta.get("version") or "0"),
            "created_at": sample.meta.get("created_at") or "",
            "problem_statement": sample.problem_statement, "hints_text": "",
            "patch": sample.gold_patch, "test_patch": sample.test_patch,
            "FAIL_TO_PASS": keep(sample.fail_to_pass), "PASS_TO_PASS": keep(sample.pass_to_pass),
            "image": image, "eval_script": eval_script(sample, files, new, conda),
            "log_parser": "parse_log_pytest", "eval_type": "pass_and_fail"}


def prepare(work: Path, samples: list[SampleTask], kinds: list[str], rounds: int
            ) -> tuple[Path, Path, list[str]]:
    """Rows and predictions files: every sample on its own image and in SWE-bench's layout."""
    rows, preds = [], []
    for sample in samples:
        images = {"sample": (sample.image, False),
                  "swebench": (build_layout(sample, "swebench"), True)}
        for layout, (image, conda) in images.items():
            for r in range(1, rounds + 1):
                for kind in kinds:
                    iid = f"{sample.instance_id}_{layout}_{kind}{r}"
                    rows.append(make_row(sample, iid, image, conda))
                    patch = {"gold": sample.gold_patch, "empty": "", "noop": NOOP_PATCH}[kind]
                    preds.append({"instance_id": iid, "model_name_or_path": MODEL,
                                  "model_patch": patch})
    rows_file, preds_file = work / "rows.jsonl", work / "preds.jsonl"
    rows_file.write_text("".join(json.dumps(r) + "\n" for r in rows))
    preds_file.write_text("".join(json.dumps(p) + "\n" for p in preds))
    return rows_file, preds_file, [r["instance_id"] for r in rows]


def timed(cmd: list[str], cwd: Path, logfile: Path, env: dict[str, str] | None = None,
          pids: list[int] | None = None) -> float:
    """Wall time of `cmd`, its output to `logfile`; a non-zero exit raises."""
    start = time.perf_counter()
    with open(logfile, "w") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})})
        if pids is not None:
            pids.append(proc.pid)
        rc = proc.wait()
    elapsed = time.perf_counter() - start
    if rc != 0:
        tail = logfile.read_text(errors="replace")[-1500:]
        raise RuntimeError(f"{cmd[0]} ... exited {rc}; log {logfile}:\n{tail}")
    return elapsed


def run_swebox(work: Path, rows: Path, preds: Path, run_id: str, workers: int,
               timeout: int, pids: list[int]) -> tuple[float, dict[str, bool], list[str]]:
    out = work / "swebox-out"
    cmd = [sys.executable, "-m", "swebox.cli", "eval", "--tasks", str(rows), "--predictions",
           str(preds), "-r", run_id, "-o", str(out), "-w", str(workers),
           "--timeout", str(timeout)]
    wall = timed(cmd, work, work / f"{run_id}.swebox.log", pids=pids)
    verdicts: dict[str, bool] = {}
    problems: list[str] = []
    for line in (out / run_id / "results.jsonl").read_text().splitlines():
        v = json.loads(line)
        verdicts[v["instance_id"]] = bool(v["resolved"])
        if v.get("infra_failure"):
            problems.append(f"{v['instance_id']}: {v['infra_failure']}")
    return wall, verdicts, problems


def stop_seconds(cwd: Path, run_id: str) -> float:
    """Seconds the harness' instances spent in `docker stop --time=15`, from their logs: the
    containers' PID 1 (`tail -f /dev/null`) ignores SIGTERM, so each stop waits the 15 s out."""
    total = 0.0
    for f in (cwd / "logs" / "run_evaluation" / run_id).glob("*/*/run_instance.log"):
        start = None
        for line in f.read_text(errors="replace").splitlines():
            if "Attempting to stop container" in line or "stopped successfully" in line:
                at = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
                if "stopped successfully" in line and start is not None:
                    total += at - start
                start = at
    return total


def run_harness(work: Path, rows: Path, preds: Path, run_id: str, workers: int,
                timeout: int) -> tuple[float, dict[str, bool], list[str], float]:
    cwd = work / f"harness-{run_id}"  # its logs/ go under the working directory
    cwd.mkdir()
    cmd = [HARNESS_PY, "-m", "swebench.harness.run_evaluation", "--dataset_name", str(rows),
           "--predictions_path", str(preds), "--max_workers", str(workers), "--run_id", run_id,
           "--timeout", str(timeout), "--report_dir", str(cwd)]
    offline = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TQDM_DISABLE": "1"}
    wall = timed(cmd, cwd, work / f"{run_id}.harness.log", env=offline)
    report = json.loads((cwd / f"{MODEL}.{run_id}.json").read_text())
    resolved = set(report["resolved_ids"])
    verdicts = {iid: iid in resolved for iid in report["submitted_ids"]}
    problems = [f"{iid}: error (see its run_instance.log)" for iid in report["error_ids"]]
    return wall, verdicts, problems, stop_seconds(cwd, run_id)


def _sweep(run_ids: list[str], pids: list[int]) -> None:
    """Remove containers either tool may have left behind if interrupted."""
    client = raw_client()
    try:
        found = [c["Id"] for rid in run_ids
                 for c in client.api.containers(all=True, filters={"name": rid})]
        found += [c["Id"] for pid in pids for c in client.api.containers(
            all=True, filters={"label": f"{lifecycle.L_OWNER}={lifecycle.HOST}:{pid}"})]
        for cid in found:
            client.api.remove_container(cid, force=True)
    finally:
        client.close()


def body(cleanup: Cleanup, kinds: list[str], rounds: int, workers: int, repeats: int,
         timeout: int) -> dict[str, Any]:
    if not Path(HARNESS_PY).exists():
        raise RuntimeError(f"{HARNESS_PY} missing: build it with `bash scripts/testbed.sh`")
    samples = load_tasks()
    for s in samples:
        log(f"image {s.image}: {'built' if build(s) else 'current'}")
    work = Path(tempfile.mkdtemp(prefix="swebox-bench-eval-"))
    rows, preds, ids = prepare(work, samples, kinds, rounds)
    log(f"{len(ids)} instances ({len(samples)} samples x 2 images x {kinds} x {rounds}), "
        f"{workers} workers; files in {work}")
    run_ids: list[str] = []
    pids: list[int] = []
    cleanup.callback(lambda: _sweep(run_ids, pids))
    ours: list[float] = []
    theirs: list[float] = []
    stops: list[float] = []
    mismatches: list[str] = []
    problems: list[str] = []
    for i in range(repeats):  # alternating order; the first run of each is not discarded
        for tool in (("swebox", "harness") if i % 2 == 0 else ("harness", "swebox")):
            run_id = f"bench{os.getpid()}r{i}{tool[0]}"
            run_ids.append(run_id)
            if tool == "swebox":
                wall, verdicts, probs = run_swebox(work, rows, preds, run_id, workers, timeout,
                                                   pids)
                ours.append(wall)
                mine = verdicts
            else:
                wall, verdicts, probs, stop = run_harness(work, rows, preds, run_id, workers,
                                                          timeout)
                theirs.append(wall)
                stops.append(stop)
                base = verdicts
            problems += [f"{tool}: {p}" for p in probs]
            log(f"repeat {i}: {tool} {wall:.2f}s, resolved {sum(verdicts.values())}"
                f"/{len(verdicts)}")
        for iid in ids:
            if mine.get(iid) != base.get(iid):
                mismatches.append(f"{iid}: swebox {mine.get(iid)}, harness {base.get(iid)}")
    for m in mismatches:
        log(f"MISMATCH {m}")
    for p in problems:
        log(f"problem {p}")
    expected = {iid: iid.rsplit("_", 1)[1].startswith("gold") for iid in ids}
    wrong = [iid for iid in ids if mine.get(iid) != expected[iid]]
    ours_s, theirs_s = statistics.median(ours), statistics.median(theirs)
    r = ratio(ours_s, theirs_s)
    # The harness without its stop waits, as if spread evenly over the workers (an estimate).
    stop_s = statistics.median(stops)
    r_nostop = ratio(ours_s, theirs_s - stop_s / workers)
    log(f"swebox {ours_s:.2f}s, harness {theirs_s:.2f}s, ratio {r:.3f} "
        f"(target <= {TARGET_RATIO:.3f}); verdicts identical: {not mismatches}")
    log(f"the harness spent {stop_s:.1f}s in docker stop (all workers); without it, "
        f"ratio ~{r_nostop:.3f}")
    return {"instances": len(ids), "kinds": kinds, "workers": workers, "repeats": repeats,
            "swebox_s": rnd(ours_s, 2), "harness_s": rnd(theirs_s, 2), "ratio": rnd(r, 3),
            "swebox_runs_s": [rnd(x, 2) for x in ours],
            "harness_runs_s": [rnd(x, 2) for x in theirs],
            "harness_stop_s": rnd(stop_s, 2), "ratio_without_harness_stop_est": rnd(r_nostop, 3),
            "verdicts_identical": not mismatches, "mismatches": mismatches,
            "resolved": sum(mine.values()), "unexpected_verdicts": wrong, "problems": problems,
            "target_ratio": rnd(TARGET_RATIO, 3), "ratio_pass": r <= TARGET_RATIO,
            "pass": not mismatches and not wrong and not problems}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--rounds", type=positive_int, default=1,
                        help="rows per sample and kind")
    parser.add_argument("--kinds", default="gold,empty", help="comma list of gold, empty, noop")
    parser.add_argument("--workers", type=positive_int, default=2)
    parser.add_argument("--repeats", type=positive_int, default=1,
                        help="timed runs of each tool (alternating order); medians reported")
    parser.add_argument("--timeout", type=positive_int, default=600, help="seconds per test run")
    args = parser.parse_args(argv)
    kinds = [k for k in args.kinds.split(",") if k]
    if not kinds or set(kinds) - {"gold", "empty", "noop"}:
        parser.error(f"--kinds: use gold, empty, noop (got {args.kinds!r})")
    result: dict[str, Any] = {}

    def run(cleanup: Cleanup) -> dict[str, Any]:
        result.update(body(cleanup, kinds, args.rounds, args.workers, args.repeats,
                           args.timeout))
        return result

    code = run_benchmark("eval", run)
    return code or (0 if result.get("pass") else 1)


if __name__ == "__main__":
    sys.exit(main())
