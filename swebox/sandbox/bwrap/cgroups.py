"""The cgroup v1 directories of bwrap sandboxes: limits, OOM kills, freezing, removal."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from pathlib import Path

from swebox.errors import SandboxError

# The logger of the whole backend (this was one module, `swebox.sandbox.bwrap`).
log = logging.getLogger("swebox.sandbox.bwrap")

CGROUP_ROOT = Path("/sys/fs/cgroup")
CGROUP_PARENT = "swebox-bwrap"


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
