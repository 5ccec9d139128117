import pytest

from throttle import ManualClock, RateLimitExceeded, SlidingWindowLimiter


def test_allows_up_to_limit_per_window():
    clock = ManualClock()
    limiter = SlidingWindowLimiter(limit=3, window=10, clock=clock)
    assert [limiter.try_acquire() for _ in range(4)] == [True, True, True, False]
    assert limiter.remaining() == 0


def test_window_slides():
    clock = ManualClock()
    limiter = SlidingWindowLimiter(limit=2, window=10, clock=clock)
    limiter.try_acquire()
    clock.advance(4)
    limiter.try_acquire()
    assert limiter.retry_after() == 6
    clock.advance(6)
    assert limiter.remaining() == 1
    assert limiter.try_acquire()
    assert not limiter.try_acquire()


def test_consume_raises():
    clock = ManualClock()
    limiter = SlidingWindowLimiter(limit=1, window=2.5, clock=clock)
    limiter.consume()
    with pytest.raises(RateLimitExceeded) as excinfo:
        limiter.consume()
    assert excinfo.value.retry_after == 2.5


def test_invalid_configuration():
    with pytest.raises(ValueError):
        SlidingWindowLimiter(limit=0, window=1)
    with pytest.raises(ValueError):
        SlidingWindowLimiter(limit=1, window=0)
