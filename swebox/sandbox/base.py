"""The Sandbox interface every backend implements.

A backend provides starting, `exec`, `shell`, tar-based file transfer, `snapshot` and `close`;
everything else (patches, diffs, text helpers, fork) is written once here on top of those.
"""

from __future__ import annotations

import abc
import secrets
import shlex
import threading
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from swebox.errors import PatchFailed, SandboxError
from swebox.sandbox import scripts
from swebox.sandbox.models import ExecResult, PatchResult, SandboxConfig

if TYPE_CHECKING:
    from swebox.sandbox.session import Session

Command = str | Sequence[str]


def to_shell(cmd: Command) -> str:
    """A shell command line from a string (as is) or an argv list (quoted)."""
    if isinstance(cmd, str):
        return cmd
    return shlex.join(list(cmd))


class Snapshot(abc.ABC):
    """A frozen filesystem state of a sandbox from which new sandboxes start.

    Reference-counted: each sandbox started from it holds it (`acquire` / `release`), and
    its storage is freed (`_delete`, once) when removal was asked for and no user is left."""

    ref: str

    def __init__(self) -> None:
        self._users = 0
        self._remove_requested = False
        self._deleted = False
        self._lock = threading.Lock()

    @abc.abstractmethod
    def start(self, n: int = 1, **overrides: object) -> list[Sandbox]:
        """Start `n` sandboxes from this state (config overrides apply to each)."""

    @abc.abstractmethod
    def _delete(self) -> None:
        """Free the snapshot's storage; called once, when nothing uses it any more."""

    def acquire(self, n: int = 1) -> None:
        with self._lock:
            self._users += n

    def release(self, n: int = 1) -> None:
        with self._lock:
            self._users -= n
            done = self._users <= 0 and self._remove_requested and not self._deleted
            self._deleted = self._deleted or done
        if done:
            self._delete()

    def remove(self) -> None:
        """Delete the snapshot once no sandbox uses it any more."""
        with self._lock:
            self._remove_requested = True
            done = self._users <= 0 and not self._deleted
            self._deleted = self._deleted or done
        if done:
            self._delete()


class Sandbox(abc.ABC):
    """An isolated place to run a task: a container (or, later, a bwrap root or a remote one)."""

    config: SandboxConfig
    id: str

    # -- what each backend implements -----------------------------------------------------
    @abc.abstractmethod
    def exec(
        self,
        cmd: Command,
        timeout: float | None = None,
        cwd: str | None = None,
        env: dict[str, str] | None = None,
    ) -> ExecResult:
        """Run a command statelessly. At `timeout` its whole process group is killed inside
        the sandbox and the result has `timed_out` set and exit code 124."""

    @abc.abstractmethod
    def shell(self, timeout: float | None = None) -> Session:
        """A persistent shell session (cd, export, functions persist between runs)."""

    @abc.abstractmethod
    def write_file(self, path: str, data: bytes | str, mode: int = 0o644) -> None:
        """Create or replace a file (parent directories are created)."""

    @abc.abstractmethod
    def read_file(self, path: str) -> bytes:
        """The bytes of a file in the sandbox."""

    @abc.abstractmethod
    def upload(self, src: str | Path, dest: str) -> None:
        """Copy a host file or directory to `dest` in the sandbox (streamed as tar)."""

    @abc.abstractmethod
    def download(self, src: str, dest: str | Path) -> None:
        """Copy a sandbox file or directory to the host path `dest` (streamed as tar)."""

    @abc.abstractmethod
    def snapshot(self) -> Snapshot:
        """Freeze the current filesystem state."""

    @abc.abstractmethod
    def renew(self, lease: float | None = None) -> float:
        """Extend the lease by `lease` seconds from now (default: the configured lease);
        returns the new expiry as unix time."""

    @abc.abstractmethod
    def close(self) -> None:
        """Stop and remove the sandbox. Idempotent."""

    def kill_processes(self) -> int:
        """Kill every process in the sandbox but its init; returns how many. Backends that
        can reach their processes from outside override this."""
        raise SandboxError(f"{type(self).__name__} cannot kill its processes from outside")

    def oom_killed(self) -> bool:
        """Whether the OOM killer struck in this sandbox (backends that can tell override)."""
        return False

    # -- written once for all backends ---------------------------------------------------
    def abspath(self, path: str) -> str:
        p = PurePosixPath(path)
        return str(p if p.is_absolute() else PurePosixPath(self.config.workdir) / p)

    def read_text(self, path: str, encoding: str = "utf-8") -> str:
        return self.read_file(path).decode(encoding, errors="replace")

    def apply_patch(self, patch: str | bytes, cwd: str | None = None,
                    check: bool = False) -> PatchResult:
        """Apply a unified diff with the fallbacks SWE-bench uses: `git apply`, then
        `git apply --3way`, then `patch --fuzz=5`. Reports which method worked; a failed
        attempt never leaves a half-applied tree."""
        data = patch.encode() if isinstance(patch, str) else patch
        if not data.strip():
            result = PatchResult(applied=False, output="empty patch")
            if check:
                raise PatchFailed("the patch is empty", hint="nothing to apply")
            return result
        if not data.endswith(b"\n"):
            data += b"\n"  # a missing final newline makes both git apply and patch fail
        tmp = f"/tmp/.swebox-{secrets.token_hex(6)}.patch"
        self.write_file(tmp, data)
        script = 'trap \'rm -f "$1"\' EXIT\n' + scripts.APPLY_PATCH
        res = self.exec(["/bin/sh", "-c", script, "swebox-apply", tmp],
                        cwd=cwd or self.config.workdir, timeout=600)
        lines = res.output.splitlines()
        attempts = [ln[3:] for ln in lines if ln.startswith("== ")]
        method = next((ln.split(" ", 1)[1] for ln in lines if ln.startswith("SWEBOX_APPLIED ")),
                      None)
        result = PatchResult(applied=res.exit_code == 0 and method is not None, method=method,
                             output=res.output, attempts=attempts)
        if check and not result.applied:
            last = lines[-1] if lines else ""
            raise PatchFailed(f"patch did not apply with {', '.join(attempts) or 'any method'}: "
                              f"{last[:200]}", hint="regenerate the patch against the base commit")
        return result

    def diff(self, base: str | None = None, cwd: str | None = None) -> str:
        """The working tree against `base` (default: the config's base commit, else HEAD),
        new files included, binary files left out. The repository's index is not touched."""
        ref = base or self.config.base_commit or "HEAD"
        res = self.exec(["/bin/sh", "-c", scripts.DIFF, "swebox-diff", ref],
                        cwd=cwd or self.config.workdir, timeout=600)
        if res.exit_code != 0:
            raise SandboxError(f"git diff against {ref} failed: {res.stderr.strip()[:300]}",
                               hint="is the working directory a git repository?")
        return res.stdout

    def fork(self, n: int = 1, **overrides: object) -> list[Sandbox]:
        """`n` new sandboxes starting from this one's current filesystem state. The snapshot
        behind them is removed when the last of them closes."""
        snap = self.snapshot()
        try:
            return snap.start(n, **overrides)
        finally:
            snap.remove()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
