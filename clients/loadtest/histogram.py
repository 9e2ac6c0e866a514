"""Latency histograms: HdrHistogram, in microseconds, mergeable across processes.

A `Latency` records values from 1 µs to `HIGHEST_US` at three significant
digits (HdrHistogram's value equivalence: a recorded value is reported within
0.1% of itself); a value above the range is recorded as the highest (and
counted in ``clipped``), so a pathological stall still shows as the max.
Histograms travel between processes as HdrHistogram's compressed encoding.
"""

from __future__ import annotations

from collections.abc import Iterable

from hdrh.histogram import HdrHistogram

__all__ = ["HIGHEST_US", "PERCENTILES", "Latency"]

HIGHEST_US = 120_000_000  # two minutes: longer than any run's drain timeout
PERCENTILES = (50.0, 90.0, 99.0, 99.9)


class Latency:
    """One latency distribution in microseconds."""

    __slots__ = ("_histogram", "clipped")

    def __init__(self) -> None:
        """Start empty."""
        self._histogram = HdrHistogram(1, HIGHEST_US, 3)
        self.clipped = 0

    def record_ns(self, nanoseconds: int) -> None:
        """Record one latency given in nanoseconds (rounded to whole µs, >= 1)."""
        micros = max(1, (nanoseconds + 500) // 1000)
        if micros > HIGHEST_US:
            self.clipped += 1
            micros = HIGHEST_US
        self._histogram.record_value(micros)

    @property
    def count(self) -> int:
        """Return how many values were recorded."""
        return int(self._histogram.get_total_count())

    def percentile_us(self, percentile: float) -> int:
        """Return the value at ``percentile`` (0..100) in µs; 0 when empty."""
        if not self.count:
            return 0
        return int(self._histogram.get_value_at_percentile(percentile))

    def max_us(self) -> int:
        """Return the largest value recorded in µs (within 0.1%); 0 when empty."""
        return int(self._histogram.get_max_value()) if self.count else 0

    def summary_ms(self) -> dict[str, float]:
        """Return count, p50, p90, p99, p99.9 and max (ms, 3 decimals)."""
        row: dict[str, float] = {"count": self.count}
        for percentile in PERCENTILES:
            row[f"p{percentile:g}"] = self.percentile_us(percentile) / 1000
        row["max"] = self.max_us() / 1000
        return row

    def add(self, other: Latency) -> None:
        """Add every value of ``other`` to this one."""
        self._histogram.add(other._histogram)
        self.clipped += other.clipped

    def encode(self) -> str:
        """Return the compressed encoding (for another process to `decode`)."""
        return bytes(self._histogram.encode()).decode("ascii") + f"/{self.clipped}"

    @classmethod
    def decode(cls, text: str) -> Latency:
        """Return the histogram `encode` wrote."""
        encoded, _, clipped = text.rpartition("/")
        latency = cls()
        if encoded:
            latency._histogram.decode_and_add(encoded.encode("ascii"))
        latency.clipped = int(clipped)
        return latency

    @classmethod
    def merged(cls, parts: Iterable[Latency]) -> Latency:
        """Return one histogram holding the values of all ``parts``."""
        total = cls()
        for part in parts:
            total.add(part)
        return total
