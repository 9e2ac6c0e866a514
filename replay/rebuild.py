"""Rebuild: fold journaled events into state, with no matching logic at all.

The journal holds each record and the facts its processing decided (fills,
rejects, cancels and expiries, amends, triggers, wallets, positions and the
insurance fund after every change, liquidation steps, funding, ADL), so state
can be reconstructed by applying them in order to empty books and an empty
ledger. The result must have the same `state_hash` as the live exchange and
as a rerun of the commands; any event that does not fit the state it meets
raises `Divergence`.

What the journal leaves out (`exchange.messages.DERIVED_EVENTS`) is derived
here, in the place the core emitted it:

* an accepted order: a `PlaceOrder` record without an `CommandRejected` accepted
  its order, with the next order id, the command converted to ticks and lots
  (`validation.check_order`) and, with margin, the margin the pre-trade check
  (`Ledger.check_order`) asks at that moment: after the record's funding
  payments, before anything the order did;
* resting: a taker (a new, triggered or requeued order) rests once the events
  of its matching (its fills, their settlement, expiries) are over, if it still
  has open lots; only a GTC limit order may, and never crossing the book;
* book levels: they are the orders', nothing to rebuild.

With margin, three parts of the ledger are not in any snapshot event and are
derived the way the live core derives them, through the same `Ledger` methods
so the arithmetic cannot drift:

* order margin: reserved at acceptance (as above) and from ``OrderAmended`` /
  ``OrderTriggered.margin``, released pro rata on fills (`Ledger.release`) and
  whole on cancel, expiry and amend (`Ledger.release_all`);
* fees collected: the sum of the fills' ``taker_fee`` and ``maker_fee``. Those
  are exactly what settlement adds (`Ledger.settle` books each fill with the
  fees it carries). ``PositionChanged.fee`` reports the same numbers today but
  is a report per position change, not the booking, so it is only checked
  against the fill's fee, never summed;
* funding windows: advanced when a record moves exchange time (the payments
  themselves are logged); the exchange day too, and each account's PnL of the
  day is booked (`Account.book_day`) from the ``realized`` and ``fee`` of the
  position changes a fill or a deleveraging caused;
* mark state: the index price is an outside fact read from the record's
  `SetIndexPrice` command; trades feed the last price; at the end of every
  record the marks the core would refresh (symbols with an index or a fill in
  the record) are refreshed with `Ledger.refresh_mark` on the rebuilt book,
  and the `MarkPriceChanged` events that produces must equal the logged ones.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, assert_never

from exchange.codes import Refusal
from exchange.core import ExchangeCore
from exchange.engine import validation
from exchange.engine.book import Order
from exchange.engine.execution import MarketBooks
from exchange.engine.matching import would_take
from exchange.engine.triggers import is_rising
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
    Liquidate,
    LiquidationSkipped,
    MarginCall,
    MarkPriceChanged,
    OrderAccepted,
    OrderAmended,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRested,
    OrderTriggered,
    PlaceOrder,
    PositionChanged,
    PositionDeleveraged,
    PositionLiquidated,
    Record,
    RiskLimitsSet,
    SetIndexPrice,
)
from replay.errors import Divergence

if TYPE_CHECKING:
    from exchange.margin.ledger import Ledger

__all__ = ["Rebuilder"]


LedgerEvent = (
    BalanceChanged
    | PositionChanged
    | InsuranceFundChanged
    | MarkPriceChanged
    | MarginCall
    | PositionDeleveraged
    | PositionLiquidated
    | LiquidationSkipped
    | FundingPaid
    | RiskLimitsSet
)

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
    """Applies logged events to an empty exchange state, checking as it goes."""

    def __init__(self, markets: Iterable[Market], *, margin: bool = False) -> None:
        """Start from empty books (and an empty ledger with ``margin``)."""
        self.core = ExchangeCore(markets, margin=margin)  # the state container only
        self.ledger: Ledger | None = self.core.ledger
        # The order matching now (new, triggered or requeued), until it rests.
        self._taker: Order | None = None
        # Per record: symbols whose mark the core refreshes, in the core's order,
        # and the marks the log reports for them.
        self._marks_touched: dict[str, None] = {}
        self._logged_marks: list[MarkPriceChanged] = []
        self._produced_marks: list[Event] = []
        # Position changes the record's fills still owe, in settlement order:
        # (account, symbol, size change, fee).
        self._settling: deque[tuple[str, str, int, int]] = deque()
        # Size changes no fill explains, until auto-deleveraging explains them.
        self._unexplained: dict[tuple[str, str], int] = {}
        # Funding boundaries the record's time crossed: (symbol, time, rate).
        self._funding_ticks: set[tuple[str, int, int]] = set()
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
        cmd = record.command
        placing = cmd if isinstance(cmd, PlaceOrder) else None
        funding = bool(self._funding_ticks)
        for event in events:
            if placing is not None and not (funding and type(event) in _FUNDING_EVENTS):
                if type(event) is not CommandRejected:
                    self._place(seq, placing)
                placing = None
            taker = self._taker
            if taker is not None and (
                event.taker_order_id != taker.order_id
                if type(event) is OrderFilled
                else type(event) not in _SETTLING_EVENTS
            ):
                self._rest(seq, taker)
            self._apply(seq, event)
        if placing is not None:
            self._place(seq, placing)
        if self._taker is not None:  # a taker never outlives its record
            self._rest(seq, self._taker)
        self._end(seq)

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
            if self.ledger is not None:  # the same clock step as the live core
                self._funding_ticks = {
                    (symbol, tick.ts_ns, tick.rate_e8)
                    for symbol, tick in self.ledger.on_time(ts_ns)
                }
        if isinstance(cmd, SetIndexPrice):
            self._index(seq, cmd, events)
        elif isinstance(cmd, Liquidate) and core.liquidator is not None:
            # `Liquidator.run` forgets the request before anything else
            core.liquidator.pending.pop((cmd.account, cmd.symbol), None)

    def _end(self, seq: int) -> None:
        """Check that the record's fills all settled; refresh and compare marks."""
        if self._settling:
            account, symbol, _, _ = self._settling[0]
            raise Divergence(
                seq, f"a fill of {account} in {symbol} has no position change"
            )
        if self._unexplained:
            raise Divergence(
                seq,
                f"positions {sorted(self._unexplained)} changed "
                "size without a fill or a deleveraging",
            )
        self._funding_ticks.clear()
        self._refresh_marks(seq)

    def _apply(self, seq: int, event: Event) -> None:  # noqa: C901, PLR0912
        """Apply one event."""
        core = self.core
        match event:
            case OrderAccepted():
                self._accept(seq, event)
            case OrderFilled():
                self._fill(seq, event)
            case OrderCanceled():
                self._close(seq, event.order_id, event.symbol)
            case OrderExpired():
                if self._taker is not None and event.order_id == self._taker.order_id:
                    self._release_all(self._taker)
                    self._taker = None
                else:
                    self._close(seq, event.order_id, event.symbol)
            case OrderAmended():
                self._amend(seq, event)
            case OrderTriggered():
                state = self._state(event.symbol)
                order = self._open(seq, event.order_id)
                spec = order.spec
                parked = state.parked_in(order.order_id)
                if parked is None:
                    raise Divergence(
                        seq, f"order {order.order_id} was not waiting for a trigger"
                    )
                parked.remove(
                    order, spec.trigger_price, is_rising(spec.type, order.is_buy)
                )
                self._taker = order
                self._reserve(seq, order, event.margin)
            case CheckpointTaken():
                self.checkpoints += 1
                if core.state_hash() != event.state_hash:
                    raise Divergence(
                        seq, "rebuilt state hash differs from the checkpoint's"
                    )
            case CommandRejected() | AllCanceled():
                pass
            case OrderRested() | BookDelta():
                pass  # derived: `journaled_events` left them out
            case _:
                self._apply_ledger(seq, event)

    def _apply_ledger(self, seq: int, event: LedgerEvent) -> None:  # noqa: C901, PLR0912
        """Apply one event of the margin ledger (and its liquidations)."""
        match event:
            case BalanceChanged():
                self._balance(seq, event)
            case PositionChanged():
                self._position(seq, event)
            case InsuranceFundChanged():
                ledger = self._ledger(seq)
                if event.amount != event.balance - ledger.insurance_fund:
                    raise Divergence(
                        seq,
                        f"insurance fund moves {event.amount} from "
                        f"{ledger.insurance_fund} to {event.balance}",
                    )
                ledger.insurance_fund = event.balance
                ledger.bad_debt = event.bad_debt
            case MarkPriceChanged():
                # The core refreshes every touched mark in one round, then fires
                # mark triggers (whose fills touch marks again) and repeats: a
                # logged change marks a round, so refresh what is touched here,
                # against the book as it stood at that moment.
                self._refresh_round(seq)
                self._logged_marks.append(event)
            case MarginCall():
                liquidator = self.core.liquidator
                if liquidator is None:
                    raise Divergence(seq, "a margin call without margin")
                liquidator.pending[event.account, event.symbol] = None
            case PositionDeleveraged():
                self._deleveraged(seq, event)
            case PositionLiquidated():
                self._liquidated(seq, event)
            case FundingPaid():
                ledger = self._ledger(seq)
                tick = (event.symbol, event.funding_ts_ns, event.rate)
                if tick not in self._funding_ticks or (
                    event.mark != ledger.markets[event.symbol].mark
                ):
                    raise Divergence(
                        seq, f"funding {event!r} is not due at this time, rate and mark"
                    )
            case RiskLimitsSet():
                account = self._ledger(seq).account(event.account)
                account.max_order_margin_ppm = event.max_order_margin_ppm
                account.daily_loss_limit = event.daily_loss_limit
            case LiquidationSkipped():
                pass
            case _:
                assert_never(event)

    # ------------------------------------------------------------ orders

    def _place(self, seq: int, cmd: PlaceOrder) -> None:
        """Accept the order of a `PlaceOrder` record that was not rejected.

        Its spec is what the core built: the command in ticks and lots, the
        next order id and, with margin, the margin the pre-trade check asks
        now. Any refusal means the log does not fit the rebuilt state.
        """
        state = self.core.markets.get(cmd.symbol)
        if state is None:
            raise Divergence(
                seq, f"an order in unknown symbol {cmd.symbol!r} was not rejected"
            )
        checked = validation.check_order(state.market, cmd)
        if isinstance(checked, Refusal):
            raise Divergence(
                seq, f"an order the core refuses was not rejected: {checked.reason}"
            )
        price, qty, trigger = checked
        margin = 0
        if self.ledger is not None and not trigger:
            needed = self.ledger.check_order(
                cmd.account,
                cmd.symbol,
                cmd.side == "buy",
                price,
                qty,
                cmd.reduce_only,
                state.book,
            )
            if isinstance(needed, Refusal):
                raise Divergence(
                    seq,
                    f"an order the ledger refuses was not rejected: {needed.reason}",
                )
            margin = needed
        order_id = self.core.execution.next_order_id
        self._accept(
            seq,
            OrderAccepted.placed(seq, order_id, cmd, qty, price, trigger, margin),
        )

    def _accept(self, seq: int, event: OrderAccepted) -> None:
        """Create an accepted order: parked if it has a trigger, else the taker."""
        core = self.core
        core.execution.next_order_id = event.order_id + 1
        is_buy = event.side == "buy"
        order = Order(
            event.order_id, event.account, is_buy, event.price, event.qty, event
        )
        if event.client_order_id:
            core.execution.client_ids[event.account, event.client_order_id] = (
                event.order_id
            )
        self._reserve(seq, order, event.margin)
        if event.trigger_price:
            state = self._state(event.symbol)
            (state.mark_triggers if event.trigger_by == "mark" else state.triggers).add(
                order, event.trigger_price, is_rising(event.type, is_buy)
            )
        else:
            self._taker = order

    def _rest(self, seq: int, taker: Order) -> None:
        """End a taker's matching: what it has open joins the back of its level.

        Only a GTC limit order rests (anything else with open lots must have
        expired), and never where it would have traded.
        """
        self._taker = None
        if not taker.remaining:
            return
        spec = taker.spec
        if not taker.price or spec.tif != "GTC":
            raise Divergence(
                seq,
                f"order {taker.order_id} ({spec.type} {spec.tif}) has "
                f"{taker.remaining} lots open and neither rests nor expires",
            )
        book = self._state(spec.symbol).book
        if would_take(book, taker.is_buy, taker.price):
            raise Divergence(
                seq,
                f"order {taker.order_id} would rest at {taker.price} across the book",
            )
        book.add(taker)

    def _amend(self, seq: int, event: OrderAmended) -> None:
        """Reprice or resize a resting order; its margin is reserved afresh."""
        order = self._open(seq, event.order_id)
        book = self._state(event.symbol).book
        self._release_all(order)
        if event.requeued:
            book.remove(order)
            requeued = Order(
                order.order_id,
                order.account,
                order.is_buy,
                event.price,
                event.qty,
                order.spec,
            )
            self._taker = requeued
            self._reserve(seq, requeued, event.margin)
        else:
            book.reduce(order, event.qty)
            self._reserve(seq, order, event.margin)

    def _fill(self, seq: int, event: OrderFilled) -> None:
        """Take a fill's quantity off the in-flight taker and the resting maker."""
        taker = self._taker
        if (
            taker is None
            or taker.order_id != event.taker_order_id
            or taker.remaining < event.qty
        ):
            raise Divergence(
                seq,
                f"fill {event.trade_id}: taker {event.taker_order_id} is not in flight",
            )
        maker = self._open(seq, event.maker_order_id)
        if maker.price != event.price or maker.remaining < event.qty:
            raise Divergence(seq, f"fill {event.trade_id} does not fit maker {maker}")
        if self.ledger is not None:
            self._settle(event, taker, maker)
        elif event.taker_fee or event.maker_fee:
            raise Divergence(seq, f"fill {event.trade_id} charges fees without margin")
        taker.remaining -= event.qty
        book = self._state(event.symbol).book
        if maker.remaining == event.qty:
            book.remove(maker)
        else:
            book.reduce(maker, maker.remaining - event.qty)
        self.core.execution.next_trade_id = event.trade_id + 1
        self._state(event.symbol).last_price = event.price

    def _close(self, seq: int, order_id: int, symbol: str) -> None:
        """Remove an open order from its book or trigger book, freeing its margin."""
        order = self._open(seq, order_id)
        state = self._state(symbol)
        self._release_all(order)
        parked = state.parked_in(order_id)
        if parked is not None:
            spec = order.spec
            parked.remove(order, spec.trigger_price, is_rising(spec.type, order.is_buy))
        else:
            state.book.remove(order)

    def _open(self, seq: int, order_id: int) -> Order:
        """Return an open order or raise `Divergence`."""
        order = self.core.execution.index.get(order_id)
        if order is None:
            raise Divergence(seq, f"order {order_id} is not open")
        return order

    def _state(self, symbol: str) -> MarketBooks:
        """Return a market's state."""
        return self.core.markets[symbol]

    # ------------------------------------------------------------ ledger

    def _ledger(self, seq: int) -> Ledger:
        """Return the ledger, or raise `Divergence` for a margin event without one."""
        if self.ledger is None:
            raise Divergence(seq, "a margin event in a journal recorded without margin")
        return self.ledger

    def _reserve(self, seq: int, order: Order, margin: int) -> None:
        """Hold the margin the log says the ledger reserved for ``order``."""
        if margin:
            self._ledger(seq).reserve(order, margin)

    def _release_all(self, order: Order) -> None:
        """Free all the margin an order leaving the book holds, as the core does."""
        if self.ledger is not None:
            self.ledger.release_all(order)

    def _settle(self, fill: OrderFilled, taker: Order, maker: Order) -> None:
        """Do a fill's bookkeeping that no snapshot event carries.

        Called before the fill's lots leave ``taker`` and ``maker``, so their
        ``remaining`` is the open quantity the core's release saw.
        """
        ledger = self.ledger
        assert ledger is not None
        ledger.release(maker, fill.qty, maker.remaining)
        ledger.release(taker, fill.qty, taker.remaining)
        ledger.fees_collected += fill.taker_fee + fill.maker_fee
        ledger.markets[fill.symbol].on_trade(fill.price)  # as `Ledger.settle`
        self._marks_touched[fill.symbol] = None
        taker_lots = fill.qty if fill.taker_side == "buy" else -fill.qty
        self._settling.append(
            (fill.taker_account, fill.symbol, taker_lots, fill.taker_fee)
        )
        self._settling.append(
            (fill.maker_account, fill.symbol, -taker_lots, fill.maker_fee)
        )

    def _balance(self, seq: int, event: BalanceChanged) -> None:
        """Set a cross wallet from the log, checking the move against the last one."""
        ledger = self._ledger(seq)
        account = ledger.account(event.account)
        if event.wallet < 0 or event.amount != event.wallet - account.wallet:
            raise Divergence(
                seq,
                f"{event.account}'s wallet moves {event.amount} from "
                f"{account.wallet} to {event.wallet}",
            )
        account.wallet = event.wallet
        if event.reason == "deposit":
            ledger.deposits += event.amount
        elif event.reason == "withdraw":
            ledger.withdrawals -= event.amount

    def _position(self, seq: int, event: PositionChanged) -> None:
        """Set a position from its snapshot, checking what can be checked.

        A change owed by a fill must move the size by the fill's lots and pay
        its fee. Any other change pays no fee; if it moves the size (only
        auto-deleveraging does), the `PositionDeleveraged` that follows must
        account for it before the record ends.
        """
        ledger = self._ledger(seq)
        if event.symbol not in ledger.markets:
            raise Divergence(seq, f"position in unknown symbol {event.symbol!r}")
        owner = ledger.account(event.account)
        position = owner.position(event.symbol)
        key = (event.account, event.symbol)
        # A fill or a deleveraging (the only size changes) books the day's PnL.
        settled = bool(self._settling) or event.size != position.size
        if self._settling:
            account, symbol, lots, fee = self._settling.popleft()
        else:
            account, symbol, lots, fee = *key, event.size - position.size, 0
            if lots:
                self._unexplained[key] = self._unexplained.get(key, 0) + lots
        if (
            (account, symbol) != key
            or event.size - position.size != lots
            or event.fee != fee
            or (not event.size and event.cost)
            or event.margin < 0
            or (event.mode == "cross" and event.margin)
            or event.leverage < 1
        ):
            raise Divergence(
                seq,
                f"position change {event!r} does not follow "
                f"{position.row()} (expected {lots:+} lots of "
                f"{account} {symbol}, fee {fee})",
            )
        if settled:
            owner.book_day(ledger.day, event.realized - event.fee)
        position.size = event.size
        position.cost = event.cost
        position.margin = event.margin
        position.mode = event.mode
        position.leverage = event.leverage

    def _liquidated(self, seq: int, event: PositionLiquidated) -> None:
        """Check a liquidation's lots add up and the position kept ``left`` lots."""
        account = self._ledger(seq).accounts.get(event.account)
        position = None if account is None else account.positions.get(event.symbol)
        left = 0 if position is None else abs(position.size)
        if event.filled + event.deleveraged != event.qty or left != event.left:
            raise Divergence(
                seq,
                f"liquidation of {event.qty} lots filled {event.filled} and "
                f"deleveraged {event.deleveraged}, leaving {event.left}; the "
                f"position holds {left}",
            )

    def _deleveraged(self, seq: int, event: PositionDeleveraged) -> None:
        """Explain a deleveraging's two size changes: opposite, ``qty`` lots each."""
        unexplained = self._unexplained
        moved = unexplained.pop((event.account, event.symbol), 0)
        bankrupt = (event.counterparty, event.symbol)
        rest = unexplained.pop(bankrupt, 0) + moved
        if abs(moved) != event.qty or rest:
            raise Divergence(
                seq,
                f"deleveraging of {event.qty} lots between "
                f"{event.account} and {event.counterparty} does "
                "not match their position changes",
            )

    def _index(self, seq: int, cmd: SetIndexPrice, events: list[Event]) -> None:
        """Take an index price the core accepted (an outside fact of the record)."""
        if any(isinstance(e, CommandRejected) for e in events):
            return
        if cmd.symbol not in self.core.markets:
            raise Divergence(
                seq, f"index price for unknown symbol {cmd.symbol!r} was not rejected"
            )
        # The book is the one the core saw: nothing before the index moves it.
        self._ledger(seq).markets[cmd.symbol].take_index(
            cmd.price, self.core.ts_ns, self._state(cmd.symbol).book
        )
        self._marks_touched[cmd.symbol] = None

    def _refresh_round(self, seq: int) -> None:
        """Refresh every touched mark now, as one round of the core's refresh loop."""
        if self._marks_touched:
            ledger = self._ledger(seq)
            for symbol in self._marks_touched:
                ledger.markets[symbol].refresh_mark(
                    seq,
                    self._state(symbol).book,
                    self.core.ts_ns,
                    self._produced_marks,
                )
            self._marks_touched.clear()

    def _refresh_marks(self, seq: int) -> None:
        """Finish the record's last refresh round; compare the marks with the log."""
        self._refresh_round(seq)
        produced, logged = self._produced_marks, self._logged_marks
        if produced != logged:
            raise Divergence(
                seq, f"mark prices {produced!r} rebuilt, log says {logged!r}"
            )
        produced.clear()
        logged.clear()
