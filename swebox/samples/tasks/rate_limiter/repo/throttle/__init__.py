"""throttle - in-process rate limiters with injectable clocks."""

from .bucket import TokenBucket
from .clock import Clock, ManualClock, SystemClock
from .errors import RateLimitExceeded
from .window import SlidingWindowLimiter

__all__ = [
    "Clock",
    "ManualClock",
    "RateLimitExceeded",
    "SlidingWindowLimiter",
    "SystemClock",
    "TokenBucket",
]

__version__ = "0.9.2"
