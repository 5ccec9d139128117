"""Exceptions raised by the limiters."""


class RateLimitExceeded(Exception):
    """The limiter refused a request.

    :attr retry_after: seconds until the request could succeed.
    """

    def __init__(self, retry_after: float, message: str = "") -> None:
        self.retry_after = retry_after
        super().__init__(message or f"rate limit exceeded; retry after {retry_after:.3f}s")
