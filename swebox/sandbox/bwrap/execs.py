"""Running commands in a bwrap sandbox: entering it through the entry helper, exec (with
host-side timeouts) and shell sessions."""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import socket
import subprocess
import time
from typing import Any

from swebox.errors import SandboxError
from swebox.sandbox.base import Command, to_shell
from swebox.sandbox.bwrap.core import _Core
from swebox.sandbox.bwrap.enter import _ENTER, KEEP_CAPS, NOFILE, NPROC
from swebox.sandbox.bwrap.procs import _kill_group
from swebox.sandbox.bwrap.supervisor import _cap_last, host_tools
from swebox.sandbox.models import ExecResult
from swebox.sandbox.session import SHELL_BOOT, Session
from swebox.sandbox.stream import STDOUT, CappedBuffer, FrameReader, decode

DRAIN = 1.0  # seconds to keep reading after a command exits, while a daemon holds its output
HOST_GRACE = 10.0  # past TERM + KILL, give up on a helper that does not exit


class _RawReader(FrameReader):
    """The session's stream as frames: a socketpair carries the shell's output unframed."""

    def read_frame(self, deadline: float | None = None) -> tuple[int, bytes] | None:
        if not self._buf and not self._fill(deadline):
            return None
        data = bytes(self._buf)
        self._buf.clear()
        return STDOUT, data


class _Execs(_Core):
    """Entering the sandbox, exec and shell."""

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
