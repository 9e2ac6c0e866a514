"""Per-account request rate limits: a token bucket per account, in integers.

As real venues limit request weight per time window (Binance answers -1003
TOO_MANY_REQUESTS), the session admits at most ``per_second`` requests a
second per account on average, with bursts of up to ``burst``. Every request
the session reads counts one (each command of a batch, and each query); a
redelivery answered from memory counts nothing. A refused request is told
how many milliseconds to wait (``retry_after_ms``).

The bucket is kept in thousandths of a request so refills need no float:
``per_second`` thousandths refill per millisecond of the clock the session
is given.
"""

from __future__ import annotations

from exchange.units import ceil_div

__all__ = ["RateLimits"]

_UNIT = 1000  # one request, in thousandths


class RateLimits:
    """Token buckets by account: ``admit`` says yes, or how long to wait."""

    def __init__(self, per_second: int, burst: int = 0) -> None:
        """Allow ``per_second`` requests a second and bursts of ``burst`` (0: the rate).

        Raises:
            ValueError: If ``per_second`` is below 1 or ``burst`` is negative.
        """
        if per_second < 1 or burst < 0:
            msg = f"need per_second >= 1 and burst >= 0, got {per_second}, {burst}"
            raise ValueError(msg)
        self.per_second = per_second
        self.capacity = (burst or per_second) * _UNIT
        self._buckets: dict[str, tuple[int, int]] = {}  # account -> (level, at ms)

    def admit(self, account: str, now_ms: int) -> int:
        """Take one request from ``account``'s bucket; return 0, or ms to wait.

        A clock that goes back refills nothing (the bucket keeps its time).
        """
        level, at = self._buckets.get(account, (self.capacity, now_ms))
        if now_ms > at:
            level = min(self.capacity, level + (now_ms - at) * self.per_second)
            at = now_ms
        if level < _UNIT:
            self._buckets[account] = (level, at)
            # rounds up: after this wait one whole request has refilled
            return ceil_div(_UNIT - level, self.per_second)
        self._buckets[account] = (level - _UNIT, at)
        return 0
