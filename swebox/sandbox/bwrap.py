"""Backend `bwrap`: sandboxes with bubblewrap over an extracted rootfs, no container engine.

Filesystem. The image is a directory (`swebox.oci.rootfs.rootfs_for` extracts references once
into a cache) that is never written: each sandbox sees it through its own kernel overlayfs, with
upper and work directories under `<state dir>/bwrap/<id>/`. Workspace `mounts` (a host checkout
at /testbed, say) are overlays too, so the host directory never changes and many sandboxes can
share one checkout. bubblewrap 0.8 has no `--overlay`, so swebox mounts the overlays itself -
inside a private mount namespace made for the sandbox (`unshare --mount`), never on the host:
they cannot leak, not even when the owner is killed with SIGKILL, and the host's mount table
never shows them. The overlay is the root of a `bwrap` with new pid, ipc, uts and (unless
`Limits.network`) net namespaces, a fresh /proc, a minimal /dev, a 64 MiB /dev/shm, and the
`scripts.LEASE_LOOP` as its command, like the containers' PID 1.

Exec model: one long-lived sandbox, and every exec enters it. The alternative, a fresh bwrap
per exec over one shared overlay, cannot keep a daemon started by one exec alive for the next
(its pid namespace dies with the exec), nor let one exec see another's processes, which docker
exec does and agents rely on. Entering is done by a small helper (`_ENTER`, run by this Python
with `-I -S`): it joins the sandbox's namespaces (`setns`), its root (`chroot` through
`/proc/<pid>/root`) and its cgroups, forks into the pid namespace, starts a new session (so the
command leads its process group, as engines do), sets the rlimits, drops the capability
bounding set to Docker's default set minus CAP_MKNOD, sets no_new_privs, switches user, and
execs. `nsenter` would do the first half, but it cannot drop capabilities after entering, and
the image may have no tools to do it inside. Concurrent execs are independent helpers; each
costs about 40 ms (a Python start-up), which is what a `docker exec` costs too.

Timeouts are enforced from the host: at the deadline the command's process group gets TERM, and
KILL one second later (what `scripts.EXEC_WITH_TIMEOUT` does inside containers), so a command
that ignores TERM, forks or double-forks is gone within timeout + about 1 s, while a command that
finished in time keeps its daemons. After the command exits, its output is read until the
streams close, at most `DRAIN` seconds more (a daemon may keep them open). Sessions reuse
`Session` over a socketpair; their timeouts kill the shell's group except the shell, from here.

Files are read and written from the host through `/proc/<init pid>/root`, the sandbox's own view
(its /dev/shm included), with `openat2(RESOLVE_IN_ROOT)`: a symlink planted in the sandbox
resolves inside the sandbox, never to the host (or, where openat2 is missing, any symlink on
the way is refused). That root is opened only once bwrap has pivoted into it, and checked to be
the overlay (before the pivot, `/proc/<pid>/root` is the host's `/`). Writes replace files
atomically (a link at the path is replaced, not followed, as tar extraction does); downloads
store links as links and go through `tarstream.extract_stream`, which refuses links leading out.

Lifetime. Each sandbox has a supervisor: `/bin/sh` in the private mount namespace that mounts
the overlays, runs bwrap (`--die-with-parent`), and when bwrap exits unmounts and removes the
cgroups and the state directory. It gets SIGTERM when this process dies (`setpriv
--pdeathsig`, from one thread that lives as long as the process: the signal follows the parent
*thread*, so a pool's worker thread must not be the parent), and then kills the sandbox's PID 1,
which takes the pid namespace and everything in it along. The lease loop ends the sandbox when
the lease expires. `close()` does the same at once and waits for it. `collect()` is the gc for
what a SIGKILLed supervisor leaves (it also runs, for dead owners only, when a sandbox starts).

Limits, where the kernel allows: memory (and memory+swap), pids and cpus through cgroup v1
directories `/sys/fs/cgroup/{memory,pids,cpu}/swebox-bwrap/<id>`, the ones docker enforces.
A limit that was asked for but cannot be enforced (no writable cgroup v1 controller, e.g. on a
cgroup v2 host) is an error at start, never silently dropped. Every exec also gets
RLIMIT_NOFILE 1024 and RLIMIT_NPROC 4096 (the kernel ignores the latter for root). What is in
force is in `sandbox.limits_enforced`. The processes of the execs are in the cgroups; the lease
loop is not, so an OOM kill never takes the sandbox itself down. Root in the sandbox is root
on the host with reduced capabilities and no seccomp filter: weaker isolation than a container
engine's; it needs root on the host.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import io
import json
import logging
import os
import queue
import secrets
import selectors
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future
from pathlib import Path, PurePosixPath
from typing import Any

from swebox.errors import BadInput, EngineUnavailable, ImageNotFound, SandboxError, SweboxError
from swebox.sandbox import lifecycle, scripts
from swebox.sandbox.base import Command, Sandbox, Snapshot, to_shell
from swebox.sandbox.models import ExecResult, SandboxConfig
from swebox.sandbox.session import SHELL_BOOT, Session
from swebox.sandbox.stream import STDOUT, CappedBuffer, FrameReader, decode
from swebox.sandbox.tarstream import CHUNK, extract_stream, produced_tar

log = logging.getLogger(__name__)

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
HOST_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
CGROUP_ROOT = Path("/sys/fs/cgroup")
CGROUP_PARENT = "swebox-bwrap"
SHM_SIZE = 64 * 1024**2
NOFILE = 1024
NPROC = 4096
DRAIN = 1.0  # seconds to keep reading after a command exits, while a daemon holds its output
HOST_GRACE = 10.0  # past TERM + KILL, give up on a helper that does not exit
START_TIMEOUT = 60.0
# Docker's default capability set minus CAP_MKNOD (Docker has a devices cgroup to make device
# nodes harmless; here a node made in the sandbox would reach the host's disks).
KEEP_CAPS = (0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 29, 31)  # chown dac_override fowner fsetid
# kill setgid setuid setpcap net_bind_service net_raw sys_chroot audit_write setfcap
_OVERLAY_UNSAFE = set(",:\\\n\"'")
_SYS_OPENAT2 = 437  # the same number on every architecture (new syscalls are unified)
_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_IN_ROOT = 0x10


# -- the in-sandbox entry helper -------------------------------------------------------------
# Runs as `python -I -S -c _ENTER` with its spec (JSON) in SWEBOX_ENTER. Reports on the status
# fd: "ok <host pid of the command>" or "err <why>". Everything that can fail before the fork
# is reported there (exit 125); failures of the command's own set-up go to its stderr (126, or
# 127 when the program is missing), like an engine's exec.
_ENTER = r"""
import ctypes, json, os, resource, sys

NS = (("ipc", 0x08000000), ("uts", 0x04000000), ("net", 0x40000000), ("pid", 0x20000000),
      ("mnt", 0x00020000))
spec = json.loads(os.environ.pop("SWEBOX_ENTER"))
st = spec["status"]
os.set_inheritable(st, False)
libc = ctypes.CDLL(None, use_errno=True)


def report(line):
    os.write(st, (line + "\n").encode())


def fail(msg):
    report("err " + msg)
    os._exit(125)


def check(ret, what):
    if ret != 0:
        raise OSError(ctypes.get_errno(), what + ": " + os.strerror(ctypes.get_errno()))


def table(path):
    try:
        with open(path, "rb") as f:
            return [ln.decode(errors="replace").split(":") for ln in f.read().splitlines()]
    except OSError:
        return []


def resolve_user(user):
    name, _, group = (user or "0").partition(":")
    pw = [r for r in table("/etc/passwd") if len(r) >= 7]
    entry = next((r for r in pw if r[0] == name or (name.isdigit() and r[2] == name)), None)
    if entry is None and not name.isdigit():
        raise OSError(0, f"unable to find user {name}: no matching entries in passwd file")
    uid = int(name) if name.isdigit() else int(entry[2])
    gid = int(entry[3]) if entry else 0
    grp = [r for r in table("/etc/group") if len(r) >= 4]
    if group:
        if group.isdigit():
            gid = int(group)
        else:
            g = next((r for r in grp if r[0] == group), None)
            if g is None:
                raise OSError(0, f"unable to find group {group}: no matching entries in group file")
            gid = int(g[2])
    groups = [gid]
    if entry:
        groups += [int(r[2]) for r in grp if entry[0] in r[3].split(",") and r[2].isdigit()]
    home = entry[5] if entry else ("/root" if uid == 0 else "/")
    return uid, gid, sorted(set(groups)), home


