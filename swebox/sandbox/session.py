"""The persistent shell: one long-lived shell per session over the engine's exec attach stream.

At start the session defines one function, and each command is then sent as a here-document
that the function sources from fd 3:

    __sbx() { { command . /dev/fd/3; } </dev/null 2>&1
              printf '\\n%s %d %s\\n' <nonce> "$?" "$PWD"; }
    __sbx 3<<'<delimiter>'
    <command>
    <delimiter>

Sourcing runs the command in the shell itself, so `cd`, `export` and function definitions
persist. A syntax error (an unbalanced quote) stays inside the sourced stream: with `eval`
instead, dash exits and bash's parser is left corrupted for the next line. `command` keeps a
special-builtin error from ending the shell. Stdin is /dev/null so a command never reads the
protocol stream. The framing lives in the function because a shell reads a pipe one byte per
system call: the fewer bytes a command carries, the faster the round trip (0.5 ms -> 0.2 ms
for bash). A timeout kills every process of the shell's process group except the shell, so the
command ends and the session stays usable.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable

from swebox.errors import SandboxTimeout, SessionClosed
from swebox.sandbox.models import ExecResult
from swebox.sandbox.stream import CappedBuffer, FrameReader, decode

# Prefer bash when the image has it (agents write bash), else the image's /bin/sh.
SHELL_BOOT = "command -v bash >/dev/null 2>&1 && exec bash --norc --noprofile; exec /bin/sh"


class Session:
    """A persistent shell. Not thread-safe: use one session per thread (several per sandbox)."""

    def __init__(
        self,
        sock_writer: Callable[[bytes], None],
        reader: FrameReader,
        interrupt: Callable[[int], None],
        closer: Callable[[], None],
        output_limit: int,
        default_timeout: float | None = None,
    ) -> None:
        self._write = sock_writer
        self._reader = reader
        self._interrupt = interrupt
        self._closer = closer
        self._limit = output_limit
        self._default_timeout = default_timeout
        self._nonce = b"__SWEBOX_" + secrets.token_hex(8).encode() + b"__"
        self._delim = "SBX_" + secrets.token_hex(6)
        self._lock = threading.Lock()
        self.closed = False
        self.pid = 0
        self.cwd = ""
        self._pending = bytearray()
        try:
            self._write(("__sbx() { { command . /dev/fd/3; } </dev/null 2>&1; "
                         f"printf '\\n%s %d %s\\n' {self._nonce.decode()} \"$?\" \"$PWD\"; }}\n"
                         ).encode())
        except OSError as e:
            raise SessionClosed(f"shell did not start: {e}") from e
        boot = self.run("printf '%s\\n' \"$$\"", timeout=30)
        if not boot.ok:
            raise SessionClosed(f"shell did not start: {boot.output.strip()[:200]}")
        self.pid = int(boot.output.strip().splitlines()[-1])

    def run(
        self, command: str, timeout: float | None = None, output_limit: int | None = None
    ) -> ExecResult:
        """Run `command` in the session; state (cwd, env, functions) persists between runs."""
        if self.closed:
            raise SessionClosed("this shell session is closed; open a new one with shell()")
        timeout = timeout if timeout is not None else self._default_timeout
        body = command if command.endswith("\n") else command + "\n"
        line = f"__sbx 3<<'{self._delim}'\n{body}{self._delim}\n"
        with self._lock:
            start = time.monotonic()
            try:
                self._write(line.encode())
            except OSError as e:
                self.closed = True
                raise SessionClosed(f"shell session stream broke: {e}") from e
            return self._collect(start, timeout, output_limit or self._limit)

    def _collect(self, start: float, timeout: float | None, limit: int) -> ExecResult:
        out = CappedBuffer(limit)
        deadline = start + timeout if timeout else None
        timed_out = False
        marker = b"\n" + self._nonce + b" "
        keep = len(marker)
        pending = self._pending
        while True:
            idx = pending.find(marker)
            if idx >= 0:
                nl = pending.find(b"\n", idx + len(marker))
                if nl >= 0:
                    out.write(bytes(pending[:idx]))
                    tail = bytes(pending[idx + len(marker) : nl]).decode(errors="replace")
                    del pending[: nl + 1]
                    code_s, _, cwd = tail.partition(" ")
                    self.cwd = cwd
                    code = 124 if timed_out else int(code_s)
                    return ExecResult(
                        exit_code=code,
                        output=decode(out.getvalue()),
                        stdout=decode(out.getvalue()),
                        duration=time.monotonic() - start,
                        timed_out=timed_out,
                        truncated=out.truncated,
                    )
            elif len(pending) > keep:
                # Flush all but a marker's length: it may be the start of a split marker.
                out.write(bytes(pending[:-keep]))
                del pending[:-keep]
            try:
                frame = self._reader.read_frame(deadline)
            except SandboxTimeout:
                if timed_out:  # the interrupt itself did not bring the marker back
                    self.close()
                    raise SandboxTimeout(
                        "shell session did not recover after interrupting a timed-out command",
                        hint="the session was closed; open a new one with shell()",
                    ) from None
                timed_out = True
                self._interrupt(self.pid)
                deadline = time.monotonic() + 10
                continue
            except SessionClosed:
                self.closed = True
                raise
            if frame is None:
                self.closed = True
                raise SessionClosed(
                    "the shell exited (did the command run `exit`?)",
                    hint="open a new session with shell()",
                )
            pending += frame[1]

    def interrupt(self) -> None:
        """Kill the running command (its processes in the shell's group); the session stays."""
        if not self.closed and self.pid:
            self._interrupt(self.pid)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            try:
                self._closer()
            except Exception:
                pass

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
