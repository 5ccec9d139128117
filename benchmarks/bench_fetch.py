"""From an object store to a loaded, tagged image: streaming vs download-then-load.

A real S3-compatible server (moto) on loopback holds a `docker save` of the test base image
(~270 MB) under seed 000's naming convention. Rounds alternate:
- swebox: `fetch_image` streams the object straight into the engine's load, then tags the
  short local name (no temporary file);
- baseline (seed 000 by hand): download the object to a temporary file, load that file, tag,
  delete the file.
Targets: swebox at most 0.7x the baseline's time, and 0 temporary bytes written by swebox
(measured as the growth of the temporary directory during its runs).

    python benchmarks/bench_fetch.py [--rounds 3] [--image swebox/testbase:bookworm]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import boto3
from botocore.config import Config
from moto.server import ThreadedMotoServer

from swebox.images.supply import fetch_image, push
from swebox.sandbox.engine import connect
from swebox.tasks.resolver import ImageRules, RewriteRule

LONG = "vmvm-registry.fbinfra.net/repomate_image_activ_pytest/bench_image:0123abcd"
SHORT = "bench_image:0123abcd"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--image", default="swebox/testbase:bookworm")
    args = parser.parse_args()
    for key, value in (("AWS_ACCESS_KEY_ID", "bench"), ("AWS_SECRET_ACCESS_KEY", "bench"),
                       ("AWS_DEFAULT_REGION", "us-east-1")):
        os.environ.setdefault(key, value)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    api = connect("docker").api
    scratch = Path(tempfile.mkdtemp(prefix="swebox-bench-fetch-"))
    os.environ["TMPDIR"] = str(scratch)  # anything written to "temporary" lands here
    tempfile.tempdir = str(scratch)
    try:
        s3 = boto3.client("s3", endpoint_url=endpoint, config=Config(
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required"))
        s3.create_bucket(Bucket="bench")
        rules = ImageRules(rewrite=[RewriteRule(
            match="vmvm-registry.fbinfra.net/*", local="{repository}:{tag}",
            store="s3://bench/velora-files/images/{repository}-{tag}.tar")])
        uri = rules.store_path(LONG) or ""
        api.tag(args.image, LONG.rsplit(":", 1)[0], LONG.rsplit(":", 1)[1])
        size = push(LONG, uri, endpoint=endpoint)
        print(f"object: {uri} ({size / 2**20:.0f} MiB)", file=sys.stderr)
        ours: list[float] = []
        theirs: list[float] = []
        temp_bytes = 0

        def clear() -> None:
            for name in (LONG, SHORT):
                try:
                    api.remove_image(name)
                except Exception:
                    pass
            # the layers stay cached in the engine for both, as on a real node that re-fetches

        for i in range(args.rounds):
            clear()
            before = _dir_bytes(scratch)
            t = time.perf_counter()
            result = fetch_image(LONG, rules, endpoint=endpoint)
            ours.append(time.perf_counter() - t)
            temp_bytes = max(temp_bytes, _dir_bytes(scratch) - before)
            assert result.action == "loaded", result
            clear()
            t = time.perf_counter()
            tmp = scratch / "image.tar"
            s3.download_file("bench", uri.split("/", 3)[3], str(tmp))
            with open(tmp, "rb") as f:
                for _ in api.load_image(f):
                    pass
            api.tag(LONG, SHORT.split(":")[0], SHORT.split(":")[1])
            tmp.unlink()
            theirs.append(time.perf_counter() - t)
            print(f"round {i}: stream {ours[-1]:.2f}s, download+load {theirs[-1]:.2f}s",
                  file=sys.stderr)
        clear()
        mine, base = statistics.median(ours), statistics.median(theirs)
        figures = {"benchmark": "fetch", "object_mb": round(size / 2**20, 1),
                   "rounds": args.rounds, "stream_s": round(mine, 3),
                   "download_then_load_s": round(base, 3), "time_ratio": round(mine / base, 3),
                   "stream_temp_bytes": temp_bytes, "target_ratio": 0.7,
                   "pass": mine / base <= 0.7 and temp_bytes == 0}
        print(json.dumps(figures))
        return 0 if figures["pass"] else 1
    finally:
        server.stop()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