def drop_caps():
    for cap in range(spec["cap_last"] + 1):
        if cap not in spec["caps"]:
            check(libc.prctl(24, cap, 0, 0, 0), "drop capability")  # PR_CAPBSET_DROP
    libc.prctl(47, 4, 0, 0, 0)  # PR_CAP_AMBIENT_CLEAR_ALL (absent before Linux 4.3)

    class Hdr(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("eff", ctypes.c_uint32), ("prm", ctypes.c_uint32), ("inh", ctypes.c_uint32)]

    hdr, data = Hdr(0x20080522, 0), (Data * 2)()
    check(libc.capget(ctypes.byref(hdr), data), "capget")
    data[0].inh = data[1].inh = 0  # root's caps after exec: bounding | inheritable
    check(libc.capset(ctypes.byref(hdr), data), "capset")


def child(cgroups):
    try:
        os.setsid()
        for fd in cgroups:
            os.write(fd, b"0")
            os.close(fd)
        for name, value in spec["rlimits"].items():
            resource.setrlimit(getattr(resource, name), (value, value))
        uid, gid, groups, home = resolve_user(spec["user"])
        env = spec["env"]
        env.setdefault("HOME", home)
        drop_caps()
        os.setgroups(groups)
        os.setgid(gid)
        os.setuid(uid)
        check(libc.prctl(38, 1, 0, 0, 0), "no_new_privs")  # PR_SET_NO_NEW_PRIVS
    except Exception as e:  # a malformed /etc/passwd too
        os.write(2, f"swebox: {getattr(e, 'strerror', None) or e}\n".encode())
        os._exit(126)
    try:
        os.chdir(spec["cwd"])
    except OSError as e:
        os.write(2, f"swebox: cannot change to directory {spec['cwd']}: {e.strerror}\n".encode())
        os._exit(126)
    argv = spec["argv"]
    try:
        os.execve(argv[0], argv, env)
    except OSError as e:
        os.write(2, f"swebox: cannot run {argv[0]}: {e.strerror}\n".encode())
        os._exit(127 if e.errno == 2 else 126)


def setup():
    os.makedirs(spec["workdir"], exist_ok=True)
    os.makedirs("/sys", exist_ok=True)
    # sysfs shows the network devices of the namespace that mounts it: only lo here.
    check(libc.mount(b"sysfs", b"/sys", b"sysfs", 1 | 2 | 4 | 8, None), "mount /sys")


def main():
    pid = spec["pid"]
    try:
        nsfds = [(os.open(f"/proc/{pid}/ns/{ns}", os.O_RDONLY | os.O_CLOEXEC), flag)
                 for ns, flag in NS]
        root = os.open(f"/proc/{pid}/root", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        with open(f"/proc/{pid}/stat", "rb") as f:
            start = f.read().rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        fail("gone")
    if start != spec["start"]:  # the pid was reused: the sandbox is gone
        fail("gone")
    st_root = os.fstat(root)
    if [st_root.st_dev, st_root.st_ino] != spec["root"]:  # never anything but the overlay
        fail("the sandbox's root changed")
    try:
        # Opened before leaving the host's mount namespace; written by the child.
        cgroups = [os.open(p, os.O_WRONLY | os.O_CLOEXEC) for p in spec["cgroups"]]
        for fd, flag in nsfds:
            check(libc.setns(fd, flag), "setns")
            os.close(fd)
        os.fchdir(root)
        os.chroot(".")
        os.close(root)
        # From here on the filesystem is the sandbox's: nothing may be imported from it (this
        # process is root with every capability until the child drops them).
        sys.path.clear()
        sys.path_importer_cache.clear()
        if spec["mode"] == "setup":
            setup()
            report("ok 0")
            os._exit(0)
    except OSError as e:
        fail(str(e.strerror or e))
    pid = os.fork()
    if pid == 0:
        child(cgroups)
    report(f"ok {pid}")
    os.close(st)
    for fd in cgroups:
        os.close(fd)
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except InterruptedError:
            continue
    code = os.waitstatus_to_exitcode(status)
    os._exit(code if code >= 0 else 128 - code)


try:
    main()
except BaseException as e:  # never a traceback: printing one reads files of the sandbox
    try:
        report(f"err {type(e).__name__}: {e}")
    finally:
        os._exit(125)
"""

# The supervisor: /bin/sh on the host, in the sandbox's private mount namespace. Arguments:
# state dir, the number of overlays, then (options, target) per overlay, then the bwrap command
# line. It mounts, runs bwrap, and after bwrap exits removes the cgroups
# (SWEBOX_CGROUPS) and, once the sandbox had started (the `.started` marker, which the owner
# writes), the state directory: a failed start is left to the owner, which reads its log.
SUPERVISOR = r"""
state=$1; n=$2; shift 2
bw=; stop=; targets=
# Stopping kills the sandbox's PID 1 (bwrap's child), which ends its pid namespace; bwrap
# then reaps it and exits. Only before that child exists is bwrap itself killed.
stop_sandbox() {
  kids=$(cat "/proc/$bw/task/$bw/children" 2>/dev/null)
  if [ -n "$kids" ]; then kill -KILL $kids; else kill -KILL "$bw"; fi
} 2>/dev/null
trap 'stop=1; [ -n "$bw" ] && stop_sandbox' TERM INT HUP
while [ "$n" -gt 0 ]; do
  if ! mount -t overlay swebox -o "$1" "$2"; then
    echo "swebox: cannot mount an overlay on $2" >&2; stop=1; break
  fi
  targets="$2 $targets"
  shift 2; n=$((n - 1))
done
if [ -z "$stop" ]; then
  "$@" &
  bw=$!
  [ -n "$stop" ] && stop_sandbox
  while kill -0 "$bw" 2>/dev/null; do wait "$bw"; done
fi
for t in $targets; do umount -l "$t"; done
for cg in $SWEBOX_CGROUPS; do
  i=0
  while [ -d "$cg" ] && ! rmdir "$cg" 2>/dev/null && [ "$i" -lt 50 ]; do
    sleep 0.1; i=$((i + 1))
  done
done
if [ -e "$state/.started" ]; then cd / && rm -rf -- "$state"; fi
exit 0
"""


# -- host checks -----------------------------------------------------------------------------
_tools: dict[str, str] = {}
_tools_lock = threading.Lock()


def host_tools() -> dict[str, str]:
    """Paths of what the backend runs on the host; EngineUnavailable saying what is missing."""
    with _tools_lock:
        if _tools:
            return _tools
        if os.geteuid() != 0:
            raise EngineUnavailable("the bwrap backend needs root: it mounts overlays and "
                                    "enters namespaces",
                                    hint="run as root, or use backend docker or podman")
        found: dict[str, str] = {}
        for tool, package in (("bwrap", "bubblewrap"), ("setpriv", "util-linux"),
                              ("unshare", "util-linux"), ("mount", "mount"),
                              ("cp", "coreutils")):
            path = shutil.which(tool, path=HOST_PATH)
            if path is None:
                raise EngineUnavailable(f"{tool} is not installed, the bwrap backend needs it",
                                        hint=f"install it (`apt-get install {package}`), or "
                                             "use backend docker or podman")
            found[tool] = path
        try:
            with open("/proc/filesystems") as f:
                has_overlay = any(line.split()[-1] == "overlay" for line in f if line.strip())
        except OSError:
            has_overlay = True  # let the mount itself tell
        if not has_overlay and not Path("/sys/module/overlay").exists():
            raise EngineUnavailable("the kernel has no overlayfs, the bwrap backend needs it",
                                    hint="`modprobe overlay`, or use backend docker or podman")
        found["python"] = sys.executable or shutil.which("python3") or "python3"
        _tools.update(found)
        return _tools


def _cap_last() -> int:
    try:
        return int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    except (OSError, ValueError):
        return 40


def _state_root() -> Path:
    from swebox.images.ledger import state_dir

    return state_dir().absolute() / "bwrap"


def snapshot_root() -> Path:
    """Where bwrap snapshots keep their layers."""
    from swebox.images.ledger import state_dir

    return state_dir().absolute() / "bwrap-snapshots"


def state_path(sandbox_id: str) -> Path:
    """Where a bwrap sandbox keeps its state; it exists exactly while the sandbox does."""
    return _state_root() / sandbox_id


def _check_overlay_path(path: Path, what: str) -> str:
    text = str(path)
    if _OVERLAY_UNSAFE & set(text) or any(c.isspace() for c in text):
        raise BadInput(f"{what} {text} has a character overlayfs options cannot carry "
                       "(comma, colon, backslash, quote or space)",
                       hint="move it to a plain path, or set SWEBOX_STATE_DIR to one")
    return text


def _proc_start(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        return ""


def _pgrp(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return int(f.read().rsplit(b")", 1)[1].split()[2])
    except (OSError, IndexError, ValueError):
        return -1


def _state(pid: int) -> str:
    """A process's state letter ("" once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0].decode()
    except (OSError, IndexError):
        return ""


def _kill_group(pgid: int, sig: int, *, spare_leader: bool = False) -> None:
    """Signal a process group; `spare_leader` signals every member but the leader itself."""
    if pgid <= 1:
        return
    if not spare_leader:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)
        return
    # Oldest first, one at a time, each until it is dead: a shell then learns that its
    # background jobs died before its foreground command returns, and reports them with the
    # interrupted command rather than in the output of the next one (as the in-container
    # `scripts.KILL_GROUP_EXCEPT_LEADER` loop does, being slower).
    members = sorted(int(e.name) for e in os.scandir("/proc")
                     if e.name.isdigit() and int(e.name) != pgid and _pgrp(int(e.name)) == pgid)
    for pid in members:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            continue
        deadline = time.monotonic() + 0.05
        while _state(pid) not in ("", "Z", "X") and time.monotonic() < deadline:
            time.sleep(0.001)


