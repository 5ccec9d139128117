"""One exception tree for the whole library.

Every error carries a one-line message that says what went wrong and what to do next, and an
exit code the CLI uses. Library callers catch `SweboxError` (or a kind below it); the CLI prints
`str(err)` and exits with `err.exit_code`, showing the traceback only with `--debug`.
"""

from __future__ import annotations


class SweboxError(Exception):
    """Base of every error swebox raises on purpose."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(f"{message} ({hint})" if hint else message)


class BadInput(SweboxError):
    """The caller gave something malformed: a bad limit, a row, a flag value."""

    exit_code = 2


class ImageNotFound(SweboxError):
    """An image is neither present in the engine nor obtainable."""

    exit_code = 3


class EngineUnavailable(SweboxError):
    """The container engine (or bubblewrap) cannot be reached or used."""

    exit_code = 4


class SandboxError(SweboxError):
    """A sandbox failed to start, or an operation inside it failed."""

    exit_code = 5


class SessionClosed(SandboxError):
    """A persistent shell session ended (its shell exited or the stream broke)."""


class SandboxTimeout(SandboxError):
    """An operation (not a command: those report `timed_out`) took too long."""

    exit_code = 124


class PatchFailed(SandboxError):
    """No apply method could apply a patch."""

    exit_code = 6


class DiskFull(SweboxError):
    """Too little free disk for an image or an extraction, even after pruning what may go."""

    exit_code = 7


class CorruptData(SweboxError):
    """Bytes that fail their check: a blob whose digest does not match, a hostile layer."""

    exit_code = 8


EXIT_CODES: dict[str, int] = {
    cls.__name__: cls.exit_code
    for cls in (SweboxError, BadInput, ImageNotFound, EngineUnavailable, SandboxError,
                SandboxTimeout, PatchFailed, DiskFull, CorruptData)
}
