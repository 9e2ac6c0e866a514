"""The journal's payload: what it stores per record, and which schema it is.

A record's events less those replay can derive (`DERIVED_EVENTS`), with the
record itself: the `Journaled` struct every backend stores as one frame.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from exchange.journal.base import JournalHeader
from exchange.markets import Market, config_hash, market_table
from exchange.messages import (
    ENCODER,
    BookDelta,
    Event,
    OrderAccepted,
    OrderRested,
    Record,
)

__all__ = [
    "DERIVED_EVENTS",
    "JOURNALED_DECODER",
    "JOURNAL_SCHEMA",
    "READABLE_JOURNAL_SCHEMAS",
    "Journaled",
    "exchange_header",
    "journal_payload",
    "journaled_events",
    "placed_margin",
]


class Journaled(msgspec.Struct, frozen=True, array_like=True):
    """What the journal stores per record: the input and the facts it decided.

    ``events`` are the record's events less the derived ones (see
    `journaled_events`), in the order the core emitted them. Journals of
    schema 1 held every event; readers filter those with `journaled_events`.

    ``origin`` is the request id the command came in under (a gateway's,
    unique per account), "" for system commands and commands from a library
    caller. The core never sees it: a restarted server reads it back to
    recognise a retried request that already ran (`exchange.shell.requests`).

    ``margin`` (schema 3) is the margin the pre-trade check asked of the
    order the record placed (`placed_margin`): the one fact of a derived
    acceptance that needs the whole ledger to recompute, so replay takes it
    from here instead. None in older journals (replay then asks the ledger).
    Readers that know fewer fields skip the trailing ones.
    """

    record: Record
    events: list[Event]
    origin: str = ""
    margin: int | None = None


JOURNAL_SCHEMA = 3
"""Version of the journal payload (``Journaled``) written today.

1: every event of every record. 2: only what cannot be derived (below).
3: also the margin of the order a record placed (``Journaled.margin``).
"""

READABLE_JOURNAL_SCHEMAS = frozenset({1, 2, 3})
"""Payload versions replay reads: a schema 1 journal's derived events are ignored,
and the margins of schema 1 and 2 journals' new orders are recomputed."""


def exchange_header(markets: Iterable[Market], *, margin: bool) -> JournalHeader:
    """Return the header of a new exchange journal: today's schema and the config.

    A journal reopened with the same markets and margin setting matches it.
    """
    markets = list(markets)
    return JournalHeader(
        schema_version=JOURNAL_SCHEMA,
        config_hash=config_hash(markets),
        config={"markets": market_table(markets), "margin": margin},
        first_seq=1,
    )


DERIVED_EVENTS: frozenset[type[Event]] = frozenset(
    {OrderAccepted, OrderRested, BookDelta}
)
"""Events the journal leaves out: replay recomputes them without matching.

The core still returns them to its caller, who publishes them (acks, market
data). An `OrderAccepted` follows from its record's `PlaceOrder`, the next
order id and the pre-trade margin check; `OrderRested` from a taker's open
quantity after its fills (a GTC limit order that did not expire); a
`BookDelta` from the orders in the book. Every other event is a fact only
matching (or the ledger's judgement in it) decides, and is journaled, as is
the `OrderAccepted` of a liquidation order: its size and price are the
liquidator's, not a command's.
"""


def journaled_events(events: list[Event]) -> list[Event]:
    """Return the events of a record that the journal keeps, in order."""
    # A loop, not a comprehension: on CPython 3.11 this runs on every record,
    # and a comprehension (a function call of its own) costs 40% more here.
    kept: list[Event] = []
    for event in events:
        if type(event) not in DERIVED_EVENTS or (
            type(event) is OrderAccepted and event.liquidation
        ):
            kept.append(event)  # noqa: PERF401 -- see above
    return kept


JOURNALED_DECODER = msgspec.msgpack.Decoder(Journaled)


def placed_margin(events: list[Event]) -> int:
    """Return the margin of the order a record placed (its acceptance's), else 0."""
    for event in events:
        if type(event) is OrderAccepted and not event.liquidation:
            return event.margin
    return 0


def journal_payload(record: Record, events: list[Event], origin: str = "") -> bytes:
    """Encode a record, its journaled events, request id and new order's margin."""
    kept = journaled_events(events)
    return ENCODER.encode(Journaled(record, kept, origin, placed_margin(events)))