def _wait_gone(pid: int, start: str, timeout: float) -> bool:
    """Wait until the process (told apart by its start time) is dead; a zombie is dead."""
    deadline = time.monotonic() + timeout
    while start and _proc_start(pid) == start and _state(pid) not in ("", "Z", "X"):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _kill_sandbox_processes(state: Path, cgroups: list[str]) -> None:
    """SIGKILL what is left of a sandbox whose supervisor is gone: bwrap (its command line
    names the state directory; killing the sandbox's PID 1 ends its pid namespace) and anything
    still in its cgroups."""
    needle = str(state).encode() + b"/"
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                found = needle in f.read()
        except OSError:
            continue
        if found:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(entry.name), signal.SIGKILL)
    for cg in cgroups:
        try:
            pids = Path(cg, "cgroup.procs").read_text().split()
        except OSError:
            continue
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)


def _rmdir_cgroups(cgroups: list[str], wait: float) -> None:
    deadline = time.monotonic() + wait
    for cg in cgroups:
        while True:
            try:
                Path(cg).rmdir()
                break
            except FileNotFoundError:
                break
            except OSError:  # busy until its last (dying) process is reaped
                if time.monotonic() >= deadline:
                    log.debug("cgroup %s still busy", cg)
                    break
                time.sleep(0.05)


def _rmtree(path: Path) -> None:
    # shutil.rmtree never follows symlinks (the upper dir's content is the sandbox's).
    if path.exists() or path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)


