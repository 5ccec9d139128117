"""What this machine offers swebox, and what is wrong with it (`swebox doctor`).

Each check is a small function returning one `Check` row. Checks never raise: `run_checks` turns
an unexpected exception into a FAIL row carrying its message, because a doctor that crashes on
the broken machine it is meant to diagnose is useless. Anything that could block (engine API
calls, subprocesses, filesystem calls on a possibly hung mount) runs under a deadline.
"""

from __future__ import annotations

import grp
import os
import platform
import shutil
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict

from swebox import __version__
from swebox.errors import BadInput, SweboxError
from swebox.sandbox import engine as _engine
from swebox.sandbox.models import BackendName

Status = Literal["ok", "warn", "FAIL"]
BACKENDS: tuple[BackendName, ...] = ("docker", "podman")

GIB = 1024**3
DISK_WARN = 20 * GIB
DISK_FAIL = 2 * GIB
# Engine calls get more than the 2 s local checks: the first Podman API call alone can take
# over a second, and a slow-but-working engine must not be reported as dead.
ENGINE_DEADLINE = 5.0
LOCAL_DEADLINE = 2.0
SUBPROCESS_TIMEOUT = 0.9  # bwrap runs twice; both within 2 s
PODMAN_START = "podman system service --time=0 unix:///run/podman/podman.sock &"
_CGROUP = Path("/sys/fs/cgroup")

T = TypeVar("T")


class Check(BaseModel):
    """One row of the report."""

    model_config = ConfigDict(frozen=True)

    name: str
    status: Status
    detail: str
    # Marks the row that judges the default engine: only its FAIL makes `doctor` exit non-zero.
    # Carried on the row (rather than matched by name) so a crashed check keeps its role.
    gates_exit: bool = False

    def as_dict(self) -> dict[str, str]:
        """The JSON form: {check, status, detail}."""
        return {"check": self.name, "status": self.status, "detail": self.detail}


@dataclass
class EngineProbe:
    """What talking to one engine's API found; rendered by the engine and disk checks."""

    backend: BackendName
    url: str
    error: str | None = None
    hint: str | None = None
    info: dict[str, Any] = field(default_factory=dict)
    version: dict[str, Any] = field(default_factory=dict)


class _Timeout(Exception):
    pass


