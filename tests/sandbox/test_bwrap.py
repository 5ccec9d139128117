"""What is particular to the bwrap backend: isolation from the host (network, symlinks, the
shared rootfs and workspaces), nothing left behind, owner death, gc, no engine needed, limits
from cgroups, images from archives and registries."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from swebox.errors import SandboxError
from swebox.sandbox import Limits, Sandbox, start_sandbox
from swebox.sandbox.bwrap import BwrapSandbox, collect, list_sandboxes, state_path
from tests.conftest import BASE_IMAGE, BUSYBOX_IMAGE, _require, image_for

DEAD = "unix:///tmp/swebox-no-engine-here.sock"
NO_ENGINE = {"DOCKER_HOST": DEAD, "SWEBOX_PODMAN_HOST": DEAD, "CONTAINER_HOST": DEAD}


@pytest.fixture
def rootfs() -> str:
    _require("bwrap")
    return image_for("bwrap", BASE_IMAGE)


@pytest.fixture
def sb(rootfs: str) -> Iterator[BwrapSandbox]:
    with start_sandbox(rootfs, backend="bwrap", workdir="/root") as box:
        assert isinstance(box, BwrapSandbox)
        yield box


def _host_processes(needle: str) -> list[str]:
    out = []
    for d in Path("/proc").iterdir():
        try:
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if needle in cmd:
            out.append(f"{d.name}: {cmd}")
    return out


def _wait(cond: object, limit: float, what: str) -> None:
    deadline = time.monotonic() + limit
    while not cond():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def _tree_digest(root: Path) -> str:
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames + dirnames):
            p = Path(dirpath, name)
            st = p.lstat()
            h.update(f"{p.relative_to(root)} {st.st_mode} {st.st_size} {st.st_mtime_ns}\n".encode())
    return h.hexdigest()


# -- isolation -------------------------------------------------------------------------------
def test_network_is_off(sb: BwrapSandbox) -> None:
    assert sb.exec("ls /sys/class/net").stdout.split() == ["lo"]
    devs = sb.exec("tail -n +3 /proc/net/dev | cut -d: -f1").stdout.split()
    assert devs == ["lo"]
    res = sb.exec("python3 -c 'import socket; socket.create_connection((\"192.0.2.2\", 22), 3)'")
    assert res.exit_code != 0 and "unreachable" in res.stderr.lower()
    assert sb.limits_enforced["network"] is False


def test_network_opt_in_shares_the_host_network(rootfs: str) -> None:
    with start_sandbox(rootfs, backend="bwrap", limits=Limits(network=True)) as box:
        assert set(box.exec("ls /sys/class/net").stdout.split()) == set(os.listdir(
            "/sys/class/net"))


def test_planted_symlinks_never_reach_the_host(sb: BwrapSandbox, tmp_path: Path) -> None:
    host = tmp_path / "host-only"
    host.mkdir()
    (host / "secret").write_text("host secret\n")
    before = _tree_digest(host)
    # Links to the host path; inside the sandbox the same path holds other content.
    assert sb.exec(f"mkdir -p {host} && echo inside > {host}/secret && "
                   f"ln -s {host}/secret /root/file-link && ln -s {host} /root/dir-link && "
                   "ln -s ../../../../../../.. /root/up-link && ln -s /proc/1/root /root/magic"
                   ).ok
    assert sb.read_text("/root/file-link") == "inside\n"
    assert sb.read_text("/root/dir-link/secret") == "inside\n"
    sb.write_file("/root/dir-link/planted", "x")
    sb.write_file("/root/up-link" + str(host) + "/secret", "overwritten\n")
    sb.write_file("/root/file-link", "replaced\n")  # replaces the link, like tar would
    sb.upload(tmp_path / "host-only", "/root/dir-link/uploaded")
    assert sb.exec("test -L /root/file-link || cat /root/file-link").stdout == "replaced\n"
    assert sb.exec(f"cat {host}/secret; ls {host}/planted").stdout == \
        f"overwritten\n{host}/planted\n"
    with pytest.raises(SandboxError):
        sb.read_file("/root/magic/etc/hostname")  # /proc magic links are refused
    out = tmp_path / "down"
    sb.download("/root/dir-link", out)
    assert (out / "secret").read_text() == "overwritten\n"
    # the host directory is exactly as it was
    assert _tree_digest(host) == before and (host / "secret").read_text() == "host secret\n"
    assert not (tmp_path / "planted").exists()


def test_writes_never_change_the_rootfs_or_a_mounted_workspace(rootfs: str,
                                                               tmp_path: Path) -> None:
    work = tmp_path / "checkout"
    (work / "pkg").mkdir(parents=True)
    (work / "pkg" / "mod.py").write_text("X = 1\n")
    (work / "README").write_text("readme\n")
    base_before = _tree_digest(Path(rootfs) / "etc")
    work_before = _tree_digest(work)
    with start_sandbox(rootfs, backend="bwrap", workdir="/testbed",
                       mounts={str(work): "/testbed"}) as box:
        assert box.exec("cat pkg/mod.py").stdout == "X = 1\n"
        assert box.exec("echo 'X = 2' > pkg/mod.py && rm README && mkdir new && touch new/f && "
                        "mv pkg pkg2 && rm -rf /etc/apt && echo changed > /etc/hostname && "
                        "touch /created-at-root").ok
        box.write_file("/testbed/written.txt", "w")
        box.upload(work / "pkg", "/etc/uploaded")
        assert box.exec("ls /testbed | sort").stdout == "new\npkg2\nwritten.txt\n"
        with start_sandbox(rootfs, backend="bwrap", workdir="/testbed",
                           mounts={str(work): "/testbed"}) as other:
            assert other.exec("ls | sort; test -d /etc/apt && echo apt").stdout == \
                "README\npkg\napt\n"
        kids = box.fork(1)
        try:
            assert kids[0].exec("cat pkg2/mod.py; test -e /created-at-root && echo root").stdout \
                == "X = 2\nroot\n"
        finally:
            kids[0].close()
    assert _tree_digest(work) == work_before
    assert _tree_digest(Path(rootfs) / "etc") == base_before
    assert not (Path(rootfs) / "created-at-root").exists()


def test_runs_as_another_user_without_capabilities(rootfs: str) -> None:
    with start_sandbox(rootfs, backend="bwrap", user="nobody", workdir="/tmp") as box:
        res = box.exec("id -u; id -g; echo $HOME; grep -E '^(CapEff|NoNewPrivs)' /proc/self/status")
        assert res.stdout.splitlines() == ["65534", "65534", "/nonexistent",
                                           "CapEff:\t0000000000000000", "NoNewPrivs:\t1"]
        assert box.exec("touch /etc/nope").exit_code != 0


def test_root_in_the_sandbox_cannot_make_devices_or_mount(sb: BwrapSandbox) -> None:
    assert sb.exec("mknod /tmp/disk b 8 0").exit_code != 0
    assert sb.exec("mount -t tmpfs none /mnt").exit_code != 0


# -- lifecycle -------------------------------------------------------------------------------
def test_close_leaves_nothing_behind(rootfs: str) -> None:
    box = start_sandbox(rootfs, backend="bwrap", limits=Limits(memory="128m", pids=100))
    assert isinstance(box, BwrapSandbox)
    box.exec("nohup sleep 4241 >/dev/null 2>&1 &")
    with box.shell() as sh:
        sh.run("sleep 4243 >/dev/null 2>&1 &")
    supervisor, init = box._supervisor, box._init_pid
    assert supervisor is not None
    cgroups = list(Path("/sys/fs/cgroup").glob(f"*/swebox-bwrap/{box.id}"))
    assert cgroups and state_path(box.id).exists()
    assert _host_processes("sleep 4241") and _host_processes("sleep 4243")
    box.close()
    box.close()  # idempotent
    assert supervisor.poll() is not None and not Path(f"/proc/{init}").exists()
    assert _host_processes("sleep 4241") == [] and _host_processes("sleep 4243") == []
    assert _host_processes(box.id) == []
    assert not state_path(box.id).exists()
    assert not any(p.exists() for p in cgroups)
    assert box.id not in Path("/proc/mounts").read_text()
    with pytest.raises(SandboxError, match="closed"):
        box.exec("true")


OWNER = """
import os, signal, sys, time
from swebox.sandbox import start_sandbox
from swebox.sandbox.bwrap import BwrapSandbox
if sys.argv[2] == "leave-debris":  # an owner whose clean-up never runs, and a killed supervisor
    BwrapSandbox._watch = lambda self: None