# -- spawning from one long-lived thread -------------------------------------------------------
class _Spawner:
    """Starts supervisors from one daemon thread. PR_SET_PDEATHSIG fires when the parent
    *thread* exits: from a pool worker, sandboxes would die with the worker."""

    def __init__(self) -> None:
        self._jobs: queue.Queue[tuple[Callable[[], subprocess.Popen[bytes]],
                                      Future[subprocess.Popen[bytes]]]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def run(self, make: Callable[[], subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="swebox-bwrap-spawner",
                                                daemon=True)
                self._thread.start()
        fut: Future[subprocess.Popen[bytes]] = Future()
        self._jobs.put((make, fut))
        return fut.result()

    def _loop(self) -> None:
        while True:
            make, fut = self._jobs.get()
            try:
                fut.set_result(make())
            except BaseException as e:
                fut.set_exception(e)


_spawner = _Spawner()


# -- cgroups ---------------------------------------------------------------------------------
class _Cgroups:
    """The sandbox's cgroup v1 directories: memory (always, for oom_killed), freezer (always,
    for consistent snapshots), pids and cpu when limited. Missing or read-only controllers are
    skipped, unless a limit needs them."""

    def __init__(self, sandbox_id: str) -> None:
        self.id = sandbox_id
        self.dirs: dict[str, Path] = {}

    @staticmethod
    def _v1(controller: str) -> Path | None:
        base = CGROUP_ROOT / controller
        return base if (base / "cgroup.procs").exists() else None

    def _make(self, controller: str) -> Path | None:
        base = self._v1(controller)
        if base is None:
            return None
        path = base / CGROUP_PARENT / self.id
        try:
            path.mkdir(parents=True)
        except OSError:
            return None
        self.dirs[controller] = path
        return path

    def create(self, memory: int | None, pids: int | None, cpus: float | None
               ) -> dict[str, int | float]:
        enforced: dict[str, int | float] = {}
        missing: list[str] = []
        try:
            mem = self._make("memory")
            if memory is not None:
                if mem is None:
                    missing.append("memory")
                else:
                    (mem / "memory.limit_in_bytes").write_text(str(memory))
                    with contextlib.suppress(OSError):  # absent without swap accounting
                        (mem / "memory.memsw.limit_in_bytes").write_text(str(memory))
                    enforced["memory"] = memory
            self._make("freezer")
            if pids is not None:
                pid_dir = self._make("pids")
                if pid_dir is None:
                    missing.append("pids")
                else:
                    (pid_dir / "pids.max").write_text(str(pids))
                    enforced["pids"] = pids
            if cpus is not None:
                cpu = self._make("cpu")
                if cpu is None:
                    missing.append("cpus")
                else:
                    (cpu / "cpu.cfs_period_us").write_text("100000")
                    (cpu / "cpu.cfs_quota_us").write_text(str(max(1000, int(cpus * 100000))))
                    enforced["cpus"] = cpus
        except OSError as e:
            self.remove()
            raise SandboxError(f"cannot set the sandbox's cgroup limits: {e}",
                               hint="drop the limits, or use backend docker") from e
        if missing:
            self.remove()
            raise SandboxError(f"cannot enforce the {', '.join(missing)} limit here: no writable "
                               f"cgroup v1 controller under {CGROUP_ROOT}",
                               hint="run as root on a host with cgroup v1 controllers mounted, "
                                    "drop the limit, or use backend docker")
        return enforced

    def procs(self) -> list[str]:
        return [str(d / "cgroup.procs") for d in self.dirs.values()]

    def procs_dirs(self) -> list[str]:
        return [str(d) for d in self.dirs.values()]

    def oom_kills(self) -> int:
        mem = self.dirs.get("memory")
        if mem is None:
            return 0
        try:
            for line in (mem / "memory.oom_control").read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill" and value.strip().isdigit():
                    return int(value)
        except OSError:
            pass
        return 0

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """The execs' processes stopped (cgroup freezer) while the block runs, if possible."""
        path = self.dirs.get("freezer")
        if path is None:
            yield
            return
        state = path / "freezer.state"
        try:
            state.write_text("FROZEN")
            deadline = time.monotonic() + 10
            while state.read_text().strip() != "FROZEN" and time.monotonic() < deadline:
                time.sleep(0.01)
        except OSError:
            pass
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                state.write_text("THAWED")

    def remove(self, wait: float = 0.0) -> None:
        _rmdir_cgroups([str(p) for p in self.dirs.values()], wait)


# -- safe file access in the sandbox's root ------------------------------------------------------
class _How(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64),
                ("resolve", ctypes.c_uint64)]


_libc = ctypes.CDLL(None, use_errno=True)
_openat2_ok = True


def _parts(path: str) -> list[str]:
    return [c for c in PurePosixPath(path).parts if c not in ("/", ".")]


def _open_in(root: int, path: str, flags: int) -> int:
    """Open `path` (absolute inside the sandbox) relative to the sandbox's root fd. Symlinks
    resolve inside the sandbox (RESOLVE_IN_ROOT), never to host paths; /proc magic links are
    refused. Without openat2, any symlink on the way is refused instead."""
    global _openat2_ok
    flags |= os.O_CLOEXEC
    rel = "/".join(_parts(path)) or "."
    if _openat2_ok:
        how = _How(flags, 0, _RESOLVE_IN_ROOT | _RESOLVE_NO_MAGICLINKS)
        for _ in range(20):  # EAGAIN: a rename raced the lookup
            fd = int(_libc.syscall(_SYS_OPENAT2, root, rel.encode(), ctypes.byref(how),
                                   ctypes.sizeof(how)))
            if fd >= 0:
                return fd
            err = ctypes.get_errno()
            if err == errno.ENOSYS:  # a kernel before 5.6: walk without following instead
                _openat2_ok = False
                break
            if err != errno.EAGAIN:
                raise OSError(err, os.strerror(err), path)
        else:
            raise OSError(errno.EAGAIN, os.strerror(errno.EAGAIN), path)
    fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=root)
    try:
        comps = _parts(path)
        for i, comp in enumerate(comps):
            last = i == len(comps) - 1
            if comp == "..":
                raise OSError(errno.EPERM, "'..' is not allowed", path)
            nxt = os.open(comp, (flags if last else os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                          | os.O_NOFOLLOW, 0o600, dir_fd=fd)
            os.close(fd)
            fd = nxt
        if not comps:
            nxt = os.open(".", flags, dir_fd=fd)
            os.close(fd)
            fd = nxt
        return fd
    except BaseException:
        os.close(fd)
        raise


def _mkdirs(root: int, path: str) -> int:
    """An fd of directory `path` in the sandbox, creating what is missing (mode 0755)."""
    dflags = os.O_RDONLY | os.O_DIRECTORY
    try:
        return _open_in(root, path, dflags)
    except FileNotFoundError:
        pass
    fd = _open_in(root, "/", dflags)
    done = ""
    try:
        for comp in _parts(path):
            done += "/" + comp
            try:
                nxt = _open_in(root, done, dflags)
            except FileNotFoundError:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(comp, 0o755, dir_fd=fd)
                nxt = _open_in(root, done, dflags)
            os.close(fd)
            fd = nxt
        return fd
    except BaseException:
        os.close(fd)
        raise


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _place_file(dir_fd: int, name: str, fill: Callable[[int], None], mode: int,
                owner: tuple[int, int] | None = None) -> None:
    """Create `name` in `dir_fd` atomically: a temporary file, renamed over what was there (a
    file or a symlink is replaced, never followed)."""
    tmp = f".swebox-{secrets.token_hex(6)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o600, dir_fd=dir_fd)
    try:
        try:
            fill(fd)
            if owner is not None:
                os.fchown(fd, *owner)
            os.fchmod(fd, mode & 0o7777)
        finally:
            os.close(fd)
        os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise


def _remove_entry(dir_fd: int, name: str) -> None:
    """Remove a non-directory entry if there is one."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(name, dir_fd=dir_fd)


class _Exact(io.RawIOBase):
    """Exactly `size` bytes of an fd: padded with zeros if the file shrank while being read
    (the sandbox may write to it), cut if it grew; a tar member's size must hold."""

    def __init__(self, fd: int, size: int) -> None:
        self.fd, self.left = fd, size

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = min(len(b), self.left)
        if n <= 0:
            return 0
        data = os.read(self.fd, n) or bytes(n)
        b[: len(data)] = data
        self.left -= len(data)
        return len(data)


def _tar_from(root: int, path: str, arcname: str) -> Generator[bytes, None, None]:
    """A tar stream of `path` in the sandbox (top entry `arcname`), walked from directory fds
    with O_NOFOLLOW: links are stored as links, devices and fifos are left out."""
    top = _open_in(root, path, os.O_RDONLY | os.O_NONBLOCK)

    def add(tar: tarfile.TarFile, fd: int, name: str, st: os.stat_result) -> None:
        info = tarfile.TarInfo(name)
        info.mode, info.mtime = stat.S_IMODE(st.st_mode), int(st.st_mtime)
        info.uid, info.gid = st.st_uid, st.st_gid
        if stat.S_ISDIR(st.st_mode):
            info.type = tarfile.DIRTYPE
            tar.addfile(info)
            stack.append((fd, name))
            return
        try:
            if stat.S_ISREG(st.st_mode):
                info.size = st.st_size
                tar.addfile(info, io.BufferedReader(_Exact(fd, st.st_size), CHUNK))
        finally:
            os.close(fd)

    stack: list[tuple[int, str]] = []

    owned = [False]  # whether add() has taken `top` (and will close it)

    def write(tar: tarfile.TarFile) -> None:
        try:
            owned[0] = True
            add(tar, top, arcname, os.fstat(top))
            while stack:
                dfd, dname = stack.pop()
                try:
                    for entry in sorted(os.listdir(dfd)):
                        st = os.stat(entry, dir_fd=dfd, follow_symlinks=False)
                        name = f"{dname}/{entry}"
                        if stat.S_ISLNK(st.st_mode):
                            info = tarfile.TarInfo(name)
                            info.type = tarfile.SYMTYPE
                            info.linkname = os.readlink(entry, dir_fd=dfd)
                            info.mode, info.mtime = 0o777, int(st.st_mtime)
                            tar.addfile(info)
                        elif stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode):
                            flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
                            try:
                                fd = os.open(entry, flags, dir_fd=dfd)
                            except OSError:  # gone, or swapped for a link meanwhile
                                continue
                            add(tar, fd, name, os.fstat(fd))
                finally:
                    os.close(dfd)
        finally:
            for dfd, _ in stack:
                os.close(dfd)

    try:
        yield from produced_tar(write, f"reading {path} in the sandbox", "swebox-bwrap-download")
    finally:
        if not owned[0]:
            os.close(top)


class _RawReader(FrameReader):
    """The session's stream as frames: a socketpair carries the shell's output unframed."""

    def read_frame(self, deadline: float | None = None) -> tuple[int, bytes] | None:
        if not self._buf and not self._fill(deadline):
            return None
        data = bytes(self._buf)
        self._buf.clear()
        return STDOUT, data


