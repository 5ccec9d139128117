"""Sliding-window-log rate limiting."""

from __future__ import annotations

import threading
from collections import deque
from typing import Deque, Optional

from .clock import Clock, SystemClock
from .errors import RateLimitExceeded


class SlidingWindowLimiter:
    """Allow at most ``limit`` events in any ``window``-second interval.

    Unlike a fixed window this never allows a burst of ``2 * limit`` events
    around a window boundary; the price is remembering the timestamp of every
    event in the current window.
    """

    def __init__(self, limit: int, window: float, *, clock: Optional[Clock] = None) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        if window <= 0:
            raise ValueError("window must be positive")
        self.limit = int(limit)
        self.window = float(window)
        self._clock = clock if clock is not None else SystemClock()
        self._events: Deque[float] = deque()
        self._lock = threading.Lock()

    def _evict(self, now: float) -> None:
        horizon = now - self.window
        while self._events and self._events[0] <= horizon:
            self._events.popleft()

    def try_acquire(self) -> bool:
        """Record an event if the limit allows it; never blocks."""
        with self._lock:
            now = self._clock.now()
            self._evict(now)
            if len(self._events) < self.limit:
                self._events.append(now)
                return True
            return False

    def consume(self) -> None:
        """Record an event or raise :class:`RateLimitExceeded`."""
        if not self.try_acquire():
            raise RateLimitExceeded(self.retry_after())

    def remaining(self) -> int:
        """Events still allowed right now."""
        with self._lock:
            self._evict(self._clock.now())
            return self.limit - len(self._events)

    def retry_after(self) -> float:
        """Seconds until the next event would be allowed (``0.0`` if now)."""
        with self._lock:
            now = self._clock.now()
            self._evict(now)
            if len(self._events) < self.limit:
                return 0.0
            return self._events[0] + self.window - now
