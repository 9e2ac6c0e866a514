"""Rebuild: fold journaled events into state, with no matching logic at all.

The journal holds each record and the facts its processing decided (fills,
rejects, cancels and expiries, amends, triggers, wallets, positions and the
insurance fund after every change, liquidation steps, funding, ADL), so state
can be reconstructed by applying them in order to empty books and an empty
ledger. The result must have the same `state_hash` as the live exchange and
as a rerun of the commands; any event that does not fit the state it meets
raises `Divergence`.

What the journal leaves out (`exchange.journal.payload.DERIVED_EVENTS`) is
derived here, in the place the core emitted it. As the core owns the engine
and the ledger, the `Rebuilder` owns the two sides of the fold and meets them
record by record:

* `BookFold` (`replay.rebuild_books`) applies the order events to the books
  and derives accepted orders, resting and book levels;
* `LedgerFold` (`replay.rebuild_ledger`) applies the ledger events to the
  margin ledger, checking each, and derives order margin, fees collected,
  funding windows and mark state.

The `Rebuilder` itself keeps the record's seq and exchange time, and the order
of its events: a `PlaceOrder` accepts its order after the record's funding
payments, and the order in flight rests once its matching's events are over.
"""

from __future__ import annotations

from collections.abc import Iterable

from exchange.core import ExchangeCore
from exchange.journal.payload import Journaled, journaled_events
from exchange.markets import Market
from exchange.messages import (
    AdvanceTime,
    AllCanceled,
    BalanceChanged,
    BookDelta,
    CheckpointTaken,
    CommandRejected,
    Event,
    FundingPaid,
    InsuranceFundChanged,
    OrderAccepted,
    OrderAmended,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRested,
    OrderTriggered,
    PlaceOrder,
    PositionChanged,
    Record,
)
from replay.errors import Divergence
from replay.rebuild_books import BookFold
from replay.rebuild_ledger import LedgerFold

__all__ = ["Rebuilder"]


# What funding pays at the start of a record, before the command acts.
_FUNDING_EVENTS = frozenset(
    {FundingPaid, BalanceChanged, PositionChanged, InsuranceFundChanged}
)
# What may follow a taker's fills before it rests: their settlement, and the
# expiries of the taker's remainder or of makers self-trade prevention ended.
_SETTLING_EVENTS = frozenset(
    {BalanceChanged, PositionChanged, InsuranceFundChanged, OrderExpired}
)


class Rebuilder:
    """Applies logged events to an exchange state, checking as it goes."""

    def __init__(
        self,
        markets: Iterable[Market],
        *,
        margin: bool = False,
        core: ExchangeCore | None = None,
    ) -> None:
        """Start from empty books (and an empty ledger with ``margin``), or ``core``.

        ``core`` is a state to go on from, e.g. one restored from a snapshot
        (`ExchangeCore.restored`): the records applied next must be the ones
        after its ``last_seq``. ``markets`` and ``margin`` are then its own.
        """
        # the state container only: its matching logic is never used here
        self.core = ExchangeCore(markets, margin=margin) if core is None else core
        self.ledger = self.core.ledger
        self.ledger_fold = LedgerFold(self.core)
        self.book_fold = BookFold(self.core, self.ledger_fold)
        self.checkpoints = 0

    def state_hash(self) -> str:
        """Return the canonical hash of the rebuilt state."""
        return self.core.state_hash()

    def resume(self) -> ExchangeCore:
        """Return the rebuilt core, ready to handle the records that follow.

        Its derived indexes (reduce-only orders at rest, the liquidation
        index) are re-derived first; it then behaves as the live core did.
        Stop applying log entries to this rebuilder once resumed.
        """
        self.core.restore_indexes()
        return self.core

    def apply(self, entry: Journaled) -> None:
        """Fold one journaled record's events into the state.

        Only the journaled events count (`journaled_events`): a schema 1
        entry's derived ones, or those of the core's whole output, are
        derived here again rather than read.

        Raises:
            Divergence: if an event contradicts the rebuilt state.
        """
        record = entry.record
        seq = record.seq
        events = journaled_events(entry.events)
        self._begin(record, events)
        books = self.book_fold
        cmd = record.command
        placing = cmd if isinstance(cmd, PlaceOrder) else None
        funding = self.ledger_fold.funding_due
        for event in events:
            if placing is not None and not (funding and type(event) in _FUNDING_EVENTS):
                if type(event) is not CommandRejected:
                    books.place(seq, placing)
                placing = None
            taker = books.taker
            if taker is not None and (
                event.taker_order_id != taker.order_id
                if type(event) is OrderFilled
                else type(event) not in _SETTLING_EVENTS
            ):
                books.rest(seq, taker)
            self._apply(seq, event)
        if placing is not None:
            books.place(seq, placing)
        if books.taker is not None:  # a taker never outlives its record
            books.rest(seq, books.taker)
        self.ledger_fold.end(seq)

    def _begin(self, record: Record, events: list[Event]) -> None:
        """Take the record's seq and time, and the outside facts it brings."""
        core = self.core
        seq = record.seq
        if seq != core.last_seq + 1:
            raise Divergence(seq, f"record follows seq {core.last_seq}")
        core.last_seq = seq
        cmd = record.command
        # Exchange time, exactly as `ExchangeCore.handle` moves it.
        ts_ns = record.ts_ns
        if isinstance(cmd, AdvanceTime):
            ts_ns = max(ts_ns, cmd.ts_ns)
        if ts_ns > core.ts_ns:
            core.ts_ns = ts_ns
            self.ledger_fold.on_time(ts_ns)
        self.ledger_fold.take_command(seq, cmd, events)

    def _apply(self, seq: int, event: Event) -> None:
        """Apply one event: an order event to the books, the rest to the ledger."""
        match event:
            case (
                OrderAccepted()
                | OrderFilled()
                | OrderCanceled()
                | OrderExpired()
                | OrderAmended()
                | OrderTriggered()
            ):
                self.book_fold.apply(seq, event)
            case CheckpointTaken():
                self.checkpoints += 1
                if self.core.state_hash() != event.state_hash:
                    raise Divergence(
                        seq, "rebuilt state hash differs from the checkpoint's"
                    )
            case CommandRejected() | AllCanceled():
                pass
            case OrderRested() | BookDelta():
                pass  # derived: `journaled_events` left them out
            case _:
                self.ledger_fold.apply(seq, event)