# -- the sandbox -----------------------------------------------------------------------------
class BwrapSandbox(Sandbox):
    """A bubblewrap sandbox over a private overlay of a rootfs. Start with `start(config)`."""

    limits_enforced: dict[str, int | float | bool]

    def __init__(self, config: SandboxConfig, sandbox_id: str) -> None:
        self.config = config
        self.id = sandbox_id
        self.name = f"swebox-{sandbox_id}"
        self.state = state_path(sandbox_id)
        self.expires = float(config.labels.get(lifecycle.L_LEASE, "0") or 0)
        self.limits_enforced = {}
        self.rootfs = Path()
        self.env: dict[str, str] = {}
        self.user: str | None = None
        self._cgroups = _Cgroups(sandbox_id)
        self._supervisor: subprocess.Popen[bytes] | None = None
        self._init_pid = 0
        self._init_start = ""
        self._root_fd = -1
        self._root_id = (0, 0)  # (st_dev, st_ino) of the sandbox's root, checked on entry
        self._root_lock = threading.Lock()
        self._closed = False
        self._gone = False
        self._close_lock = threading.Lock()
        self._snapshot: BwrapSnapshot | None = None
        # Per overlay ("/" and each mount target): the base (rootfs or host dir) and the
        # snapshot layers stacked on it, top first.
        self._bases: dict[str, Path] = {}
        self._layers: dict[str, list[Path]] = {}
        self._uppers: dict[str, Path] = {}

    # -- start ------------------------------------------------------------------------------
    @classmethod
    def start(cls, config: SandboxConfig, snapshot: BwrapSnapshot | None = None
              ) -> BwrapSandbox:
        tools = host_tools()
        with contextlib.suppress(Exception):  # gc is best effort; it must never stop a start
            collect(owner_gone_only=True)
        labels = {**config.labels,
                  **lifecycle.owner_labels("sandbox", config.lease, config.task_id)}
        config = config.model_copy(update={"labels": labels})
        sb = cls(config, secrets.token_hex(6))
        if snapshot is not None:
            snapshot.acquire()
            sb._snapshot = snapshot
        try:
            sb._prepare(snapshot)
            sb._launch(tools)
        except BaseException:
            sb._abort()
            raise
        lifecycle.track(sb)
        return sb

    def _prepare(self, snapshot: BwrapSnapshot | None) -> None:
        config = self.config
        if snapshot is not None:
            self.rootfs = snapshot.rootfs
            image_conf = snapshot.image_config
        else:
            self.rootfs = _resolve_rootfs(config)
            image_conf = _image_conf(self.rootfs)
        for item in image_conf.get("Env") or []:
            key, sep, value = str(item).partition("=")
            if sep:
                self.env[key] = value
        self.env.update(config.env)
        self.env.setdefault("PATH", DEFAULT_PATH)
        self.env["HOSTNAME"] = self.id
        self.user = config.user or (str(image_conf.get("User") or "") or None)
        if snapshot is None:
            _check_has_sh(self.rootfs, config.image)
        self._bases["/"] = self.rootfs
        for host, inside in config.mounts.items():
            host_dir = Path(host)
            if not host_dir.is_dir():
                raise BadInput(f"mount source {host} is not a directory",
                               hint="give an existing host directory")
            self._bases[_norm(inside)] = host_dir
        for target in self._bases:
            self._layers[target] = list(snapshot.layers.get(target, [])) if snapshot else []
        lim = config.limits
        self.limits_enforced = {"network": lim.network, "nofile": NOFILE, "nproc": NPROC}
        self._check_paths()
        self.state.mkdir(parents=True)
        self.limits_enforced.update(self._cgroups.create(lim.memory, lim.pids, lim.cpus))
        self._write_owner()

    def _check_paths(self) -> None:
        _check_overlay_path(self.state, "the state directory")
        for target, base in self._bases.items():
            _check_overlay_path(base, "the rootfs" if target == "/" else "mount source")
            for layer in self._layers[target]:
                _check_overlay_path(layer, "the snapshot layer")

    def _overlays(self) -> list[tuple[str, str, str]]:
        """(target in the sandbox, mount options, merged dir on the host) per overlay."""
        out = []
        for i, (target, base) in enumerate(sorted(self._bases.items(),
                                                  key=lambda kv: kv[0].count("/"))):
            d = self.state / ("root" if target == "/" else f"m{i}")
            upper, work, merged = d / "upper", d / "work", d / "merged"
            for p in (upper, work, merged):
                p.mkdir(parents=True, exist_ok=True)
            if target == "/":
                os.chmod(upper, 0o755)  # the merged root takes the upper dir's mode
            self._uppers[target] = upper
            lowers = ":".join(str(p) for p in [*self._layers[target], base])
            out.append((target, f"nodev,lowerdir={lowers},upperdir={upper},workdir={work}",
                        str(merged)))
        return out

    def _launch(self, tools: dict[str, str]) -> None:
        config = self.config
        overlays = self._overlays()
        info_r, info_w = os.pipe()
        os.set_inheritable(info_w, True)
        expiry = self.expires or time.time() + config.lease
        bwrap = [tools["bwrap"], "--die-with-parent", "--new-session", "--unshare-pid",
                 "--unshare-ipc", "--unshare-uts"]
        if not config.limits.network:
            bwrap.append("--unshare-net")
        bwrap += ["--hostname", self.id, "--cap-drop", "ALL"]
        for target, _, merged in overlays:
            bwrap += ["--bind", merged, target]
        bwrap += ["--proc", "/proc", "--dev", "/dev", "--size", str(SHM_SIZE), "--tmpfs",
                  "/dev/shm", "--chmod", "1777", "/dev/shm", "--info-fd", str(info_w),
                  "--chdir", "/", "--clearenv", "--setenv", "PATH", DEFAULT_PATH, "--",
                  "/bin/sh", "-c", scripts.LEASE_LOOP, scripts.LEASE_FILE, f"{expiry:.0f}"]
        argv = [tools["setpriv"], "--pdeathsig", "TERM", "--", tools["unshare"], "--mount",
                "--propagation", "private", "--", "/bin/sh", "-c", SUPERVISOR, "swebox-bwrap",
                str(self.state), str(len(overlays))]
        for _, options, merged in overlays:
            argv += [options, merged]
        argv += bwrap
        logf = open(self.state / "init.log", "wb")  # noqa: SIM115 - handed to the child
        env = {"PATH": HOST_PATH, "SWEBOX_CGROUPS": " ".join(map(str,
                                                                 self._cgroups.dirs.values()))}
        try:
            self._supervisor = _spawner.run(lambda: subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, env=env,
                pass_fds=(info_w,), start_new_session=True))
        finally:
            os.close(info_w)
            logf.close()
        try:
            info = self._read_info(info_r)
        finally:
            os.close(info_r)
        self._init_pid = int(info["child-pid"])
        self._init_start = _proc_start(self._init_pid)
        self._root_fd = self._await_root(overlays[0][2])
        self._write_owner()
        try:
            helper, _ = self._enter(["/bin/true"], mode="setup")
            helper.wait()
        except SandboxError as e:
            raise self._start_error(e.message) from e
        (self.state / ".started").touch()
        threading.Thread(target=self._watch, name=f"swebox-{self.id}-watch",
                         daemon=True).start()

    def _read_info(self, fd: int) -> dict[str, Any]:
        """bwrap's --info-fd JSON (the host pid of the sandbox's PID 1)."""
        buf = b""
        deadline = time.monotonic() + START_TIMEOUT
        decoder = json.JSONDecoder()
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if not sel.select(max(0.0, deadline - time.monotonic())):
                    continue
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                buf += chunk
                try:
                    info, _ = decoder.raw_decode(buf.decode().strip())
                except ValueError:
                    continue
                if isinstance(info, dict) and isinstance(info.get("child-pid"), int):
                    return info
        raise self._start_error("bwrap did not start")

    def _await_root(self, merged: str) -> int:
        """An fd of the sandbox's root, once bwrap has finished setting it up.

        bwrap reports its child's pid before that child has pivoted into the new root: until
        then `/proc/<pid>/root` is the host's root, and writing through it would write to the
        host. PID 1 forks the command only after the pivot, so its first child means ready;
        the root is then checked to be the overlay itself, whatever happens."""
        pid, sup = self._init_pid, self._supervisor
        children = f"/proc/{pid}/task/{pid}/children"
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                with open(children) as f:
                    if f.read().strip():
                        break
            except OSError as e:
                raise self._start_error("the sandbox exited at once") from e
            if time.monotonic() > deadline or (sup is not None and sup.poll() is not None):
                raise self._start_error("bwrap did not finish setting up the sandbox")
            time.sleep(0.002)
        try:
            fd = os.open(f"/proc/{pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as e:
            raise self._start_error("the sandbox exited at once") from e
        try:
            # The merged overlay as the supervisor (in whose mount namespace it is) sees it.
            want = os.stat(f"/proc/{sup.pid if sup else 0}/root{merged}")
            got = os.fstat(fd)
        except OSError as e:
            os.close(fd)
            raise self._start_error("the sandbox exited at once") from e
        if (got.st_dev, got.st_ino) != (want.st_dev, want.st_ino) or _proc_start(pid) != \
                self._init_start:
            os.close(fd)
            raise SandboxError("the sandbox's root is not its overlay; refusing to use it",
                               hint="report this: bwrap set the sandbox up in an unexpected way")
        self._root_id = (got.st_dev, got.st_ino)
        return fd

    def _start_error(self, what: str) -> SweboxError:
        sup = self._supervisor
        if sup is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                sup.wait(timeout=2)
        try:
            text = (self.state / "init.log").read_text(errors="replace").strip()
        except OSError:
            text = ""
        lines = [ln for ln in text.splitlines() if ln.strip()]
        last = lines[-1][:300] if lines else ""
        if "execvp /bin/sh" in text or "cannot run /bin/sh" in text:
            return SandboxError(f"{self.config.image} has no /bin/sh; a sandbox needs one",
                                hint="use an image with a POSIX shell at /bin/sh")
        if last.startswith("bwrap:") and "execvp" not in last:
            return EngineUnavailable(f"bubblewrap cannot create a sandbox here: {last}",
                                     hint="run as root on a kernel with namespaces, or use "
                                          "backend docker or podman")
        if "overlay" in text or "mount" in last:
            return SandboxError(f"cannot mount the sandbox's overlay: {last}",
                                hint="keep SWEBOX_STATE_DIR on a local filesystem (ext4, xfs, "
                                     "tmpfs), not on overlayfs or NFS")
        return SandboxError(f"{what}: {last or 'no message'}",
                            hint="check `swebox doctor`; the bwrap backend needs root")

    def _write_owner(self) -> None:
        sup = self._supervisor
        data = {"id": self.id, "labels": self.config.labels, "expires": self.expires,
                "cgroups": [str(p) for p in self._cgroups.dirs.values()],
                "supervisor": sup.pid if sup else 0,
                "supervisor_start": _proc_start(sup.pid) if sup else "",
                "init": self._init_pid, "image": self.config.image}
        tmp = self.state / ".owner.json.tmp"
        tmp.write_text(json.dumps(data))
        os.replace(tmp, self.state / "owner.json")

    def _watch(self) -> None:
        """When the supervisor exits (lease expired, killed): the sandbox is gone. Clean up
        what a supervisor killed with SIGKILL could not."""
        sup = self._supervisor
        if sup is None:
            return
        sup.wait()
        self._gone = True
        self._release_root()
        with self._close_lock:
            if not self._closed and self.state.exists():
                _kill_sandbox_processes(self.state, self._cgroups.procs_dirs())
                self._cgroups.remove(wait=2)
                _rmtree(self.state)

    def _abort(self) -> None:
        """Undo a failed start."""
        self._closed = True
        self._release_root()
        sup = self._supervisor
        if sup is not None and sup.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                sup.send_signal(signal.SIGTERM)
            try:
                sup.wait(timeout=10)
            except subprocess.TimeoutExpired:
                sup.kill()
                sup.wait()
        _kill_sandbox_processes(self.state, self._cgroups.procs_dirs())
        self._cgroups.remove(wait=2)
        _rmtree(self.state)
        if self._snapshot is not None:
            self._snapshot.release()
            self._snapshot = None

    # -- entering ---------------------------------------------------------------------------
    def _spec(self, argv: list[str], *, cwd: str | None, env: dict[str, str] | None,
              mode: str, status: int) -> dict[str, Any]:
        return {
            "pid": self._init_pid, "start": self._init_start, "status": status, "mode": mode,
            "argv": argv, "cwd": self.abspath(cwd) if cwd else self.config.workdir,
            "env": {**self.env, **(env or {})}, "user": self.user,
            "cgroups": self._cgroups.procs(), "caps": list(KEEP_CAPS), "cap_last": _cap_last(),
            "rlimits": {"RLIMIT_NOFILE": NOFILE, "RLIMIT_NPROC": NPROC},
            "workdir": self.config.workdir, "root": list(self._root_id),
        }

    def _enter(self, argv: list[str], *, cwd: str | None = None,
               env: dict[str, str] | None = None, mode: str = "exec",
               stdin: Any = subprocess.DEVNULL, stdout: Any = subprocess.DEVNULL,
               stderr: Any = subprocess.DEVNULL) -> tuple[subprocess.Popen[bytes], int]:
        """Start `argv` inside the sandbox: (the helper process, the command's host pid)."""
        self._check_open()
        st_r, st_w = os.pipe()
        spec = self._spec(argv, cwd=cwd, env=env, mode=mode, status=st_w)
        try:
            proc = subprocess.Popen(
                [host_tools()["python"], "-I", "-S", "-c", _ENTER], stdin=stdin,
                stdout=stdout, stderr=stderr, pass_fds=(st_w,),
                env={"SWEBOX_ENTER": json.dumps(spec)}, start_new_session=True)
        except OSError as e:
            os.close(st_r)
            raise SandboxError(f"cannot start the entry helper: {e}") from e
        finally:
            os.close(st_w)
        try:
            with os.fdopen(st_r, "rb") as f:
                line = f.readline().decode(errors="replace").strip()
        except OSError:
            line = ""
        if line.startswith("ok "):
            return proc, int(line[3:])
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        if line == "err gone" or self._gone:
            self._gone = True
            raise SandboxError(f"sandbox {self.name} is gone (lease expired or removed)",
                               hint="start a new sandbox")
        raise SandboxError(f"cannot enter sandbox {self.name}: {line[4:] or 'helper failed'}")

    # -- commands ---------------------------------------------------------------------------
    def exec(self, cmd: Command, timeout: float | None = None, cwd: str | None = None,
             env: dict[str, str] | None = None) -> ExecResult:
        argv = ["/bin/sh", "-c", to_shell(cmd)]
        start = time.monotonic()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        try:
            proc, pgid = self._enter(argv, cwd=cwd, env=env, stdout=out_w, stderr=err_w)
        except BaseException:
            os.close(out_r)
            os.close(err_r)
            raise
        finally:
            os.close(out_w)
            os.close(err_w)
        return self._collect(proc, pgid, out_r, err_r, timeout, start)

    def _collect(self, proc: subprocess.Popen[bytes], pgid: int, out_r: int, err_r: int,
                 timeout: float | None, start: float) -> ExecResult:
        limit = self.config.output_limit
        merged, out, err = CappedBuffer(limit), CappedBuffer(limit), CappedBuffer(limit)
        sel = selectors.DefaultSelector()
        sel.register(out_r, selectors.EVENT_READ, out)
        sel.register(err_r, selectors.EVENT_READ, err)
        pidfd = os.pidfd_open(proc.pid)
        sel.register(pidfd, selectors.EVENT_READ, None)
        streams, exited = 2, False
        deadline = start + timeout if timeout is not None and timeout > 0 else None
        timed_out = False
        kill_at: float | None = None
        give_up: float | None = None
        drain_until: float | None = None
        try:
            while True:
                now = time.monotonic()
                if exited and (streams == 0 or (drain_until is not None and now >= drain_until)):
                    break
                if deadline is not None and not timed_out and not exited and now >= deadline:
                    timed_out = True
                    _kill_group(pgid, signal.SIGTERM)
                    kill_at, give_up = now + 1, now + 1 + HOST_GRACE
                if kill_at is not None and now >= kill_at:
                    _kill_group(pgid, signal.SIGKILL)
                    kill_at = None
                if give_up is not None and now >= give_up and not exited:
                    proc.kill()  # the helper itself is stuck; abandon the command
                    give_up = None
                waits = [t for t in (None if timed_out or exited else deadline, kill_at,
                                     give_up, drain_until) if t is not None]
                events = sel.select(max(0.0, min(waits) - now) if waits else None)
                for key, _ in events:
                    if key.data is None:
                        sel.unregister(pidfd)
                        exited = True
                        drain_until = time.monotonic() + DRAIN
                        continue
                    chunk = os.read(key.fd, 262144)
                    if not chunk:
                        sel.unregister(key.fd)
                        streams -= 1
                        continue
                    merged.write(chunk)
                    key.data.write(chunk)
        finally:
            sel.close()
            for fd in (out_r, err_r, pidfd):
                os.close(fd)
        code = proc.wait()
        duration = time.monotonic() - start
        if timed_out:
            code = 124
        return ExecResult(exit_code=code, output=decode(merged.getvalue()),
                          stdout=decode(out.getvalue()), stderr=decode(err.getvalue()),
                          duration=duration, timed_out=timed_out, truncated=merged.truncated)

    def shell(self, timeout: float | None = None) -> Session:
        mine, theirs = socket.socketpair()
        try:
            proc, pgid = self._enter(["/bin/sh", "-c", SHELL_BOOT], stdin=theirs,
                                     stdout=theirs, stderr=theirs)
        except BaseException:
            mine.close()
            raise
        finally:
            theirs.close()

        def interrupt(_pid: int) -> None:
            # The group is the shell's (it leads it): kill all of it but the shell, from here,
            # so that an interrupt works even when the sandbox cannot fork any more.
            _kill_group(pgid, signal.SIGKILL, spare_leader=True)

        def closer() -> None:
            with contextlib.suppress(OSError):
                mine.sendall(b"exit 0\n")
            mine.close()
            try:
                proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                # Still busy with a command nobody will read: end it (and the shell).
                _kill_group(pgid, signal.SIGKILL)
                proc.kill()
                proc.wait()

        return Session(mine.sendall, _RawReader(mine), interrupt, closer,
                       self.config.output_limit, default_timeout=timeout)

    # -- files ------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _root(self) -> Iterator[int]:
        """A private duplicate of the root fd, so close() can never pull it from under an
        operation in another thread."""
        self._check_open()
        with self._root_lock:
            if self._root_fd < 0:
                raise SandboxError(f"sandbox {self.name} is gone (lease expired or removed)",
                                   hint="start a new sandbox")
            fd = os.dup(self._root_fd)
        try:
            yield fd
        finally:
            os.close(fd)

    def _release_root(self) -> None:
        with self._root_lock:
            if self._root_fd >= 0:
                os.close(self._root_fd)
                self._root_fd = -1

    def _file_error(self, e: OSError, what: str, path: str) -> SandboxError:
        if e.errno == errno.ENOENT:
            return SandboxError(f"no such file in sandbox: {path}")
        if e.errno == errno.ELOOP:
            return SandboxError(f"cannot {what} {path} in {self.name}: too many symlinks")
        return SandboxError(f"cannot {what} {path} in {self.name}: {e.strerror or e}")

    def write_file(self, path: str, data: bytes | str, mode: int = 0o644) -> None:
        payload = data.encode() if isinstance(data, str) else data
        full = self.abspath(path)
        parent, name = str(PurePosixPath(full).parent), PurePosixPath(full).name
        if not name:
            raise BadInput(f"cannot write {path}: not a file path")
        with self._root() as root:
            try:
                pfd = _mkdirs(root, parent)
                try:
                    _place_file(pfd, name, lambda fd: _write_all(fd, payload), mode)
                finally:
                    os.close(pfd)
            except OSError as e:
                raise self._file_error(e, "write", full) from e

    def read_file(self, path: str) -> bytes:
        full = self.abspath(path)
        with self._root() as root:
            try:
                fd = _open_in(root, full, os.O_RDONLY | os.O_NONBLOCK)
            except OSError as e:
                raise self._file_error(e, "read", full) from e
            with os.fdopen(fd, "rb") as f:
                st = os.fstat(f.fileno())
                if stat.S_ISDIR(st.st_mode):
                    raise SandboxError(f"{full} is a directory, not a file", hint="use download()")
                if not stat.S_ISREG(st.st_mode):
                    raise SandboxError(f"{full} is not a regular file")
                return f.read()

    def upload(self, src: str | Path, dest: str) -> None:
        src = Path(src)
        try:
            top = src.lstat()
        except OSError as e:
            raise BadInput(f"cannot upload {src}: no such file or directory") from e
        full = self.abspath(dest)
        parent, name = str(PurePosixPath(full).parent), PurePosixPath(full).name
        if not name:
            raise BadInput(f"cannot upload to {dest}: give a path below /")
        with self._root() as root:
            try:
                pfd = _mkdirs(root, parent)
                try:
                    self._put(pfd, name, src, top)
                finally:
                    os.close(pfd)
            except OSError as e:
                raise self._file_error(e, "upload to", full) from e

    def _put(self, dir_fd: int, name: str, src: Path, st: os.stat_result) -> None:
        """Copy host `src` to `name` in sandbox directory `dir_fd`, like extracting a tar:
        entries are created, never followed; modes, owners and mtimes kept."""
        owner = (st.st_uid, st.st_gid)
        if stat.S_ISREG(st.st_mode):
            with open(src, "rb") as f:
                _place_file(dir_fd, name, lambda fd: _copy_fd(f.fileno(), fd),
                            stat.S_IMODE(st.st_mode), owner)
        elif stat.S_ISLNK(st.st_mode):
            _remove_entry(dir_fd, name)
            os.symlink(os.readlink(src), name, dir_fd=dir_fd)
            os.chown(name, *owner, dir_fd=dir_fd, follow_symlinks=False)
        elif stat.S_ISDIR(st.st_mode):
            _remove_entry(dir_fd, name)
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, 0o700, dir_fd=dir_fd)
            sub = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                          dir_fd=dir_fd)
            try:
                with os.scandir(src) as entries:
                    for entry in entries:
                        self._put(sub, entry.name, Path(entry.path),
                                  entry.stat(follow_symlinks=False))
                os.fchown(sub, *owner)
                os.fchmod(sub, stat.S_IMODE(st.st_mode))
            finally:
                os.close(sub)
        else:
            return  # devices, fifos, sockets: never recreated (as `tar_stream` users expect)
        with contextlib.suppress(OSError):
            os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dir_fd,
                     follow_symlinks=False)

    def download(self, src: str, dest: str | Path) -> None:
        full = self.abspath(src)
        with self._root() as root:
            try:
                chunks = _tar_from(root, full, PurePosixPath(full).name or "root")
                first = next(chunks, b"")
            except OSError as e:
                if e.errno == errno.ENOENT:
                    raise SandboxError(f"no such path in sandbox: {full}") from e
                raise self._file_error(e, "download", full) from e

            def stream() -> Generator[bytes, None, None]:
                yield first
                yield from chunks

            gen = stream()
            try:
                extract_stream(gen, Path(dest))
            finally:
                gen.close()
                chunks.close()

    # -- lifecycle --------------------------------------------------------------------------
    def renew(self, lease: float | None = None) -> float:
        expiry = time.time() + (lease if lease is not None else self.config.lease)
        text = f"{expiry:.0f}\n".encode()
        with self._root() as root:
            try:
                pfd = _open_in(root, str(PurePosixPath(scripts.LEASE_FILE).parent),
                               os.O_RDONLY | os.O_DIRECTORY)
                try:
                    _place_file(pfd, PurePosixPath(scripts.LEASE_FILE).name,
                                lambda fd: _write_all(fd, text), 0o644)
                finally:
                    os.close(pfd)
            except OSError as e:
                raise SandboxError(f"could not renew the lease of {self.name}: {e}") from e
        self.expires = expiry
        with contextlib.suppress(OSError):
            self._write_owner()
        return expiry

    def oom_killed(self) -> bool:
        """Whether the OOM killer struck in the sandbox's memory cgroup."""
        return self._cgroups.oom_kills() > 0

    def snapshot(self) -> BwrapSnapshot:
        """Copies of the sandbox's upper layers (`cp -a`, with the execs' processes frozen
        meanwhile), stacked on the layers this sandbox itself started from."""
        self._check_open()
        snap_id = secrets.token_hex(6)
        path = snapshot_root() / snap_id
        path.mkdir(parents=True)
        layers: dict[str, list[Path]] = {}
        try:
            (path / "owner.json").write_text(json.dumps(
                {"labels": lifecycle.owner_labels("snapshot", self.config.lease,
                                                  self.config.task_id)}))
            with self._cgroups.frozen():
                for i, (target, upper) in enumerate(sorted(self._uppers.items())):
                    dest = path / f"layer{i}"
                    done = subprocess.run([host_tools()["cp"], "-a", "--reflink=auto", "--",
                                           str(upper), str(dest)], capture_output=True)
                    if done.returncode != 0:
                        raise SandboxError(f"snapshot of {self.name} failed: "
                                           f"{done.stderr.decode(errors='replace')[:200]}")
                    layers[target] = [dest, *self._layers[target]]
        except BaseException:
            _rmtree(path)
            raise
        image_conf = (self._snapshot.image_config if self._snapshot is not None else
                      _image_conf(self.rootfs))
        return BwrapSnapshot(self.config, snap_id, path, self.rootfs, image_conf, layers,
                             parent=self._snapshot)

    def close(self) -> None:
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        lifecycle.untrack(self)
        self._release_root()
        sup = self._supervisor
        try:
            if sup is not None and sup.poll() is None:
                # Killing the sandbox's PID 1 ends its pid namespace (the kernel kills every
                # process in it); bwrap then exits normally, and the supervisor cleans up.
                if self._init_pid and _proc_start(self._init_pid) == self._init_start:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(self._init_pid, signal.SIGKILL)
                try:
                    sup.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        sup.send_signal(signal.SIGTERM)
                    try:
                        sup.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        sup.kill()  # bwrap dies with it (--die-with-parent)
                        sup.wait()
            # What the supervisor could not do (it was killed, or the start failed).
            if self.state.exists():
                _kill_sandbox_processes(self.state, self._cgroups.procs_dirs())
                self._cgroups.remove(wait=5)
                _rmtree(self.state)
        finally:
            if self._snapshot is not None:
                self._snapshot.release()
                self._snapshot = None

    def _check_open(self) -> None:
        if self._closed:
            raise SandboxError(f"sandbox {self.name} is closed")
        if self._gone:
            raise SandboxError(f"sandbox {self.name} is gone (lease expired or removed)",
                               hint="start a new sandbox")

    def __repr__(self) -> str:
        return f"<BwrapSandbox {self.name} image={self.config.image}>"