def _within(seconds: float, fn: Callable[[], T]) -> T:
    """fn() run in a daemon thread; raises _Timeout if it has not finished after `seconds`.

    A daemon thread (not a ThreadPoolExecutor, whose workers are joined at exit) so that a
    hung engine or mount cannot keep the process alive after the report is printed.
    """
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as e:  # handed to the caller's thread below
            box["error"] = e

    worker = threading.Thread(target=run, name="swebox-doctor", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise _Timeout(f"no answer within {seconds:g} s")
    if "error" in box:
        raise box["error"]
    return box["value"]


def _first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return lines[0][:300] if lines else type(e).__name__


def human(n: float) -> str:
    """Bytes as a short human size: 512 B, 3.2 GiB."""
    unit = "B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            break
        n /= 1024
    return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"


# ---------------------------------------------------------------------------------- engines


def _permission_problem(path: str) -> str | None:
    """Why the current user may not use the socket at `path`, naming the group to join.

    A missing socket is left to `connect`, whose message carries the how-to-start hint.
    """
    try:
        st = os.stat(path)
    except OSError:
        return None
    if os.access(path, os.R_OK | os.W_OK):
        return None
    mode = stat.filemode(st.st_mode)
    try:
        group = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        group = str(st.st_gid)
    if st.st_gid == 0 or not st.st_mode & stat.S_IWGRP:
        # Joining a group only helps when that group may write; otherwise only the owner can.
        return f"no permission to use {path} ({mode}, group {group}): run as its owner or root"
    return (f"no permission to use {path} ({mode}, group {group}): join group `{group}` "
            f"(`sudo usermod -aG {group} $USER`, then log in again)")


def probe_engine(backend: BackendName) -> EngineProbe:
    """Connect to `backend` (through the shared client) and read its info; never raises.

    Not bounded by itself: `run_checks` gives it a deadline, since a hung engine can hold a
    request for the client's whole 120 s timeout.
    """
    probe = EngineProbe(backend=backend, url=_engine.engine_url(backend))
    try:
        if probe.url.startswith("unix://"):
            problem = _permission_problem(probe.url[len("unix://") :])
            if problem is not None:
                probe.error = f"cannot reach {backend}: {problem}"
                return probe
        client = _engine.connect(backend)
        probe.info, probe.version = client.info(), client.version()
    except SweboxError as e:
        probe.error, probe.hint = e.message, e.hint
    except Exception as e:  # the engine answered, but not as expected (e.g. an HTTP 500)
        probe.error = f"{backend} answered badly: {type(e).__name__}: {_first_line(e)}"
    return probe


def probe_engines() -> dict[BackendName, EngineProbe]:
    """Both engines at once (an absent Podman must not add its wait to Docker's), bounded."""
    found: dict[BackendName, EngineProbe] = {}
    threads = [threading.Thread(target=lambda b=b: found.__setitem__(b, probe_engine(b)),
                                name=f"swebox-doctor-{b}", daemon=True) for b in BACKENDS]
    for t in threads:
        t.start()
    deadline = time.monotonic() + ENGINE_DEADLINE
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    late = {b: EngineProbe(backend=b, url=_engine.engine_url(b),
                           error=f"no answer within {ENGINE_DEADLINE:g} s") for b in BACKENDS}
    # A copy, so that a probe finishing late cannot change the report being rendered.
    return {**late, **found}


def _engine_check(p: EngineProbe, *, default: bool, advice: str | None) -> Check:
    """The row of one engine: FAIL only for the default engine, a warning for the other."""
    name = f"{p.backend} engine"
    info = p.info
    if p.error is None:
        server = info.get("ServerVersion") or p.version.get("Version") or "?"
        return Check(name=name, status="ok", gates_exit=default, detail=(
            f"{p.url}: answers; server {server}, storage {info.get('Driver') or '?'}, "
            f"data root {info.get('DockerRootDir') or '?'}"))
    where = p.url
    # Name the variable that chose the socket: a stale DOCKER_HOST is a common cause.
    for var in ("DOCKER_HOST", "SWEBOX_PODMAN_HOST", "CONTAINER_HOST"):
        if os.environ.get(var) == p.url:
            where = f"{p.url} (from {var})"
            break
    detail = f"{where}: {p.error}" + (f"; {advice}" if advice else "")
    if not default:
        detail += f" (only needed for --backend {p.backend})"
    return Check(name=name, status="FAIL" if default else "warn", detail=detail,
                 gates_exit=default)


def docker_check(p: EngineProbe, *, default: bool) -> Check:
    """Docker engine: socket, permissions, ping, version, storage driver, data root."""
    return _engine_check(p, default=default, advice=p.hint)


def podman_check(p: EngineProbe, *, default: bool) -> Check:
    """Podman: its Docker-compatible API socket, else whether the CLI exists to start it."""
    cli = shutil.which("podman")
    # Replaces connect's generic hint: whether podman is installed decides what to do next.
    if cli is None:
        advice = "the podman CLI is not installed (apt-get install podman)"
    else:
        advice = f"podman is installed ({cli}): start its API with `{PODMAN_START}`"
    return _engine_check(p, default=default, advice=advice)


# ------------------------------------------------------------------------------------ disk


def _disk(name: str, path: str) -> Check:
    try:
        usage = _within(LOCAL_DEADLINE, lambda: shutil.disk_usage(path))
    except _Timeout as e:
        return Check(name=name, status="warn", detail=f"{path}: filesystem hung ({e})")
    free = usage.free
    status: Status = "FAIL" if free < DISK_FAIL else "warn" if free < DISK_WARN else "ok"
    detail = f"{human(free)} free of {human(usage.total)} at {path}"
    if status != "ok":
        limit = DISK_FAIL if status == "FAIL" else DISK_WARN
        detail += f" (below {human(limit)}: images and snapshots will not fit)"
    return Check(name=name, status=status, detail=detail)


def data_root_disk_check(p: EngineProbe) -> Check:
    """Free space where the engine keeps images and containers."""
    name = f"disk: {p.backend} data root"
    root = p.info.get("DockerRootDir")
    if not root:
        why = "is not reachable (see its row)" if p.error else "did not report its data root"
        return Check(name=name, status="warn", detail=f"unknown: {p.backend} {why}")
    if not os.path.isdir(root):
        # A remote or rootless engine, or one in another mount namespace: the path is not ours.
        return Check(name=name, status="warn", detail=f"{root} is not readable on this host "
                     f"(remote engine or another mount namespace): check free space there")
    return _disk(name, root)


def cwd_disk_check() -> Check:
    """Free space in the working directory, where runs write their outputs."""
    return _disk("disk: working dir", os.getcwd())


# -------------------------------------------------------------------------- host features


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT,
                          check=False, stdin=subprocess.DEVNULL)


def bwrap_check() -> Check:
    """bubblewrap, used by the engine-free backend: present, its version, and usable."""
    name = "bubblewrap"
    path = shutil.which("bwrap")
    if path is None:
        return Check(name=name, status="warn", detail="bwrap not on PATH: needed for the "
                     "engine-free backend: apt-get install bubblewrap")
    try:
        version = _run([path, "--version"]).stdout.strip() or "unknown version"
        # Installed is not enough: without user namespaces (or setuid) bwrap cannot start.
        trial = _run([path, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "true"])
    except subprocess.TimeoutExpired as e:
        return Check(name=name, status="warn",
                     detail=f"{path}: `{' '.join(map(str, e.cmd))}` hung for {e.timeout:g} s")
    if trial.returncode != 0:
        why = (trial.stderr.strip().splitlines() or [f"exit {trial.returncode}"])[0]
        return Check(name=name, status="warn",
                     detail=f"{version} ({path}) is installed but cannot create a sandbox: {why}")
    return Check(name=name, status="ok", detail=f"{version} ({path})")


