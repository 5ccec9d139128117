"""Converting 100,000 SWE-bench-style JSONL rows to parquet.

The rows are the real SWE-bench Lite rows in ../shared/realdata, repeated with unique instance
ids (about 5.6 KB a row, so ~560 MB of JSONL). Two conversions of the same file, each in its
own process so that time and peak memory are its own:

- swebox: `swebox tasks convert --to rllm` through the library (streamed, validated, rejects
  checked, verl/rLLM columns), with its default workers (one per core) and with one (serial);
- baseline: the hand-written way: load every line with json.loads, `pyarrow.Table.from_pylist`,
  `pyarrow.parquet.write_table`.

Target: swebox at most 10 s. Also reported: time and peak RSS as ratios to the baseline.

    python benchmarks/bench_convert.py [--rows 100000] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata" / "datasets"
SOURCES = ("swebench_lite_dev.jsonl", "swebench_lite_test_sweagent_reencoded.jsonl")
TARGET_SECONDS = 10.0

SWEBOX = """
import sys, time
from swebox.tasks.convert import convert_file
t = time.perf_counter()
report = convert_file(sys.argv[1], sys.argv[2], "rllm", workers=int(sys.argv[3]) or None)
print(time.perf_counter() - t, report.written, report.rejected, peak())
"""

BASELINE = """
import json, sys, time
import pyarrow as pa, pyarrow.parquet as pq
t = time.perf_counter()
with open(sys.argv[1]) as f:
    rows = [json.loads(line) for line in f]
pq.write_table(pa.Table.from_pylist(rows), sys.argv[2])
print(time.perf_counter() - t, len(rows), 0, peak())
"""

# Prepended to both: this process's peak RSS, or its largest worker's (KiB).
PEAK = """
import resource
def peak():
    return max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
               resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def make_input(path: Path, rows: int) -> int:
    base: list[dict[str, Any]] = []
    for name in SOURCES:
        with open(REALDATA / name) as f:
            base += [json.loads(line) for line in f if line.strip()]
    size = 0
    with open(path, "w") as out:
        for i in range(rows):
            row = dict(base[i % len(base)])
            row["instance_id"] = f"{row['instance_id']}-{i}"
            line = json.dumps(row) + "\n"
            size += len(line)
            out.write(line)
    return size


def run(code: str, src: Path, dst: Path, *extra: str) -> dict[str, float]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", PEAK + code, str(src), str(dst), *extra],
                          check=True, capture_output=True, text=True)
    wall = time.perf_counter() - start
    seconds, written, rejected, peak_kb = done.stdout.split()
    return {"seconds": round(float(seconds), 3), "process_seconds": round(wall, 3),
            "rows": int(written), "rejected": int(rejected),
            "peak_rss_mb": round(int(peak_kb) / 1024, 1),
            "output_mb": round(dst.stat().st_size / 2**20, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="swebox-bench-convert-"))
    try:
        src = work / "swebench.jsonl"
        size = make_input(src, args.rows)
        print(f"input: {args.rows} rows, {size / 2**20:.0f} MiB", file=sys.stderr)
        swebox = run(SWEBOX, src, work / "swebox.parquet", "0")
        serial = run(SWEBOX, src, work / "serial.parquet", "1")
        baseline = run(BASELINE, src, work / "baseline.parquet")
        figures = {
            "benchmark": "convert", "rows": args.rows, "input_mb": round(size / 2**20, 1),
            "swebox": swebox, "swebox_serial": serial, "baseline": baseline,
            "serial_time_ratio": round(serial["seconds"] / baseline["seconds"], 3),
            "time_ratio": round(swebox["seconds"] / baseline["seconds"], 3),
            "memory_ratio": round(swebox["peak_rss_mb"] / baseline["peak_rss_mb"], 3),
            "target_seconds": TARGET_SECONDS,
            "pass": swebox["seconds"] <= TARGET_SECONDS and swebox["rows"] == args.rows,
        }
        print(json.dumps(figures))
        return 0 if figures["pass"] else 1
    finally:
        if not args.keep:
            for p in work.iterdir():
                p.unlink()
            os.rmdir(work)


if __name__ == "__main__":
    sys.exit(main())
