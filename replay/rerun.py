"""Rerun: feed logged commands through a fresh core and compare event by event.

With the journal's own markets a rerun must reproduce every journaled event
exactly (`journaled_events` of its output against those of the log: derived
events are not journaled, and a schema 1 log's are ignored);
the first difference is reported with both versions. With other settings (a
what-if) differences are expected: `rerun` then just collects the new events
for the caller to analyse.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from exchange.core import ExchangeCore
from exchange.journal.payload import Journaled, journaled_events
from exchange.markets import Market
from exchange.messages import Event

__all__ = ["FirstDifference", "Rerunner"]


class FirstDifference(msgspec.Struct, frozen=True):
    """Where a rerun first produced something else than the log."""

    seq: int
    index: int  # position of the differing event among its record's journaled
    logged: Event | None
    rerun: Event | None

    def describe(self) -> str:
        """Return a two-line human description."""
        return (
            f"record {self.seq}, event #{self.index}:\n"
            f"  logged: {self.logged!r}\n  rerun:  {self.rerun!r}"
        )


class Rerunner:
    """A fresh core fed the logged commands, one journaled record at a time."""

    def __init__(self, markets: Iterable[Market], *, margin: bool = False) -> None:
        """Start from empty books for ``markets`` (the log's, or a what-if's).

        ``margin`` runs the margin ledger, as the journal's exchange did or not.
        """
        self.core = ExchangeCore(markets, margin=margin)
        self.first_difference: FirstDifference | None = None

    def state_hash(self) -> str:
        """Return the canonical hash of the rerun state."""
        return self.core.state_hash()

    def apply(self, entry: Journaled) -> list[Event]:
        """Rerun one record; note the first difference from its logged events.

        Returns every event the core produced, derived ones included.
        """
        events = self.core.handle(entry.record)
        if self.first_difference is None:
            produced = journaled_events(events)
            logged = journaled_events(entry.events)
            if produced != logged:
                self.first_difference = _first_difference(
                    entry.record.seq, logged, produced
                )
        return events


def _first_difference(
    seq: int, logged: list[Event], events: list[Event]
) -> FirstDifference:
    """Locate the first journaled event that differs between log and rerun."""
    for i in range(max(len(logged), len(events))):
        a = logged[i] if i < len(logged) else None
        b = events[i] if i < len(events) else None
        if a != b:
            return FirstDifference(seq, i, a, b)
    msg = "events differ but no differing position was found"
    raise AssertionError(msg)