sb = start_sandbox(sys.argv[1], backend="bwrap", lease=3600)
sb.exec("nohup sleep 4242 >/dev/null 2>&1 &")
print(sb.id, flush=True)
if sys.argv[2] == "leave-debris":
    os.kill(sb._supervisor.pid, signal.SIGKILL)
    sb._supervisor.wait()
os.kill(os.getpid(), signal.SIGKILL)
"""


def _killed_owner(rootfs: str, mode: str) -> str:
    done = subprocess.run([sys.executable, "-c", OWNER, rootfs, mode], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr
    return done.stdout.strip()


def test_sigkilled_owner_takes_its_sandboxes_along(rootfs: str) -> None:
    sid = _killed_owner(rootfs, "plain")
    # die-with-parent: the supervisor gets SIGTERM at once and kills bwrap and everything in it
    _wait(lambda: not _host_processes("sleep 4242"), 10, "sandbox processes outlived the owner")
    _wait(lambda: not state_path(sid).exists(), 10, "the state directory was left behind")
    assert not list(Path("/sys/fs/cgroup").glob(f"*/swebox-bwrap/{sid}"))


def test_gc_removes_debris_and_keeps_live_ones(rootfs: str) -> None:
    with start_sandbox(rootfs, backend="bwrap") as mine:
        sid = _killed_owner(rootfs, "leave-debris")
        assert state_path(sid).exists()
        assert list(Path("/sys/fs/cgroup").glob(f"*/swebox-bwrap/{sid}"))
        dry = collect(dry_run=True)
        assert [c.reason for c in dry if c.id == sid] == ["owner process is gone"]
        assert state_path(sid).exists()
        done = collect()
        assert any(c.id == sid and c.removed for c in done)
        assert all(c.id != mine.id for c in done)
        assert not state_path(sid).exists() and state_path(mine.id).exists()
        assert not list(Path("/sys/fs/cgroup").glob(f"*/swebox-bwrap/{sid}"))
        assert mine.exec("echo alive").stdout == "alive\n"
    assert all(s["id"] != sid for s in list_sandboxes())


NO_ENGINE_RUN = """
import sys
from swebox.sandbox import start_sandbox
kw = {"rootfs_source": sys.argv[2]} if len(sys.argv) > 2 else {}
with start_sandbox(sys.argv[1], backend="bwrap", workdir="/", **kw) as sb:
    print(sb.exec("echo works; cat /etc/os-release 2>/dev/null | head -1; "
                  "command -v bash || echo no-bash").stdout, end="")
