"""The order ids a recorded run gave, followed from its journal alone."""

from __future__ import annotations

from exchange.messages import Command, CommandRejected, Event, OrderAccepted, PlaceOrder

__all__ = ["RecordedOrderIds", "accepted_id"]


class RecordedOrderIds:
    """Follows a journal's order ids record by record, with no state at all.

    A `PlaceOrder` without a `CommandRejected` accepted its order with the
    next id (as `replay.rebuild_books` derives it); a liquidation order's
    acceptance is journaled with its id (and a schema 1 journal's every one).
    """

    def __init__(self) -> None:
        """Start where every run starts: the first order id is 1."""
        self.next_id = 1

    def follow(self, cmd: Command, events: list[Event]) -> int | None:
        """Take one record; return the id its `PlaceOrder` got, or None."""
        placed: int | None = None
        if isinstance(cmd, PlaceOrder) and not any(
            type(e) is CommandRejected for e in events
        ):
            placed = self.next_id
        for event in events:
            if type(event) is OrderAccepted:
                if not event.liquidation and placed is not None:
                    placed = event.order_id
                self.next_id = max(self.next_id, event.order_id + 1)
        if placed is not None:
            self.next_id = max(self.next_id, placed + 1)
        return placed


def accepted_id(events: list[Event]) -> int | None:
    """Return the id of the order a `PlaceOrder` record accepted, if it did."""
    for event in events:
        if type(event) is OrderAccepted and not event.liquidation:
            return event.order_id
    return None
