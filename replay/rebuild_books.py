"""The books' side of a rebuild: order events folded into books and trigger books.

`BookFold` applies the journal's order events (acceptances, fills, cancels
and expiries, amends, triggers) to the rebuilt books, with no matching logic
at all, and derives what the journal leaves out of them:

* an accepted order: a `PlaceOrder` record without a `CommandRejected` accepted its
  order, with the next order id, the command converted to ticks and lots
  (`validation.check_order`) and, with margin, the margin the pre-trade check
  (`Ledger.check_order`) asks at that moment: after the record's funding
  payments, before anything the order did;
* resting: a taker (a new, triggered or requeued order) rests once the events
  of its matching (its fills, their settlement, expiries) are over, if it still
  has open lots; only a GTC limit order may, and never crossing the book;
* book levels: they are the orders', nothing to rebuild.

An order's margin (reserved, released on fills and when it leaves) and a
fill's settlement are the ledger's: `BookFold` hands them to its `LedgerFold`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from exchange.codes import Refusal
from exchange.engine import validation
from exchange.engine.book import Order
from exchange.engine.matching import would_take
from exchange.engine.triggers import is_rising
from exchange.messages import (
    Event,
    OrderAccepted,
    OrderAmended,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderTriggered,
    PlaceOrder,
)
from replay.errors import Divergence

if TYPE_CHECKING:
    from exchange.core import ExchangeCore
    from exchange.engine.execution import MarketBooks
    from replay.rebuild_ledger import LedgerFold


class BookFold:
    """Applies order events to the rebuilt books, following the order in flight."""

    def __init__(self, core: ExchangeCore, ledger: LedgerFold) -> None:
        """Fold into ``core``'s books; ``ledger`` keeps the orders' margin."""
        self.core = core
        self.ledger = ledger
        # The order matching now (new, triggered or requeued), until it rests.
        self.taker: Order | None = None

    def handlers(self) -> dict[type[Event], Callable[[int, Any], None]]:
        """Return the fold of each order event type."""
        return {
            OrderAccepted: self._accept,
            OrderFilled: self._fill,
            OrderCanceled: self._cancel,
            OrderExpired: self._expire,
            OrderAmended: self._amend,
            OrderTriggered: self._trigger,
        }

    def place(self, seq: int, cmd: PlaceOrder, margin: int | None = None) -> None:
        """Accept the order of a `PlaceOrder` record that was not rejected.

        Its spec is what the core built: the command in ticks and lots, the
        next order id and, with margin, the margin the pre-trade check
        asked: ``margin`` as journaled (schema 3), else asked again of the
        ledger now. Any refusal means the log does not fit the rebuilt state.
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
        if trigger or self.ledger.ledger is None:
            margin = 0  # a parked order reserves when triggered
        elif margin is None:  # a journal from before schema 3
            margin = self.ledger.check_order(seq, cmd, price, qty, state.book)
        order_id = self.core.execution.next_order_id
        self._accept(
            seq,
            OrderAccepted.placed(seq, order_id, cmd, qty, price, trigger, margin),
        )

    def rest(self, seq: int, taker: Order) -> None:
        """End a taker's matching: what it has open joins the back of its level.

        Only a GTC limit order rests (anything else with open lots must have
        expired), and never where it would have traded.
        """
        self.taker = None
        if not taker.remaining:
            return
        spec = taker.spec
        if not taker.price or spec.tif != "GTC":
            raise Divergence(
                seq,
                f"order {taker.order_id} ({spec.type} {spec.tif}) has "
                f"{taker.remaining} lots open and neither rests nor expires",
            )
        book = self.core.markets[spec.symbol].book
        if would_take(book, taker.is_buy, taker.price):
            raise Divergence(
                seq,
                f"order {taker.order_id} would rest at {taker.price} across the book",
            )
        book.add(taker)

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
        if event.margin:
            self.ledger.reserve(seq, order, event.margin)
        if event.trigger_price:
            state = self._state(event.symbol)
            (state.mark_triggers if event.trigger_by == "mark" else state.triggers).add(
                order, event.trigger_price, is_rising(event.type, is_buy)
            )
        else:
            self.taker = order

    def _trigger(self, seq: int, event: OrderTriggered) -> None:
        """Take a triggered order out of its trigger book: it is the taker now."""
        state = self._state(event.symbol)
        order = self._open(seq, event.order_id)
        spec = order.spec
        parked = state.parked_in(order.order_id)
        if parked is None:
            raise Divergence(
                seq, f"order {order.order_id} was not waiting for a trigger"
            )
        parked.remove(order, spec.trigger_price, is_rising(spec.type, order.is_buy))
        self.taker = order
        self.ledger.reserve(seq, order, event.margin)

    def _amend(self, seq: int, event: OrderAmended) -> None:
        """Reprice or resize a resting order; its margin is reserved afresh."""
        order = self._open(seq, event.order_id)
        book = self._state(event.symbol).book
        self.ledger.release_all(order)
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
            self.taker = requeued
            self.ledger.reserve(seq, requeued, event.margin)
        else:
            book.reduce(order, event.qty)
            self.ledger.reserve(seq, order, event.margin)

    def _fill(self, seq: int, event: OrderFilled) -> None:
        """Take a fill's quantity off the in-flight taker and the resting maker."""
        taker = self.taker
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
        self.ledger.settle(seq, event, taker, maker)
        taker.remaining -= event.qty
        state = self._state(event.symbol)
        if maker.remaining == event.qty:
            state.book.remove(maker)
        else:
            state.book.reduce(maker, maker.remaining - event.qty)
        self.core.execution.next_trade_id = event.trade_id + 1
        state.last_price = event.price

    def _expire(self, seq: int, event: OrderExpired) -> None:
        """End the taker's matching with its remainder expired, or close an order."""
        if self.taker is not None and event.order_id == self.taker.order_id:
            self.ledger.release_all(self.taker)
            self.taker = None
        else:
            self._close(seq, event.order_id, event.symbol)

    def _cancel(self, seq: int, event: OrderCanceled) -> None:
        """Remove a canceled order."""
        self._close(seq, event.order_id, event.symbol)

    def _close(self, seq: int, order_id: int, symbol: str) -> None:
        """Remove an open order from its book or trigger book, freeing its margin."""
        order = self._open(seq, order_id)
        state = self._state(symbol)
        self.ledger.release_all(order)
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
