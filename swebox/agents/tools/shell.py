"""The bash tool's one function: a command in the episode's persistent shell, with the timeout
enforced inside the sandbox (the command's processes are killed, the shell stays) and the
observation capped head + tail."""

from __future__ import annotations

from dataclasses import dataclass

from swebox.agents.tools.base import ToolContext, ToolError, cap


@dataclass
class BashOutcome:
    output: str
    exit_code: int
    timed_out: bool
    timeout: float
    cwd: str


def run_bash(ctx: ToolContext, command: str | None, timeout: object = None) -> BashOutcome:
    if command is None or not str(command).strip():
        raise ToolError("No command given: pass the shell command to run.")
    limit = ctx.limits
    wait = limit.bash_timeout
    if timeout not in (None, ""):
        try:
            wait = float(timeout)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ToolError(f"timeout must be a number of seconds, got {timeout!r}") from None
        if wait <= 0:
            raise ToolError(f"timeout must be positive, got {timeout!r}")
        wait = min(wait, limit.max_bash_timeout)
    # The session keeps head and tail bytes too; ask for a little more than the character cap
    # so that a multi-byte tail still fills it.
    res = ctx.run_shell(str(command), timeout=wait, limit=max(4096, limit.output_chars * 2))
    session = ctx._session
    return BashOutcome(output=cap(res.output, limit.output_chars), exit_code=res.exit_code,
                       timed_out=res.timed_out, timeout=wait,
                       cwd=session.cwd if session is not None else ctx.workdir)
