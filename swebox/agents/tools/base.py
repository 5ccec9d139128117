"""What every tool runs against, and how a tool says no.

A tool is data plus one function: a JSON schema the model sees, and `run(ctx, args) -> str`.
The functions here (bash, the editor, search, submit) are written once; a dialect
(swebox.agents.dialects) gives them the names, argument spellings and observation texts a
given agent scaffold uses.
"""

from __future__ import annotations

import secrets
import shlex
import time
from dataclasses import dataclass, field

from swebox.errors import SandboxError, SandboxTimeout, SessionClosed
from swebox.sandbox import ExecResult, Sandbox, Session


class ToolError(Exception):
    """The tool refused the call (a bad argument, a missing file): the text goes back to the
    model as the observation, and the episode goes on."""


@dataclass
class ToolLimits:
    bash_timeout: float = 180.0  # default per-call timeout, enforced inside the sandbox
    max_bash_timeout: float = 1800.0  # the most a call may ask for
    output_chars: int = 16_000  # observation cap: head + tail, the cut marked
    search_results: int = 100


@dataclass
class ToolContext:
    """One episode's handle on its sandbox: the persistent shell, the editor's undo history."""

    sandbox: Sandbox
    workdir: str
    limits: ToolLimits = field(default_factory=ToolLimits)
    history: dict[str, list[bytes | None]] = field(default_factory=dict)
    submitted: str | None = None  # set by the submit tool (its message, maybe empty)
    _session: Session | None = None
    _tool_shell: Session | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def session(self) -> Session:
        if self._session is None or self._session.closed:
            try:
                self._session = self._open_shell()
            except SandboxError:
                # No shell starts: a fork bomb filled the pids limit, or runaway processes.
                # Kill everything but init and try once more; if that fails the sandbox is
                # lost and the error ends the episode.
                killed = self.sandbox.kill_processes()
                self.notes.append(f"killed {killed} processes to get a shell back")
                self._tool_shell = None
                for wait in (0.3, 0.6, 1.0, 2.0, 4.0, 0.0):  # their pids come free a moment later
                    try:
                        self._session = self._open_shell()
                        break
                    except SandboxError:
                        if not wait:
                            raise
                        time.sleep(wait)
        assert self._session is not None
        return self._session

    def _open_shell(self) -> Session:
        session = self.sandbox.shell()
        # The episode starts in the repository, as every scaffold's shell does.
        res = session.run(f"cd {shlex.quote(self.workdir)}", timeout=30)
        if res.exit_code != 0 and not res.output.strip():
            session.close()
            raise SessionClosed("the new shell could not run a command")
        return session

    def run_shell(self, command: str, timeout: float, limit: int) -> ExecResult:
        """Run in the persistent shell. A shell that died (the command ran `exit`, or a
        timeout could not be recovered) is replaced by a new one, and the run says so."""
        try:
            res = self.session.run(command, timeout=timeout, output_limit=limit)
            if res.timed_out and not self._can_start_a_process():
                return res.model_copy(update={"output": res.output + self._clear_out()})
            return res
        except (SessionClosed, SandboxTimeout) as e:
            if self._session is not None:
                self._session.close()
            self._session = None
            self.notes.append(f"the shell was restarted: {e.message}")
            cleared = "" if self._can_start_a_process() else self._clear_out()
            return ExecResult(exit_code=-1, output=f"{e.message}; the next command runs in a "
                              f"new shell in {self.workdir} (environment variables and the "
                              f"working directory are reset){cleared}")

    def _can_start_a_process(self) -> bool:
        """After a timeout: can the sandbox still start a process? (A fork bomb at the pids
        limit leaves the shell alive, its builtins working, and every command hanging in
        bash's fork retries.) One engine exec, only after timeouts."""
        count = 'n=0; for d in /proc/[0-9]*; do n=$((n+1)); done; echo "$n"'  # builtins only
        try:
            res = self.sandbox.exec(["/bin/sh", "-c", count], timeout=10)
        except SandboxError:
            return False
        if res.exit_code != 0 or res.timed_out:
            return False
        # A bomb can leave a slot free now and then: near the limit counts as full.
        limit = self.sandbox.config.limits.pids
        n = res.stdout.strip()
        return not (limit and n.isdigit() and int(n) >= 0.8 * limit)

    def _clear_out(self) -> str:
        """Kill every process but init, so the sandbox works again; the shells restart."""
        killed = self.sandbox.kill_processes()
        for s in (self._session, self._tool_shell):
            if s is not None:
                s.close()
        self._session = self._tool_shell = None
        self.notes.append(f"killed {killed} processes: the sandbox could not start one")
        return (f"\n[swebox: no process could start in the sandbox any more (its process limit "
                f"was full): all {killed} processes were killed; the next command runs in a new "
                f"shell in {self.workdir}]")

    def quiet(self, command: str, timeout: float = 60, limit: int = 64 * 1024**2) -> ExecResult:
        """A helper command of the tools themselves, never the agent's: it runs in a second
        persistent shell (a round trip is ~0.2 ms, against ~50 ms for an engine exec), in a
        subshell so that nothing it does persists, and falls back to a stateless exec."""
        try:
            if self._tool_shell is None or self._tool_shell.closed:
                self._tool_shell = self.sandbox.shell()
            body = f"(cd {shlex.quote(self.workdir)} 2>/dev/null; {command}\n)"
            return self._tool_shell.run(body, timeout=timeout, output_limit=limit)
        except SessionClosed:
            self._tool_shell = None
            return self.sandbox.exec(["/bin/sh", "-c", command], timeout=timeout,
                                     cwd=self.workdir)

    def write_text(self, path: str, text: str) -> None:
        """Replace a file's content, keeping its mode and owner (an edit must not show up in
        the diff as a mode change): bytes go in a temporary file, `cat` copies them over."""
        tmp = f"/tmp/.swebox-edit-{secrets.token_hex(6)}"
        self.sandbox.write_file(tmp, text.encode())
        q = shlex.quote(path)
        res = self.quiet(f"if [ -e {q} ]; then cat {tmp} > {q}; else mkdir -p \"$(dirname {q})\""
                         f" && cp {tmp} {q}; fi; rc=$?; rm -f {tmp}; exit $rc")
        if res.exit_code != 0:
            raise ToolError(f"cannot write {path}: {res.output.strip()[:300]}")

    def close(self) -> None:
        for s in (self._session, self._tool_shell):
            if s is not None:
                s.close()
        self._session = self._tool_shell = None


def cap(text: str, limit: int) -> str:
    """Head and tail of `text` within `limit` characters, the cut marked with its size."""
    if len(text) <= limit:
        return text
    head = limit // 2
    tail = limit - head
    cut = len(text) - head - tail
    return f"{text[:head]}\n[... {cut} characters of output elided ...]\n{text[-tail:]}"
