"""Offered load: when each request is meant to leave, phase by phase.

A schedule is a list of `Segment`s, each ramping linearly from one rate to
another over its duration (a constant rate ramps to itself). `intended_offsets`
places request *k* where the integral of the rate reaches *k*, so the offered
load is exact, not a random draw. These intended times are what latency is
measured from (coordinated omission: a sender that falls behind does not hide
the wait it caused). Spec strings, for the command line:

    constant:RATE                        RATE requests/s throughout
    ramp:FROM:TO[:PHASES]                linear from FROM to TO (PHASES reported, 5)
    step:R1,R2,...                       equal steps at each rate
    burst:BASE:PEAK:EVERY:WIDTH          BASE, with PEAK for WIDTH s every EVERY s
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Schedule", "Segment", "parse_schedule"]


@dataclass(frozen=True, slots=True)
class Segment:
    """From ``start_s`` to ``end_s``, the rate going ``rate_from`` to ``rate_to``."""

    phase: str
    start_s: float
    end_s: float
    rate_from: float
    rate_to: float

    @property
    def duration_s(self) -> float:
        """Return the segment's length in seconds."""
        return self.end_s - self.start_s

    def expected(self) -> float:
        """Return how many requests the segment offers (the rate's integral)."""
        return (self.rate_from + self.rate_to) / 2 * self.duration_s

    def time_of(self, count: float) -> float:
        """Return the offset into the segment where ``count`` requests were offered."""
        r0, duration = self.rate_from, self.duration_s
        slope = (self.rate_to - r0) / duration
        if abs(slope) < 1e-12:
            return count / r0
        # r0 t + slope t^2 / 2 = count
        return (-r0 + math.sqrt(r0 * r0 + 2 * slope * count)) / slope


@dataclass(frozen=True, slots=True)
class Schedule:
    """Segments back to back from 0 s, as the spec ``spec`` described them."""

    spec: str
    segments: tuple[Segment, ...]

    @property
    def duration_s(self) -> float:
        """Return the schedule's length in seconds."""
        return self.segments[-1].end_s if self.segments else 0.0

    def phases(self) -> list[str]:
        """Return the phase names, in order of first appearance."""
        return list(dict.fromkeys(s.phase for s in self.segments))

    def phase_seconds(self) -> dict[str, float]:
        """Return how long the schedule spends in each phase."""
        seconds = dict.fromkeys(self.phases(), 0.0)
        for segment in self.segments:
            seconds[segment.phase] += segment.duration_s
        return seconds

    def intended_offsets(self) -> list[tuple[int, int]]:
        """Return ``(offset_ns, phase index)`` of every request, in time order.

        Request *k* (from 1) leaves where the rate's integral reaches *k*; a
        fraction left over at a segment's end carries into the next.
        """
        index = {name: i for i, name in enumerate(self.phases())}
        offsets: list[tuple[int, int]] = []
        carried = 0.0  # requests offered so far, fractional
        for segment in self.segments:
            expected = segment.expected()
            if expected <= 0:
                carried += expected
                continue
            phase = index[segment.phase]
            k = math.floor(carried) + 1
            while k - carried <= expected + 1e-9:
                at = segment.start_s + segment.time_of(k - carried)
                offsets.append((round(at * 1e9), phase))
                k += 1
            carried += expected
        return offsets

    def phase_index_at(self, offset_ns: int) -> int:
        """Return the index of the phase at ``offset_ns`` (the last one after it)."""
        names = self.phases()
        offset_s = offset_ns / 1e9
        for segment in self.segments:
            if offset_s < segment.end_s:
                return names.index(segment.phase)
        return names.index(self.segments[-1].phase)


def _rate(text: str) -> float:
    """Parse a non-negative rate."""
    value = float(text)
    if not math.isfinite(value) or value < 0:
        msg = f"rate {text!r} is not a non-negative number"
        raise ValueError(msg)
    return value


def parse_schedule(spec: str, duration_s: float) -> Schedule:
    """Return the schedule a spec string names, over ``duration_s`` seconds.

    Raises:
        ValueError: the spec is not one of the forms in the module docstring.
    """
    if duration_s <= 0:
        msg = "the duration must be positive"
        raise ValueError(msg)
    kind, _, rest = spec.partition(":")
    args = rest.split(":") if rest else []
    try:
        segments = _segments(kind, args, duration_s)
    except (ValueError, IndexError) as exc:
        msg = f"schedule {spec!r}: {exc} (see paperx loadtest --help)"
        raise ValueError(msg) from exc
    return Schedule(spec, tuple(segments))


def _segments(kind: str, args: list[str], duration: float) -> list[Segment]:
    """Return the segments of one schedule kind."""
    if kind == "constant" and len(args) == 1:
        rate = _rate(args[0])
        return [Segment(f"constant {rate:g}/s", 0.0, duration, rate, rate)]
    if kind == "ramp" and len(args) in {2, 3}:
        low, high = _rate(args[0]), _rate(args[1])
        parts = int(args[2]) if len(args) == 3 else 5
        if parts < 1:
            msg = "a ramp needs at least one phase"
            raise ValueError(msg)
        step = duration / parts
        rates = [low + (high - low) * i / parts for i in range(parts + 1)]
        return [
            Segment(
                f"ramp {rates[i]:.0f}-{rates[i + 1]:.0f}/s",
                i * step,
                (i + 1) * step,
                rates[i],
                rates[i + 1],
            )
            for i in range(parts)
        ]
    if kind == "step" and len(args) == 1:
        rates = [_rate(r) for r in args[0].split(",")]
        step = duration / len(rates)
        return [
            Segment(f"step {i + 1} {r:g}/s", i * step, (i + 1) * step, r, r)
            for i, r in enumerate(rates)
        ]
    if kind == "burst" and len(args) == 4:
        base, peak = _rate(args[0]), _rate(args[1])
        every, width = float(args[2]), float(args[3])
        if not 0 < width < every:
            msg = "a burst needs 0 < WIDTH < EVERY"
            raise ValueError(msg)
        segments: list[Segment] = []
        start = 0.0
        while start < duration:
            calm_end = min(start + every - width, duration)
            segments.append(Segment(f"base {base:g}/s", start, calm_end, base, base))
            burst_end = min(start + every, duration)
            if burst_end > calm_end:
                segments.append(
                    Segment(f"burst {peak:g}/s", calm_end, burst_end, peak, peak)
                )
            start += every
        return segments
    msg = (
        "expected constant:RATE, ramp:FROM:TO[:PHASES], step:R1,R2,... "
        "or burst:BASE:PEAK:EVERY:WIDTH"
    )
    raise ValueError(msg)