def _check_has_sh(rootfs: Path, image: str) -> None:
    try:
        root = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise ImageNotFound(f"cannot open the rootfs {rootfs}: {e.strerror}",
                            hint="extract the image again") from e
    try:
        os.close(_open_in(root, "/bin/sh", os.O_PATH))
    except OSError:
        raise SandboxError(f"{image} has no /bin/sh; a sandbox needs one",
                           hint="use an image with a POSIX shell at /bin/sh") from None
    finally:
        os.close(root)


def _norm(path: str) -> str:
    return "/" + "/".join(_parts(path))


def _copy_fd(src: int, dst: int) -> None:
    while True:
        block = os.read(src, CHUNK)
        if not block:
            return
        _write_all(dst, block)


def _image_conf(rootfs: Path) -> dict[str, Any]:
    from swebox.oci.rootfs import image_config

    conf = image_config(rootfs).get("config")
    return conf if isinstance(conf, dict) else {}


def _resolve_rootfs(config: SandboxConfig) -> Path:
    """The rootfs directory of `config.image`: the image itself when it is a directory path,
    else through the rootfs cache."""
    image = config.image
    if image.startswith(("/", "./", "../")) and config.rootfs_source is None:
        path = Path(image).resolve()
        if not path.is_dir():
            raise ImageNotFound(f"rootfs directory {image} does not exist",
                                hint="extract an image there, or give an image reference")
        return path
    from swebox.oci.rootfs import rootfs_for

    return rootfs_for(image, source=config.rootfs_source, pull=config.pull).resolve()


