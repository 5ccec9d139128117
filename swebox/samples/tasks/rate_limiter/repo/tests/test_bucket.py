import pytest

from throttle import ManualClock, RateLimitExceeded, TokenBucket


@pytest.fixture
def clock():
    return ManualClock(start=100.0)


def test_starts_full_and_drains(clock):
    bucket = TokenBucket(capacity=3, refill_rate=1, clock=clock)
    assert bucket.tokens == 3
    assert [bucket.try_acquire() for _ in range(4)] == [True, True, True, False]


def test_refills_over_time_up_to_capacity(clock):
    bucket = TokenBucket(capacity=4, refill_rate=2, clock=clock, initial=0)
    clock.advance(0.5)
    assert bucket.tokens == 1
    clock.advance(10)
    assert bucket.tokens == 4


def test_retry_after(clock):
    bucket = TokenBucket(capacity=4, refill_rate=2, clock=clock, initial=1)
    assert bucket.retry_after(1) == 0.0
    assert bucket.retry_after(4) == 1.5


def test_consume_raises_with_retry_after(clock):
    bucket = TokenBucket(capacity=2, refill_rate=4, clock=clock)
    bucket.consume(2)
    with pytest.raises(RateLimitExceeded) as excinfo:
        bucket.consume()
    assert excinfo.value.retry_after == 0.25
    assert "retry after 0.250s" in str(excinfo.value)


def test_acquire_sleeps_on_the_clock(clock):
    bucket = TokenBucket(capacity=2, refill_rate=2, clock=clock, initial=0)
    bucket.acquire(2)
    assert clock.sleeps == [1.0]
    assert clock.now() == 101.0
    assert bucket.tokens == 0


def test_acquire_timeout(clock):
    bucket = TokenBucket(capacity=10, refill_rate=1, clock=clock, initial=0)
    with pytest.raises(RateLimitExceeded) as excinfo:
        bucket.acquire(5, timeout=2)
    assert excinfo.value.retry_after == 5
    assert clock.sleeps == []


@pytest.mark.parametrize(
    "kwargs",
    [
        {"capacity": 0, "refill_rate": 1},
        {"capacity": 5, "refill_rate": -1},
        {"capacity": 5, "refill_rate": 1, "initial": 6},
    ],
    ids=["zero-capacity", "negative-rate", "initial-above-capacity"],
)
def test_invalid_configuration(kwargs):
    with pytest.raises(ValueError):
        TokenBucket(**kwargs)


def test_cost_larger_than_capacity_is_rejected(clock):
    bucket = TokenBucket(capacity=2, refill_rate=1, clock=clock)
    with pytest.raises(ValueError, match="capacity"):
        bucket.acquire(3)


def test_reset(clock):
    bucket = TokenBucket(capacity=5, refill_rate=0.5, clock=clock, initial=0)
    bucket.reset()
    assert bucket.tokens == 5