def _v1_controllers() -> list[str]:
    """Controllers mounted as cgroup v1 hierarchies, from /proc/self/mounts (else the dir)."""
    found: set[str] = set()
    try:
        known = {line.split()[0] for line in Path("/proc/cgroups").read_text().splitlines()
                 if line and not line.startswith("#")}
        for line in Path("/proc/self/mounts").read_text().splitlines():
            parts = line.split()
            if len(parts) >= 4 and parts[2] == "cgroup":
                found |= known & set(parts[3].split(","))
    except OSError:
        pass
    if not found and _CGROUP.is_dir():
        found = {e.name for e in _CGROUP.iterdir() if e.is_dir() and e.name != "unified"}
    return sorted(found)


def cgroup_check() -> Check:
    """cgroup v2 or v1; sandboxes' memory and pids limits rely on the matching controllers."""
    name = "cgroups"
    marker = _CGROUP / "cgroup.controllers"
    if marker.exists():
        controllers = marker.read_text().split()
        missing = [c for c in ("memory", "pids") if c not in controllers]
        detail = f"v2 (controllers: {', '.join(controllers) or 'none'})"
        if missing:
            return Check(name=name, status="warn", detail=f"{detail}; {', '.join(missing)} "
                         "not delegated here: those sandbox limits will not apply")
        return Check(name=name, status="ok", detail=detail)
    controllers = _v1_controllers()
    detail = (f"v1 (mounted: {', '.join(controllers) or 'none'}); "
              "memory/pids limits depend on the v1 controllers")
    missing = [c for c in ("memory", "pids") if c not in controllers]
    if missing:
        return Check(name=name, status="warn",
                     detail=f"{detail}: {', '.join(missing)} not mounted, so not enforced")
    return Check(name=name, status="ok", detail=detail)


def cuda_check() -> Check:
    """CUDA_VISIBLE_DEVICES: MIG UUIDs there break vLLM and other tools that expect indices."""
    name = "CUDA_VISIBLE_DEVICES"
    value = os.environ.get("CUDA_VISIBLE_DEVICES")
    if value is None:
        return Check(name=name, status="ok", detail="not set")
    entries = [e.strip() for e in value.split(",") if e.strip()]
    if not entries:
        return Check(name=name, status="ok", detail="set but empty: no GPU is visible")
    if not any(e.startswith("MIG") for e in entries):
        return Check(name=name, status="ok", detail=value)
    # Inside a job the visible MIG devices are numbered from 0 in the order listed.
    suggested = ",".join(str(i) for i in range(len(entries)))
    return Check(name=name, status="warn", detail=(
        f"{value}: {len(entries)} MIG UUID(s); vLLM and others fail on MIG UUIDs: set "
        f"CUDA_VISIBLE_DEVICES={suggested} inside the job, e.g. "
        f'`if [[ "$CUDA_VISIBLE_DEVICES" =~ ^MIG ]]; then export '
        f"CUDA_VISIBLE_DEVICES={suggested}; fi`"))


def versions_check() -> Check:
    """Python and swebox versions, for bug reports."""
    return Check(name="versions", status="ok", detail=(
        f"Python {platform.python_version()} ({sys.executable}), swebox {__version__}"))


# ------------------------------------------------------------------------------------- run


def _guarded(name: str, fn: Callable[[], Check], *, gates_exit: bool = False) -> Check:
    """fn(), or a FAIL row with the exception's message: one broken check must not hide the rest."""
    try:
        return fn()
    except Exception as e:
        return Check(name=name, status="FAIL", gates_exit=gates_exit,
                     detail=f"check crashed: {type(e).__name__}: {_first_line(e)}")


def run_checks(backend: str = "docker") -> list[Check]:
    """Every check, in report order; `backend` is the default engine being judged."""
    if backend not in BACKENDS:
        raise BadInput(f"unknown backend {backend!r}: use docker or podman")
    probes = probe_engines()
    return [
        _guarded("docker engine", lambda: docker_check(probes["docker"],
                                                       default=backend == "docker"),
                 gates_exit=backend == "docker"),
        _guarded("podman engine", lambda: podman_check(probes["podman"],
                                                       default=backend == "podman"),
                 gates_exit=backend == "podman"),
        _guarded(f"disk: {backend} data root", lambda: data_root_disk_check(probes[backend])),
        _guarded("disk: working dir", cwd_disk_check),
        _guarded("bubblewrap", bwrap_check),
        _guarded("cgroups", cgroup_check),
        _guarded("CUDA_VISIBLE_DEVICES", cuda_check),
        _guarded("versions", versions_check),
    ]


def default_engine_ok(checks: list[Check]) -> bool:
    """Whether the default engine's row is present and not FAIL (warnings elsewhere are fine)."""
    gate = [c for c in checks if c.gates_exit]
    return bool(gate) and all(c.status != "FAIL" for c in gate)
