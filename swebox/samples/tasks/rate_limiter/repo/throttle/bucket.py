"""Token-bucket rate limiting."""

from __future__ import annotations

import threading
from typing import Optional

from .clock import Clock, SystemClock
from .errors import RateLimitExceeded


class TokenBucket:
    """A token bucket.

    The bucket holds at most ``capacity`` tokens and gains ``refill_rate``
    tokens per second.  Each request spends one or more tokens; requests that
    find too few tokens are refused (:meth:`try_acquire`, :meth:`consume`) or
    wait (:meth:`acquire`).

    A ``refill_rate`` of ``0`` turns the bucket into a fixed quota: once the
    initial tokens are spent it stays empty until :meth:`reset` is called.

    :param capacity: maximum number of tokens (the burst size).
    :param refill_rate: tokens added per second; ``0`` disables refilling.
    :param clock: time source, :class:`~throttle.clock.SystemClock` by default.
    :param initial: tokens in the bucket at creation (default: full).
    """

    def __init__(
        self,
        capacity: float,
        refill_rate: float,
        *,
        clock: Optional[Clock] = None,
        initial: Optional[float] = None,
    ) -> None:
        if capacity <= 0:
            raise ValueError("capacity must be positive")
        if refill_rate < 0:
            raise ValueError("refill_rate must not be negative")
        self.capacity = float(capacity)
        self.refill_rate = float(refill_rate)
        self._clock = clock if clock is not None else SystemClock()
        self._tokens = self.capacity if initial is None else float(initial)
        if not 0 <= self._tokens <= self.capacity:
            raise ValueError("initial must be between 0 and capacity")
        self._updated = self._clock.now()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self._clock.now()
        elapsed = max(0.0, now - self._updated)
        self._updated = now
        self._tokens = min(self.capacity, self._tokens + elapsed * self.refill_rate)

    def _check_cost(self, tokens: float) -> None:
        if tokens <= 0:
            raise ValueError("tokens must be positive")
        if tokens > self.capacity:
            raise ValueError(f"cannot take {tokens} tokens from a bucket of capacity {self.capacity:g}")

    @property
    def tokens(self) -> float:
        """Tokens currently available."""
        with self._lock:
            self._refill()
            return self._tokens

    def try_acquire(self, tokens: float = 1) -> bool:
        """Take ``tokens`` tokens if available; never blocks."""
        self._check_cost(tokens)
        with self._lock:
            self._refill()
            if self._tokens >= tokens:
                self._tokens -= tokens
                return True
            return False

    def retry_after(self, tokens: float = 1) -> float:
        """Seconds until ``tokens`` tokens will be available (``0.0`` if they are now)."""
        self._check_cost(tokens)
        with self._lock:
            self._refill()
            deficit = tokens - self._tokens
        if deficit <= 0:
            return 0.0
        return deficit / self.refill_rate

    def consume(self, tokens: float = 1) -> None:
        """Take ``tokens`` tokens or raise :class:`RateLimitExceeded`."""
        if not self.try_acquire(tokens):
            raise RateLimitExceeded(self.retry_after(tokens))

    def acquire(self, tokens: float = 1, *, timeout: Optional[float] = None) -> None:
        """Take ``tokens`` tokens, sleeping on the clock until they are available.

        :param timeout: give up (raising :class:`RateLimitExceeded`) instead of
            waiting longer than this many seconds in total.
        """
        deadline = None if timeout is None else self._clock.now() + timeout
        while not self.try_acquire(tokens):
            wait = self.retry_after(tokens)
            if deadline is not None and self._clock.now() + wait > deadline:
                raise RateLimitExceeded(wait)
            self._clock.sleep(wait)

    def reset(self) -> None:
        """Refill the bucket to capacity."""
        with self._lock:
            self._tokens = self.capacity
            self._updated = self._clock.now()

    def __repr__(self) -> str:
        return f"<TokenBucket capacity={self.capacity:g} refill_rate={self.refill_rate:g}/s>"
