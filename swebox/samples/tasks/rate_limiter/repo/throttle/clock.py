"""Clocks used by the limiters.

Limiters never call :mod:`time` directly; they ask a clock for the current
time and to sleep.  Production code uses :class:`SystemClock`; tests and
simulations use :class:`ManualClock`, which only moves when told to.
"""

from __future__ import annotations

import time
from typing import List

try:  # Python 3.8+
    from typing import Protocol
except ImportError:  # pragma: no cover
    Protocol = object  # type: ignore[assignment]


class Clock(Protocol):
    """The interface limiters need from a clock."""

    def now(self) -> float:
        """Current time in seconds (monotonic, arbitrary epoch)."""

    def sleep(self, seconds: float) -> None:
        """Block for ``seconds`` seconds."""


class SystemClock:
    """Real time, based on :func:`time.monotonic`."""

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class ManualClock:
    """A clock that only advances when :meth:`advance` or :meth:`sleep` is called.

    Every call to :meth:`sleep` is recorded in :attr:`sleeps`, which makes it
    easy to assert how long a blocking call would have waited.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)
        self.sleeps: List[float] = []

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("cannot move a clock backwards")
        self._now += seconds

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(max(seconds, 0.0))
