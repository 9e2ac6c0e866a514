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

from collections.abc import Callable, Iterable
from typing import Any

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
    LiquidationSkipped,
    OrderExpired,
    OrderFilled,
    OrderRested,
    PlaceOrder,
    PositionChanged,
)
from replay.errors import Divergence
from replay.rebuild_books import BookFold
from replay.rebuild_ledger import COMMANDS_TAKEN, LedgerFold

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
        self._handlers = _event_folds(self)

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

    def apply(self, entry: Journaled) -> None:  # noqa: C901 -- one frame: hot
        """Fold one journaled record's events into the state.

        Only the journaled events count (`journaled_events`): a schema 1
        entry's derived ones, or those of the core's whole output, are
        derived here again rather than read.

        Raises:
            Divergence: if an event contradicts the rebuilt state.
        """
        # The hot loop of every replay: one call per record and one handler
        # call per event, found by the event's type (the types are final).
        record = entry.record
        seq = record.seq
        cmd = record.command
        events = entry.events
        if events:  # nearly half the records have none: skip the call
            events = journaled_events(events)
        core = self.core
        if seq != core.last_seq + 1:
            raise Divergence(seq, f"record follows seq {core.last_seq}")
        core.last_seq = seq
        ledger = self.ledger_fold
        # Exchange time, exactly as `ExchangeCore.handle` moves it.
        ts_ns = record.ts_ns
        if type(cmd) is AdvanceTime:
            ts_ns = max(ts_ns, cmd.ts_ns)
        if ts_ns > core.ts_ns:
            core.ts_ns = ts_ns
            ledger.on_time(ts_ns)
        if type(cmd) in COMMANDS_TAKEN:
            ledger.take_command(seq, cmd, events)
        books = self.book_fold
        handlers = self._handlers
        placing = None
        if type(cmd) is PlaceOrder:
            placing = cmd
            funding = ledger.funding_due
        for event in events:
            kind = type(event)
            if placing is not None and not (funding and kind in _FUNDING_EVENTS):
                if kind is not CommandRejected:
                    books.place(seq, placing, entry.margin)
                placing = None
            taker = books.taker
            if taker is not None and (
                event.taker_order_id != taker.order_id  # type: ignore[union-attr]
                if kind is OrderFilled
                else kind not in _SETTLING_EVENTS
            ):
                books.rest(seq, taker)
            handlers[kind](seq, event)
        if placing is not None:
            books.place(seq, placing, entry.margin)
        if books.taker is not None:  # a taker never outlives its record
            books.rest(seq, books.taker)
        ledger.end(seq)

    def _checkpoint(self, seq: int, event: CheckpointTaken) -> None:
        """Check the rebuilt state against the hash the live exchange journaled."""
        self.checkpoints += 1
        if self.core.state_hash() != event.state_hash:
            raise Divergence(seq, "rebuilt state hash differs from the checkpoint's")


def _nothing(seq: int, event: Event) -> None:
    """Fold an event that changes no state: a reject, or a derived event."""


def _event_folds(rebuilder: Rebuilder) -> dict[type[Event], Callable[[int, Any], None]]:
    """Return the fold of every event type: the books', the ledger's, the rest.

    Derived events (`OrderRested`, `BookDelta`) are in no journal of schema
    2; those of schema 1 are left out by `journaled_events` before this.
    """
    return {
        **rebuilder.book_fold.handlers(),
        **rebuilder.ledger_fold.handlers(),
        CheckpointTaken: rebuilder._checkpoint,  # noqa: SLF001 -- its own method
        CommandRejected: _nothing,
        AllCanceled: _nothing,  # its orders' cancels are events of their own
        OrderRested: _nothing,
        BookDelta: _nothing,
        LiquidationSkipped: _nothing,  # a note: the liquidation changed nothing
    }
