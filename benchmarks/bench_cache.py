"""The repo cache and daemonless extraction, each against its baseline in the same run.

1. checkout: a workspace of a large real tree (this Python's standard library without its
   tests and site-packages, the size of a big repository) from the cache, against `cp -r` of
   the same tree (seed 002's per-rollout copy). Target: at most 1/10 of the time.
2. dedupe: 10 commits of one repository (this checkout's own git history) cached, against 10
   plain copies. Target: stored bytes at most 1/5.
3. extraction: /testbed out of a `docker save` tarball of a task-like image (a flattened Debian
   root plus a repository at /testbed, sharing no layer with anything loaded), daemonless,
   against `docker load` + `docker create` + `docker cp` after removing the image. Target: at
   least 3x faster.

Prints one JSON line on stdout; progress on stderr.

    python benchmarks/bench_cache.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import time
from pathlib import Path

from swebox.cache.checkout import checkout, release
from swebox.cache.store import Entry, RepoCache
from swebox.oci.archive import DockerArchive
from swebox.oci.extract import extract
from swebox.sandbox.engine import connect

REPO = Path(__file__).resolve().parents[1]
BENCH_IMAGE = "swebox-bench/extract:v1"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _ingest_copy(cache: RepoCache, src: Path, iid: str) -> Entry:
    stage = cache.staging()
    shutil.copytree(src, stage / "t", symlinks=True,
                    ignore=shutil.ignore_patterns("site-packages", "__pycache__", "test"))
    return cache.ingest(stage / "t", Entry(instance_id=iid, path=""))


def bench_checkout(scratch: Path, rounds: int) -> dict[str, object]:
    tree = Path(sysconfig.get_paths()["stdlib"])
    cache = RepoCache(scratch / "cache-co")
    entry = _ingest_copy(cache, tree, "stdlib")
    ours: list[float] = []
    copy_mode: list[float] = []
    theirs: list[float] = []
    mode = ""
    for i in range(rounds):
        dest = scratch / f"ws-{i}"
        t = time.perf_counter()
        ws = checkout(cache, "stdlib", dest)
        ours.append(time.perf_counter() - t)
        mode = ws.mode
        release(dest)
        t = time.perf_counter()
        checkout(cache, "stdlib", dest, "copy")
        copy_mode.append(time.perf_counter() - t)
        release(dest)
        t = time.perf_counter()
        subprocess.run(["cp", "-r", entry.path, str(dest)], check=True)
        theirs.append(time.perf_counter() - t)
        shutil.rmtree(dest)
    med, base = statistics.median(ours), statistics.median(theirs)
    log(f"checkout ({mode}) {med * 1000:.1f} ms vs cp -r {base * 1000:.1f} ms "
        f"({entry.file_count} files, {entry.size / 2**20:.0f} MiB)")
    return {"files": entry.file_count, "mib": round(entry.size / 2**20, 1), "mode": mode,
            "checkout_ms": round(med * 1000, 2),
            "copy_mode_ms": round(statistics.median(copy_mode) * 1000, 1),
            "cp_r_ms": round(base * 1000, 1), "ratio": round(med / base, 4),
            "target": "<= 0.1"}


def bench_dedupe(scratch: Path) -> dict[str, object]:
    commits = subprocess.run(["git", "-C", str(REPO), "rev-list", "--max-count=10", "HEAD"],
                             capture_output=True, text=True, check=True).stdout.split()
    cache = RepoCache(scratch / "cache-dd")
    for sha in commits:
        stage = cache.staging()
        archive = subprocess.run(["git", "-C", str(REPO), "archive", sha], check=True,
                                 capture_output=True).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(stage / "t", filter="tar")
        cache.ingest(stage / "t", Entry(instance_id=sha[:12], path=""))
    s = cache.stats()
    ratio = s.stored_bytes / s.logical_bytes
    log(f"dedupe: {len(commits)} commits, logical {s.logical_bytes / 2**20:.1f} MiB, stored "
        f"{s.stored_bytes / 2**20:.2f} MiB, ratio {ratio:.3f}")
    return {"commits": len(commits), "logical_bytes": s.logical_bytes,
            "stored_bytes": s.stored_bytes, "ratio": round(ratio, 4), "target": "<= 0.2"}


def _bench_image(scratch: Path) -> Path:
    """A task-like image that shares no layer with anything else in the engine."""
    api = connect("docker").api
    cid = api.create_container("swebox/testbase:bookworm", command=["true"])["Id"]
    try:
        flat = subprocess.Popen(["docker", "export", cid], stdout=subprocess.PIPE)
        subprocess.run(["docker", "import", "-", "swebox-bench/flat:v1"], stdin=flat.stdout,
                       check=True, capture_output=True)
        flat.wait()
    finally:
        api.remove_container(cid, force=True)
    ctx = scratch / "ctx"
    archive = subprocess.run(["git", "-C", str(REPO), "archive", "--prefix=testbed/", "HEAD"],
                             check=True, capture_output=True).stdout
    ctx.mkdir()
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(ctx, filter="tar")
    (ctx / "Dockerfile").write_text("FROM swebox-bench/flat:v1\nCOPY testbed /testbed\n")
    subprocess.run(["docker", "build", "-q", "-t", BENCH_IMAGE, str(ctx)], check=True,
                   capture_output=True)
    subprocess.run(["docker", "rmi", "swebox-bench/flat:v1"], capture_output=True)
    tar_path = scratch / "image.tar"
    subprocess.run(["docker", "save", "-o", str(tar_path), BENCH_IMAGE], check=True)
    return tar_path


def bench_extract(scratch: Path, rounds: int) -> dict[str, object]:
    tar_path = _bench_image(scratch)
    ours: list[float] = []
    theirs: list[float] = []
    for i in range(rounds):
        dest = scratch / f"ours-{i}"
        t = time.perf_counter()
        with DockerArchive(tar_path) as source:
            extract(source, dest, "/testbed")
        ours.append(time.perf_counter() - t)
        subprocess.run(["docker", "rmi", "-f", BENCH_IMAGE], capture_output=True)
        t = time.perf_counter()
        subprocess.run(["docker", "load", "-q", "-i", str(tar_path)], check=True,
                       capture_output=True)
        cid = subprocess.run(["docker", "create", BENCH_IMAGE, "true"], check=True,
                             capture_output=True, text=True).stdout.strip()
        subprocess.run(["docker", "cp", f"{cid}:/testbed", str(scratch / f"theirs-{i}")],
                       check=True)
        theirs.append(time.perf_counter() - t)
        subprocess.run(["docker", "rm", "-f", cid], capture_output=True)
        mine = sorted(p.relative_to(dest) for p in dest.rglob("*"))
        base = sorted(p.relative_to(scratch / f"theirs-{i}")
                      for p in (scratch / f"theirs-{i}").rglob("*"))
        assert mine == base, "daemonless /testbed differs from docker cp's"
        shutil.rmtree(dest)
        shutil.rmtree(scratch / f"theirs-{i}")
    subprocess.run(["docker", "rmi", "-f", BENCH_IMAGE], capture_output=True)
    med, base_t = statistics.median(ours), statistics.median(theirs)
    size = tar_path.stat().st_size
    log(f"extract /testbed: daemonless {med:.2f} s vs load+create+cp {base_t:.2f} s "
        f"({size / 2**20:.0f} MiB tarball)")
    return {"tarball_mib": round(size / 2**20), "daemonless_s": round(med, 3),
            "load_create_cp_s": round(base_t, 3), "speedup": round(base_t / med, 2),
            "target": ">= 3"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="swebox-bench-cache-"))
    out: dict[str, object] = {"benchmark": "cache"}
    try:
        out["checkout"] = bench_checkout(scratch, args.rounds)
        out["dedupe"] = bench_dedupe(scratch)
        out["extract"] = bench_extract(scratch, max(1, args.rounds // 2))
    except Exception as e:
        out["error"] = f"{type(e).__name__}: {e}"
    finally:
        for mount in scratch.glob("ws-*"):
            release(mount)
        shutil.rmtree(scratch, ignore_errors=True)
    print(json.dumps(out))
    return 1 if "error" in out else 0


if __name__ == "__main__":
    sys.exit(main())
