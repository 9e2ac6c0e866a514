"""The requests a journal says already ran: a restarted server's request memory.

The gateway's session remembers every request (by request id, and a new
order also by client order id) for the receive window, so a retry under the
same id is answered with the original outcome instead of running twice
(`exchange.gateway.memory`). That memory lives in the process; after a crash
it is gone, yet a bot whose request was journaled but never acknowledged
(the crash came first) retries it under the same ids. Two things keep such a
retry from running twice:

* the sequencer journals each command with the request id it came in under
  (`exchange.journal.payload.Journaled.origin`), and on start the server
  reads back the records of the last receive window (`recent_requests`)
  into the session's memory, answers included (`Session.restore`);
* a retry older than the window is refused as stale by its timestamp, and
  a new order whose client order id is still open is refused by the core
  (`DUPLICATE_CLIENT_ORDER_ID`): the client order ids live in the state, so
  they survive in snapshots and rebuilds.

The journal leaves order acceptances out (they are derived), so a new
order's id is recovered by counting: every accepted `PlaceOrder` and every
liquidation order takes the next order id, and the core after the last
record holds the id after them all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import msgspec

from exchange.journal.payload import JOURNALED_DECODER, journaled_events
from exchange.messages import CommandRejected, Event, OrderAccepted, PlaceOrder, Record

if TYPE_CHECKING:
    from exchange.journal.reader import ReadableJournal

__all__ = ["JournaledRequest", "recent_requests", "window_start"]


class JournaledRequest(NamedTuple):
    """A journaled command that came in as a request, and what it decided."""

    request_id: str
    record: Record
    events: list[Event]
    """The record's journaled events."""
    order_id: int
    """The order a new order's record accepted; 0 for other commands or a reject."""


class _Stamp(msgspec.Struct, array_like=True):
    """A record's seq and time, the rest left undecoded."""

    seq: int
    ts_ns: int
    command: msgspec.Raw


class _Head(msgspec.Struct, array_like=True):
    """A journaled payload with only its record's stamp decoded."""

    record: _Stamp
    events: msgspec.Raw
    origin: str = ""


_HEAD_DECODER = msgspec.msgpack.Decoder(_Head)


def _stamp(payload: bytes | memoryview) -> int:
    """Return the exchange time of a journaled payload's record."""
    return _HEAD_DECODER.decode(payload).record.ts_ns


def window_start(reader: ReadableJournal, since_ns: int) -> int:
    """Return the first seq stamped ``since_ns`` or later (past the last if none).

    A binary search over the records (exchange time never goes back), so
    only the window itself is read, whatever the journal's length.
    """
    return reader.bisect(_stamp, since_ns)


def recent_requests(
    reader: ReadableJournal, since_ns: int, next_order_id: int
) -> list[JournaledRequest]:
    """Return the journaled requests stamped ``since_ns`` or later, in seq order.

    Args:
        reader: The journal, read to its end (it must be intact: recovery
            checked it).
        since_ns: The oldest exchange time of interest (the receive window).
        next_order_id: The core's next order id after the journal's last
            record, from which the ids of the window's new orders are counted.
    """
    window: list[tuple[str, Record, list[Event], int]] = []
    taken = 0  # order ids the window's records took
    for _, payload in reader.read(window_start(reader, since_ns)):
        if _stamp(payload) < since_ns:
            continue
        entry = JOURNALED_DECODER.decode(payload)
        events = journaled_events(entry.events)
        record = entry.record
        placed = isinstance(record.command, PlaceOrder) and not any(
            type(e) is CommandRejected for e in events
        )
        window.append((entry.origin, record, events, taken + 1 if placed else 0))
        taken += placed + sum(type(e) is OrderAccepted for e in events)
    first_id = next_order_id - taken  # the id the window's first new order took
    return [
        JournaledRequest(origin, record, events, first_id + nth - 1 if nth else 0)
        for origin, record, events, nth in window
        if origin
    ]
