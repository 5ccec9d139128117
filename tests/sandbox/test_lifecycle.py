"""Labels, leases, owner death (even SIGKILL), gc, Ctrl-C in the CLI, fork and the warm pool.

What is about containers (labels, engine gc, a sandbox outliving its killed owner until its
lease ends) runs on the engines; bwrap's own versions are in test_bwrap.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from swebox.images.ledger import state_dir
from swebox.sandbox import Sandbox, make_config, start_sandbox
from swebox.sandbox.bwrap import list_sandboxes, state_path
from swebox.sandbox.engine import connect
from swebox.sandbox.lifecycle import HOST, collect
from swebox.sandbox.pool import SandboxPool
from tests.conftest import BASE_IMAGE, engine_of, image_for


def _exists(backend: str, cid: str) -> bool:
    if backend == "bwrap":
        return state_path(cid).exists()
    api = connect(engine_of(backend)).api  # type: ignore[arg-type]
    return any(c["Id"] == cid for c in api.containers(all=True))


def _wait_gone(backend: str, cid: str, limit: float) -> float:
    start = time.monotonic()
    while _exists(backend, cid):
        if time.monotonic() - start > limit:
            raise AssertionError(f"container {cid[:12]} still there after {limit}s")
        time.sleep(0.5)
    return time.monotonic() - start


def test_labels(docker_backend: str) -> None:
    with start_sandbox(BASE_IMAGE, pull="never", task_id="acme__x-1", lease=600) as sb:
        labels = sb.client.api.inspect_container(sb.id)["Config"]["Labels"]  # type: ignore
        assert labels["swebox.owner"] == f"{HOST}:{os.getpid()}"
        assert labels["swebox.task"] == "acme__x-1"
        assert 590 < float(labels["swebox.lease"]) - time.time() <= 601  # whole seconds
    assert not _exists("docker", sb.id)


def test_lease_expiry_removes_the_sandbox(backend: str) -> None:
    sb = start_sandbox(image_for(backend), backend=backend, pull="never", lease=3)
    took = _wait_gone(backend, sb.id, 20)
    assert took < 15
    sb.close()  # closing a sandbox that already went is fine


def test_renew_extends_the_lease(backend: str) -> None:
    with start_sandbox(image_for(backend), backend=backend, pull="never", lease=3) as sb:
        sb.renew(60)
        time.sleep(6)
        assert sb.exec("echo alive").stdout == "alive\n"


OWNER = """
import os, signal, sys
from swebox.sandbox import start_sandbox
sb = start_sandbox(sys.argv[1], backend=sys.argv[3], pull="never", lease=float(sys.argv[2]))
print(sb.id, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def _killed_owner(lease: float, backend: str) -> str:
    done = subprocess.run([sys.executable, "-c", OWNER, image_for(backend), str(lease), backend],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr
    return done.stdout.strip()


def test_sigkilled_owner_sandbox_expires_on_its_own(engine_backend: str) -> None:
    backend = engine_backend
    cid = _killed_owner(lease=4, backend=backend)
    assert _exists(backend, cid)  # the owner could not clean up...
    _wait_gone(backend, cid, 25)  # ...the lease did


def test_gc_removes_orphans_and_keeps_live_ones(engine_backend: str) -> None:
    backend = engine_backend
    cid = _killed_owner(lease=3600, backend=backend)
    client = connect(backend)  # type: ignore[arg-type]
    with start_sandbox(BASE_IMAGE, backend=backend, pull="never", lease=3600) as mine:
        dry = collect(client, dry_run=True)
        assert any(c.id == cid[:12] and c.reason == "owner process is gone" for c in dry)
        assert _exists(backend, cid)
        done = collect(client)
        assert any(c.id == cid[:12] and c.removed for c in done)
        assert all(c.id != mine.id[:12] for c in done)
        assert not _exists(backend, cid) and _exists(backend, mine.id)


def test_gc_reads_the_renewed_lease(docker_backend: str) -> None:
    client = connect("docker")
    with start_sandbox(BASE_IMAGE, pull="never", lease=2) as sb:
        sb.renew(120)
        time.sleep(2.5)  # the label's expiry has passed, the renewed one has not
        assert all(c.id != sb.id[:12] for c in collect(client, dry_run=True))


def test_ctrl_c_on_the_cli_cleans_up(docker_backend: str) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "swebox.cli", "sandbox", "run", BASE_IMAGE,
                             "--", "sleep 300"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    api = connect("docker").api
    owner = f"swebox.owner={HOST}:{proc.pid}"
    deadline = time.monotonic() + 60
    while not api.containers(filters={"label": owner}):
        assert time.monotonic() < deadline and proc.poll() is None, proc.stderr
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert api.containers(all=True, filters={"label": owner}) == []


def test_fork_copies_state_and_isolates(sandbox: Sandbox) -> None:
    sandbox.write_file("/state/value.txt", "prepared\n")
    kids = sandbox.fork(2)
    try:
        a, b = kids
        assert a.read_text("/state/value.txt") == "prepared\n"
        a.write_file("/state/value.txt", "changed in a\n")
        assert b.read_text("/state/value.txt") == "prepared\n"
        assert sandbox.read_text("/state/value.txt") == "prepared\n"
        snap_image = a.config.image
        if sandbox.config.backend == "bwrap":
            assert snap_image == sandbox.config.image  # the snapshot is layers, not an image
        else:
            assert snap_image.startswith("swebox-snapshot:")
    finally:
        for k in kids:
            k.close()
    if sandbox.config.backend == "bwrap":
        snaps = state_dir() / "bwrap-snapshots"
        assert not snaps.exists() or not any(snaps.iterdir()), "snapshot outlived its forks"
        return
    api = connect(engine_of(sandbox.config.backend)).api  # type: ignore[arg-type]
    tags = [t for i in api.images() for t in (i.get("RepoTags") or [])]
    assert not any(t.endswith(snap_image) for t in tags), "snapshot image outlived its forks"


def test_pool_hands_out_fresh_started_sandboxes(backend: str) -> None:
    config = make_config(image=image_for(backend), backend=backend, pull="never", workdir="/")
    with SandboxPool(config, size=2) as pool:
        pool.wait_ready()
        first = pool.acquire()
        first.write_file("/mark", "x")
        second = pool.acquire()
        assert first.id != second.id
        assert second.exec("test -e /mark || echo fresh").stdout == "fresh\n"
        pool.wait_ready(timeout=120)  # refilled in the background
        assert pool.ready() == 2
        first.close()
        second.close()
    if backend == "bwrap":
        mine = f"{HOST}:{os.getpid()}"
        assert [s for s in list_sandboxes() if s["labels"].get("swebox.owner") == mine] == []
        return
    left = connect(engine_of(backend)).api.containers(  # type: ignore[arg-type]
        all=True, filters={"label": f"swebox.owner={HOST}:{os.getpid()}"})
    assert left == []