# -- snapshots ----------------------------------------------------------------------------------
class BwrapSnapshot(Snapshot):
    """Frozen upper layers of a sandbox; removed once asked to and no sandbox (or snapshot)
    built on it is left."""

    def __init__(self, config: SandboxConfig, snap_id: str, path: Path, rootfs: Path,
                 image_config: dict[str, Any], layers: dict[str, list[Path]],
                 parent: BwrapSnapshot | None = None) -> None:
        super().__init__()
        self.config = config
        self.id = snap_id
        self.ref = f"bwrap-snapshot:{snap_id}"
        self.path = path
        self.rootfs = rootfs
        self.image_config = image_config
        self.layers = layers
        # The layers of the snapshot this one was taken from stay in use under this one.
        self._parent = parent
        if parent is not None:
            parent.acquire()

    def start(self, n: int = 1, **overrides: object) -> list[Sandbox]:
        base = self.config.model_dump()
        base.update(overrides)
        base["image"] = self.config.image  # the filesystem is the snapshot's, whatever asked
        config = SandboxConfig.model_validate(base)
        out: list[Sandbox] = []
        try:
            for _ in range(n):
                out.append(BwrapSandbox.start(config, snapshot=self))
        except BaseException:
            for sb in out:
                sb.close()
            raise
        return out

    def _delete(self) -> None:
        _rmtree(self.path)
        if self._parent is not None:
            self._parent.release()
            self._parent = None


