"""What one load process measures: latencies from intended times, and the counts.

Coordinated omission: every latency is measured from the request's
*intended* send time (the schedule's), not from when the sender got round to
sending it. A sender (or a server) that stalls therefore shows the whole wait
of every request that was due during the stall, as a user with that rate of
orders would see it. `Pacer` hands out the due requests; `Probe` keeps one
histogram per metric per phase and per second of the run.

Metrics: ``order`` (new order -> its answer), ``cancel`` and ``amend`` (->
answer), ``fill`` (new order -> its first fill), ``md`` (a public trade's
exchange time -> its receipt here, on the same wall clock), ``other``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

from clients.loadtest.histogram import Latency

__all__ = ["METRICS", "Pacer", "Pending", "Probe"]

METRICS = ("order", "cancel", "amend", "fill", "md", "other")
_NS = 1_000_000_000
_LATE_NS = 1_000_000  # a send this far behind its intended time counts as late


class Pacer:
    """Intended send times (absolute ns, ascending) handed out as they fall due."""

    __slots__ = ("_next", "_times")

    def __init__(self, times: Sequence[tuple[int, int]]) -> None:
        """Pace ``times``: ``(intended_ns, phase)`` pairs in ascending order."""
        self._times = times
        self._next = 0

    def __bool__(self) -> bool:
        """Return True while requests remain."""
        return self._next < len(self._times)

    def due(self, now_ns: int) -> Iterator[tuple[int, int]]:
        """Yield every ``(intended_ns, phase)`` at or before ``now_ns``, once each."""
        times = self._times
        while self._next < len(times) and times[self._next][0] <= now_ns:
            yield times[self._next]
            self._next += 1

    def wait_ns(self, now_ns: int) -> int:
        """Return how long until the next request is due (0: now; -1: none left)."""
        if not self:
            return -1
        return max(0, self._times[self._next][0] - now_ns)


class Pending(NamedTuple):
    """A request sent and not yet answered."""

    intended_ns: int
    phase: int
    metric: str


class Probe:
    """Counts and latency histograms of one process's requests."""

    def __init__(
        self,
        start_ns: int,
        phases: int,
        phase_of: Callable[[int], int] = lambda _offset_ns: 0,
    ) -> None:
        """Measure a run whose schedule starts at wall time ``start_ns``.

        ``phase_of`` maps an offset into the run (ns) to its phase's index.
        """
        self.start_ns = start_ns
        self.phases = phases
        self.phase_of = phase_of
        self.pending: dict[str, Pending] = {}
        self.answered_ids: set[str] = set()
        self.awaiting_fill: dict[str, tuple[int, int]] = {}  # cid -> (intended, phase)
        self.by_phase = {m: [Latency() for _ in range(phases)] for m in METRICS}
        self.by_second: dict[str, dict[int, Latency]] = {m: {} for m in METRICS}
        self.offered = [0] * phases
        self.answered_in_phase = [0] * phases
        self.sent = 0
        self.late = 0
        self.accepted = 0
        self.rejects: Counter[str] = Counter()
        self.duplicates = 0
        self.unsolicited = 0
        self.md_messages = 0
        self.timeline: dict[str, Counter[int]] = {
            "offered": Counter(),
            "sent": Counter(),
            "answered": Counter(),
        }
        self.evidence: list[tuple[str, str, int]] = []  # (account, op, seq) accepted

    def _second(self, at_ns: int) -> int:
        """Return the second of the run ``at_ns`` falls in."""
        return (at_ns - self.start_ns) // _NS

    def _record(self, metric: str, phase: int, intended_ns: int, now_ns: int) -> None:
        """Record one latency under its phase and the second it was intended in."""
        latency = now_ns - intended_ns
        self.by_phase[metric][phase].record_ns(latency)
        second = self._second(intended_ns)
        per_second = self.by_second[metric]
        histogram = per_second.get(second)
        if histogram is None:
            histogram = per_second[second] = Latency()
        histogram.record_ns(latency)

    def sent_request(
        self,
        request_id: str,
        intended_ns: int,
        phase: int,
        metric: str,
        now_ns: int,
        cid: str = "",
    ) -> None:
        """Note a request that left at ``now_ns`` but was meant for ``intended_ns``."""
        self.pending[request_id] = Pending(intended_ns, phase, metric)
        if phase >= 0:
            self.offered[phase] += 1
            self.timeline["offered"][self._second(intended_ns)] += 1
            self.timeline["sent"][self._second(now_ns)] += 1
        self.sent += 1
        if now_ns - intended_ns > _LATE_NS:
            self.late += 1
        if cid:
            self.awaiting_fill[cid] = (intended_ns, phase)

    def answered(
        self,
        request_id: str,
        now_ns: int,
        reject: str | None,
        evidence: tuple[str, str, int] | None = None,
    ) -> Pending | None:
        """Note the answer to a request; return it, or None if not awaited.

        ``reject`` is the reject code's name (None: accepted). An answer to a
        request already answered is counted as a duplicate; to one never sent
        here, as unsolicited.
        """
        pending = self.pending.pop(request_id, None)
        if pending is None:
            if request_id in self.answered_ids:
                self.duplicates += 1
            else:
                self.unsolicited += 1
            return None
        self.answered_ids.add(request_id)
        if pending.phase >= 0:
            self._record(pending.metric, pending.phase, pending.intended_ns, now_ns)
            self.answered_in_phase[pending.phase] += 1
            self.timeline["answered"][self._second(now_ns)] += 1
        if reject is None:
            self.accepted += 1
            if evidence is not None:
                self.evidence.append(evidence)
        else:
            self.rejects[reject] += 1
        return pending

    def filled(self, cid: str, now_ns: int) -> None:
        """Note a fill of the order with client id ``cid`` (its first counts)."""
        waiting = self.awaiting_fill.pop(cid, None)
        if waiting is not None and waiting[1] >= 0:
            self._record("fill", waiting[1], waiting[0], now_ns)

    def order_ended(self, cid: str) -> None:
        """Forget an order that ended without a fill (canceled, expired)."""
        self.awaiting_fill.pop(cid, None)

    def market_data(self, exchange_ns: int, now_ns: int) -> None:
        """Note a public message stamped ``exchange_ns`` received at ``now_ns``.

        Only messages stamped during the run are measured (a snapshot of
        older state would look late).
        """
        self.md_messages += 1
        offset = exchange_ns - self.start_ns
        if offset >= 0:
            self._record("md", self.phase_of(offset), exchange_ns, now_ns)

    def result(self) -> dict[str, Any]:
        """Return everything measured, as plain data another process can read."""
        return {
            "by_phase": {
                m: [h.encode() for h in hs] for m, hs in self.by_phase.items()
            },
            "by_second": {
                m: {str(s): h.encode() for s, h in hs.items()}
                for m, hs in self.by_second.items()
            },
            "offered": self.offered,
            "answered_in_phase": self.answered_in_phase,
            "sent": self.sent,
            "late": self.late,
            "accepted": self.accepted,
            "rejects": dict(self.rejects),
            "duplicates": self.duplicates,
            "unsolicited": self.unsolicited,
            "unanswered": len(self.pending),
            "md_messages": self.md_messages,
            "timeline": {
                k: {str(s): n for s, n in c.items()} for k, c in self.timeline.items()
            },
            "evidence": self.evidence,
        }
