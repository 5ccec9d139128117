"""Helpers shared by the benchmark scripts (not a benchmark itself).

Every script prints exactly one JSON line on stdout when it ends (also when it fails or is
interrupted, then with an `error` field); progress goes to stderr. Every container a script
starts is removed on the way out, including on Ctrl-C and SIGTERM:

1. sandboxes and baseline containers are registered with a `Cleanup` as soon as they exist and
   closed/removed when the script's body returns or raises;
2. a final sweep removes any container labelled with this process as owner (swebox sandboxes
   carry `swebox.owner=<host>:<pid>`, baseline containers `swebox.bench.owner=<host>:<pid>`),
   which catches a container whose start was interrupted before it could be registered;
3. swebox sandboxes also get a short lease, so even a SIGKILLed run leaves nothing for long.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import docker
from docker.errors import APIError, NotFound

from swebox.sandbox import lifecycle, start_sandbox
from swebox.sandbox.base import Sandbox
from swebox.sandbox.engine import engine_url

DEFAULT_IMAGE = "swebox/testbase:bookworm"
# Seconds: a leftover sandbox of a killed run exits by itself after this.
LEASE = 1800.0
OWNER = f"{lifecycle.HOST}:{os.getpid()}"
BENCH_LABEL = "swebox.bench.owner"
BENCH_LABELS = {BENCH_LABEL: OWNER}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def base_parser(description: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=(description or "").strip().splitlines()[0] if description else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--image", default=DEFAULT_IMAGE, help="image to start (pull=never)")
    return parser


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {value}")
    return value


# -- statistics -------------------------------------------------------------------------------
def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linear interpolation between closest ranks."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def rnd(value: float, digits: int = 4) -> float | None:
    """Rounded for JSON; NaN/inf become null (JSON has no NaN)."""
    if value is None or not math.isfinite(value):
        return None
    return round(value, digits)


def summary_ms(samples_s: Sequence[float]) -> dict[str, Any]:
    """n, p50, p90, p99, mean, min, max of durations given in seconds, reported in ms."""
    ms = [s * 1000.0 for s in samples_s]
    if not ms:
        return {"n": 0}
    return {
        "n": len(ms),
        "p50_ms": rnd(percentile(ms, 50)),
        "p90_ms": rnd(percentile(ms, 90)),
        "p99_ms": rnd(percentile(ms, 99)),
        "mean_ms": rnd(sum(ms) / len(ms)),
        "min_ms": rnd(min(ms)),
        "max_ms": rnd(max(ms)),
    }


def head(output: object, limit: int = 200) -> str:
    """The start of a docker-py exec_run output (bytes), for error messages."""
    if isinstance(output, bytes):
        return output[:limit].decode(errors="replace")
    return repr(output)[:limit]


def ratio(num: float, den: float) -> float:
    return num / den if den > 0 else math.nan


# -- docker ------------------------------------------------------------------------------------
def raw_client(max_pool_size: int = 10) -> docker.DockerClient:
    """A plain docker-py client for baselines (own connection pool, not swebox's)."""
    return docker.DockerClient(base_url=engine_url("docker"), timeout=120,
                               max_pool_size=max_pool_size)


def start_swebox(image: str) -> Sandbox:
    return start_sandbox(image, workdir="/", pull="never", lease=LEASE)


def _remove_container(client: docker.DockerClient, cid: str) -> None:
    try:
        client.api.remove_container(cid, force=True)
    except NotFound:
        pass
    except APIError as e:  # "removal already in progress" (auto-remove) is fine
        if "in progress" not in str(e) and "No such container" not in str(e):
            log(f"could not remove container {cid[:12]}: {e}")


def _owned(client: docker.DockerClient) -> list[str]:
    ids: list[str] = []
    for label in (f"{lifecycle.L_OWNER}={OWNER}", f"{BENCH_LABEL}={OWNER}"):
        for info in client.api.containers(all=True, filters={"label": label}):
            ids.append(info["Id"])
    return ids


class Cleanup:
    """Closes registered sandboxes, removes registered containers, then sweeps by label.

    Use as a context manager around a script's body. SIGTERM becomes SystemExit (so this runs),
    and Ctrl-C is ignored while cleaning up so that a second Ctrl-C cannot leave containers.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sandboxes: list[Sandbox] = []
        self._containers: list[str] = []
        self._callbacks: list[Callable[[], object]] = []
        self.leftovers: int | None = None

    # registration
    def sandbox(self, sb: Sandbox) -> Sandbox:
        with self._lock:
            self._sandboxes.append(sb)
        return sb

    def container(self, cid: str) -> str:
        with self._lock:
            self._containers.append(cid)
        return cid

    def callback(self, fn: Callable[[], object]) -> None:
        """Run `fn` first at cleanup (last registered runs first): close pools, join starters."""
        with self._lock:
            self._callbacks.append(fn)

    # eager release of one item (outside timed regions)
    def close_sandbox(self, sb: Sandbox) -> None:
        try:
            sb.close()
        except Exception as e:
            log(f"closing {sb.id[:12]} failed: {e}")
        with self._lock:
            if sb in self._sandboxes:
                self._sandboxes.remove(sb)

    def remove_container(self, client: docker.DockerClient, cid: str) -> None:
        _remove_container(client, cid)
        with self._lock:
            if cid in self._containers:
                self._containers.remove(cid)

    # the context manager
    def __enter__(self) -> Cleanup:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, _sigterm)
        return self

    def __exit__(self, *exc: object) -> None:
        self.run()

    def run(self) -> None:
        main = threading.current_thread() is threading.main_thread()
        old = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
        try:
            self._run()
        finally:
            if main:
                signal.signal(signal.SIGINT, old)

    def _run(self) -> None:
        with self._lock:
            callbacks, self._callbacks = self._callbacks[::-1], []
        for fn in callbacks:
            try:
                fn()
            except Exception as e:
                log(f"cleanup step failed: {e}")
        with self._lock:
            boxes, self._sandboxes = self._sandboxes, []
            cids, self._containers = self._containers, []
        client = raw_client(max_pool_size=16)
        try:
            if boxes or cids:
                log(f"cleanup: closing {len(boxes)} sandboxes, removing {len(cids)} containers")
            with ThreadPoolExecutor(8) as ex:
                list(ex.map(lambda sb: _quiet_close(sb), boxes))
                list(ex.map(lambda cid: _remove_container(client, cid), cids))
            # Sweep whatever this process owns that was not registered, then confirm.
            deadline = time.monotonic() + 30
            while True:
                owned = _owned(client)
                if not owned or time.monotonic() > deadline:
                    break
                with ThreadPoolExecutor(8) as ex:
                    list(ex.map(lambda cid: _remove_container(client, cid), owned))
                time.sleep(0.5)
            self.leftovers = len(owned)
            if owned:
                log(f"cleanup: {len(owned)} containers still present: {owned}")
        finally:
            client.close()


def _quiet_close(sb: Sandbox) -> None:
    try:
        sb.close()
    except Exception as e:
        log(f"closing {sb.id[:12]} failed: {e}")


def _sigterm(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)


# -- the one JSON line -------------------------------------------------------------------------
def run_benchmark(name: str, body: Callable[[Cleanup], dict[str, Any]]) -> int:
    """Run `body` under a Cleanup, then print its result (or the error) as one JSON line."""
    cleanup = Cleanup()
    code = 0
    started = time.monotonic()
    result: dict[str, Any]
    try:
        with cleanup:
            result = body(cleanup)
    except KeyboardInterrupt:
        result = {"error": "interrupted", "pass": False}
        code = 130
    except SystemExit as e:
        result = {"error": f"terminated ({e.code})", "pass": False}
        code = e.code if isinstance(e.code, int) else 1
    except Exception as e:
        log(f"{name} failed: {type(e).__name__}: {e}")
        result = {"error": f"{type(e).__name__}: {e}", "pass": False}
        code = 1
    out = {"benchmark": name, **result, "cleanup_leftover_containers": cleanup.leftovers,
           "total_s": rnd(time.monotonic() - started, 2)}
    print(json.dumps(out), flush=True)
    return code


# -- a swebox server ---------------------------------------------------------------------------
class Served:
    """A `swebox serve` process on a free loopback port with one fresh API key; `stop()`
    ends it with SIGTERM (it closes its sandboxes) and counts what it left."""

    def __init__(self, tmp: str, *args: str, env: dict[str, str] | None = None) -> None:
        import socket
        import subprocess
        from pathlib import Path

        import httpx

        from swebox.server.keys import KeyStore

        n = len(list(Path(tmp).iterdir()))  # one key file and one name per server started
        keys = KeyStore(Path(tmp) / f"keys-{n}.json")
        self.key = keys.add("bench")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.name = f"bench-{os.getpid()}-{n}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "swebox.cli", "serve", "--port", str(port), "--keys",
             str(keys.path), "--name", self.name, *args], env={**os.environ, **(env or {})})
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{self.url}/healthz").raise_for_status()
                return
            except httpx.HTTPError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.proc.kill()
                    raise RuntimeError("swebox serve did not come up") from None
                time.sleep(0.1)

    def stop(self) -> int:
        """Stop the server; returns how many of its sandboxes are left (should be 0)."""
        import subprocess

        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        client = raw_client()
        try:
            return len(client.api.containers(all=True,
                                             filters={"label": f"swebox.server={self.name}"}))
        finally:
            client.close()
