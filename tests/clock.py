"""A clock for the in-process `Exchange` under test: time moves when the test says.

The facade stamps every record with its clock. A clock that only ticks 1 ns
per call never reaches a funding time or a new day; this one does on demand,
as the wall clock does in real use.
"""

from __future__ import annotations

HOUR_NS = 3600 * 10**9
# 2024-03-01 07:00:00 UTC: an hour before the 08:00 funding time, 17 h before a new day
START_NS = 1_709_276_400 * 10**9


class ManualClock:
    """A nanosecond clock that ticks 1 ns per reading and jumps on `advance`."""

    def __init__(self, start_ns: int = START_NS) -> None:
        """Start at ``start_ns`` (default: 07:00 UTC, an hour before funding)."""
        self.now = start_ns

    def __call__(self) -> int:
        """Return the next timestamp (1 ns after the last one)."""
        self.now += 1
        return self.now

    def advance(self, ns: int) -> None:
        """Move the clock ``ns`` nanoseconds forward."""
        self.now += ns


class FixedClock:
    """A nanosecond clock that stands still until the test moves ``now``.

    Two runs of the same commands then stamp the same times, however many
    records (liquidations) each one journals in between.
    """

    def __init__(self, start_ns: int = START_NS) -> None:
        """Start at ``start_ns``."""
        self.now = start_ns

    def __call__(self) -> int:
        """Return ``now``."""
        return self.now
