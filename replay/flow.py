"""A recorded flow: timed commands for a live exchange, and what became of them.

Two sources implement `Flow`: a recorded journal's order flow
(`replay.recorded_flow.RecordedFlow`) and a public market data file
(`replay.market_data.MarketFlow`). The server's replay task
(`exchange.shell.replay_feed`) paces and submits what they yield, and hands
each outcome back through `Flow.took` before it asks for the next command.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import msgspec

from exchange.messages import Command, CommandRejected, Event

__all__ = ["RECORDED_PREFIX", "Flow", "FlowCounts", "TimedCommand"]

RECORDED_PREFIX = "rec:"
"""What a recorded account's name gets in front of it in the live run."""

TimedCommand = tuple[int, Command]
"""A command and the time it was recorded at (ns since the epoch)."""


class FlowCounts(msgspec.Struct, kw_only=True):
    """What a replay did, in numbers, for its summary line."""

    read: int = 0  # recorded records or rows read
    sent: int = 0  # commands submitted to the live exchange
    rejected: int = 0  # of those, refused by the live exchange
    skipped: int = 0  # recorded system records not replayed (and index prices)
    dropped: int = 0  # cancels / amends of orders the live run never accepted

    def took(self, events: list[Event]) -> None:
        """Count one command sent, and whether the live exchange refused it."""
        self.sent += 1
        if any(type(e) is CommandRejected for e in events):
            self.rejected += 1


class Flow(Protocol):
    """Timed commands to send, in time order, and the outcomes they had."""

    counts: FlowCounts

    def __iter__(self) -> Iterator[TimedCommand]:
        """Yield ``(recorded ts_ns, command)``; the next only after `took`."""
        ...

    def took(self, events: list[Event]) -> None:
        """Take the live outcome (every event) of the command yielded last."""
        ...