"""


def _without_engine(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **NO_ENGINE}
    return subprocess.run([sys.executable, "-c", NO_ENGINE_RUN, *args], capture_output=True,
                          text=True, timeout=300, env=env)


def test_works_with_no_engine_reachable(rootfs: str) -> None:
    done = _without_engine(rootfs)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("works\nPRETTY_NAME=\"Debian")


def test_image_from_a_docker_archive_without_engine(tmp_path: Path) -> None:
    _require("docker", BUSYBOX_IMAGE)
    tar = tmp_path / "busybox.tar"
    subprocess.run(["docker", "save", "-o", str(tar), BUSYBOX_IMAGE], check=True)
    done = _without_engine(BUSYBOX_IMAGE, str(tar))
    assert done.returncode == 0, done.stderr
    assert done.stdout == "works\nno-bash\n"
    from swebox.oci.rootfs import cache_dir

    assert len([p for p in cache_dir().iterdir() if p.is_dir() and len(p.name) == 64]) >= 1


def test_image_from_a_registry_without_engine(registry: str) -> None:
    _require("docker", BUSYBOX_IMAGE)
    name = f"{registry}/swebox/busybox:bwrap"
    subprocess.run(["docker", "tag", BUSYBOX_IMAGE, name], check=True)
    subprocess.run(["docker", "push", "-q", name], check=True, capture_output=True)
    subprocess.run(["docker", "rmi", name], check=True, capture_output=True)
    done = _without_engine(name)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "works\nno-bash\n"


def test_rootfs_for_extracts_once_from_the_engine() -> None:
    from swebox.oci.rootfs import image_config, rootfs_for

    _require("docker", BUSYBOX_IMAGE)
    results: list[Path] = []
    threads = [threading.Thread(target=lambda: results.append(rootfs_for(BUSYBOX_IMAGE)))
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == 1 and (results[0] / "bin" / "sh").exists()
    start = time.monotonic()
    assert rootfs_for(BUSYBOX_IMAGE) == results[0]
    assert time.monotonic() - start < 2  # a cache hit: no `docker save`
    assert "diff_ids" in image_config(results[0])["rootfs"]


# -- limits and concurrency -----------------------------------------------------------------
def test_memory_limit_and_oom_killed(rootfs: str) -> None:
    with start_sandbox(rootfs, backend="bwrap", limits=Limits(memory="64m")) as box:
        assert not box.oom_killed()
        res = box.exec("python3 -c 'b = b\"x\" * (300 * 1024 * 1024); print(len(b))'",
                       timeout=60)
        assert res.exit_code == 137 and "314572800" not in res.stdout, res.output
        assert box.oom_killed()
        assert box.exec("echo still here").stdout == "still here\n"  # the sandbox survives


def test_concurrent_execs(sb: BwrapSandbox) -> None:
    results: dict[int, str] = {}

    def run(i: int) -> None:
        results[i] = sb.exec(f"sleep 0.5; echo {i}", timeout=30).stdout

    start = time.monotonic()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {i: f"{i}\n" for i in range(6)}
    assert time.monotonic() - start < 3


def test_missing_working_directory_and_program(sb: BwrapSandbox) -> None:
    res = sb.exec("true", cwd="/does/not/exist")
    assert res.exit_code == 126 and "cannot change to directory /does/not/exist" in res.stderr
    assert sb.exec("no-such-program-anywhere").exit_code == 127


def test_a_rootfs_without_sh_is_a_clear_error(tmp_path: Path) -> None:
    _require("bwrap")
    (tmp_path / "empty" / "etc").mkdir(parents=True)
    with pytest.raises(SandboxError, match="/bin/sh"):
        start_sandbox(str(tmp_path / "empty"), backend="bwrap")
    assert not any(s["image"] == str(tmp_path / "empty") for s in list_sandboxes())


def test_snapshot_of_a_fork_keeps_its_layers(sb: Sandbox) -> None:
    sb.write_file("/layers/one", "1")
    child = sb.fork(1)[0]
    try:
        child.write_file("/layers/two", "2")
        grandchild = child.fork(1)[0]
        child.close()  # the first snapshot's layer is still needed by the grandchild
        try:
            assert grandchild.exec("cat /layers/one /layers/two").stdout == "12"
        finally:
            grandchild.close()
    finally:
        child.close()