# -- garbage collection ---------------------------------------------------------------------
def list_sandboxes() -> list[dict[str, Any]]:
    """What each bwrap sandbox on this machine recorded at start (owner labels, supervisor)."""
    root = _state_root()
    out: list[dict[str, Any]] = []
    if not root.is_dir():
        return out
    for entry in sorted(root.iterdir()):
        try:
            data = json.loads((entry / "owner.json").read_text())
        except (OSError, ValueError):
            data = {"id": entry.name, "labels": {}, "supervisor": 0, "cgroups": []}
        if isinstance(data, dict):
            data["path"] = str(entry)
            out.append(data)
    return out


def _remove_stale(info: dict[str, Any]) -> bool:
    sup, start = int(info.get("supervisor") or 0), str(info.get("supervisor_start") or "")
    if sup and start and _proc_start(sup) == start:
        with contextlib.suppress(ProcessLookupError):
            os.kill(sup, signal.SIGTERM)
        if not _wait_gone(sup, start, 10):
            with contextlib.suppress(ProcessLookupError):
                os.kill(sup, signal.SIGKILL)
            _wait_gone(sup, start, 5)
    cgroups = [str(cg) for cg in info.get("cgroups") or []]
    _kill_sandbox_processes(Path(info["path"]), cgroups)
    _rmdir_cgroups(cgroups, 5)
    _rmtree(Path(info["path"]))
    return not Path(info["path"]).exists()


def collect(*, everything: bool = False, dry_run: bool = False,
            owner_gone_only: bool = False, now: float | None = None
            ) -> list[lifecycle.Collected]:
    """Remove bwrap sandboxes (and snapshots) whose owner process is gone, whose supervisor
    died, or whose lease expired; `everything` removes all. Sandboxes of live owners are
    otherwise left alone. `owner_gone_only` is the cheap pass run when a sandbox starts."""
    now = time.time() if now is None else now
    done: list[lifecycle.Collected] = []
    for info in list_sandboxes():
        labels = info.get("labels") or {}
        sup, start = int(info.get("supervisor") or 0), str(info.get("supervisor_start") or "")
        owner = lifecycle.owner_alive(labels)
        if everything:
            reason = "asked to remove all"
        elif owner is False:
            reason = "owner process is gone"
        elif owner_gone_only:
            continue
        elif sup and start and _proc_start(sup) != start:
            reason = "not running"
        elif float(info.get("expires") or 0) and float(info.get("expires") or 0) < now - 60:
            reason = "lease expired"
        else:
            continue
        removed = False if dry_run else _remove_stale(info)
        done.append(lifecycle.Collected("bwrap", str(info.get("id") or Path(info["path"]).name),
                                        f"swebox-{Path(info['path']).name}", reason, removed))
    snaps = snapshot_root()
    if snaps.is_dir():
        for entry in sorted(snaps.iterdir()):
            try:
                labels = json.loads((entry / "owner.json").read_text()).get("labels") or {}
            except (OSError, ValueError, AttributeError):
                labels = {}
            if everything or lifecycle.owner_alive(labels) is False:
                if not dry_run:
                    _rmtree(entry)
                done.append(lifecycle.Collected("bwrap-snapshot", entry.name, entry.name,
                                                "asked to remove all" if everything else
                                                "owner process is gone", not dry_run))
    return done
