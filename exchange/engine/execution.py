"""Execution: the books and what happens to an accepted order in them.

`Execution` holds every market's book and trigger books, the order indexes
and id counters, and the steps an accepted order goes through: matching,
fills (priced and settled by the `RiskGate` it is given, the margin ledger,
when there is one), resting or expiring, stops and take-profits firing,
cancels, and the book deltas all of that causes. `OrderEntry` decides what to
accept; the liquidator sends its orders through `place_liquidation` and
`cancel_orders`, the two calls of its `LiquidationOrders` interface.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from exchange.codes import Refusal, RejectCode
from exchange.engine.book import Order, OrderBook
from exchange.engine.matching import STP_MODES, can_fill, match, would_take
from exchange.engine.triggers import TriggerBook, is_rising
from exchange.messages import (
    BookDelta,
    Event,
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRested,
    OrderTriggered,
    Side,
)
from exchange.units import PPM, ceil_div

if TYPE_CHECKING:
    from collections.abc import Iterable

    from exchange.engine.risk import RiskGate
    from exchange.markets import Market

__all__ = ["Execution", "MarketBooks"]


class MarketBooks:
    """Everything the core keeps per symbol: spec, book, triggers, last price."""

    __slots__ = ("book", "last_price", "mark_triggers", "market", "triggers")

    def __init__(
        self,
        market: Market,
        index: dict[int, Order],
        by_account: dict[str, dict[int, Order]],
    ) -> None:
        """Create an empty market sharing the exchange's order indexes."""
        self.market = market
        self.book = OrderBook(market.symbol, index, by_account)
        self.triggers = TriggerBook(index, by_account)  # fire on the last trade
        self.mark_triggers = TriggerBook(index, by_account)  # fire on the mark
        self.last_price: int | None = None

    def parked_in(self, order_id: int) -> TriggerBook | None:
        """Return the trigger book holding an untriggered order, else None."""
        if order_id in self.triggers:
            return self.triggers
        return self.mark_triggers if order_id in self.mark_triggers else None


class Execution:
    """Books, triggers, order indexes and id counters of every market."""

    def __init__(self, markets: Iterable[Market], risk: RiskGate | None) -> None:
        """Create empty books for ``markets``; ``risk`` hooks in margin (or None)."""
        self.risk = risk
        self.index: dict[int, Order] = {}
        self.by_account: dict[str, dict[int, Order]] = {}
        self.markets: dict[str, MarketBooks] = {
            m.symbol: MarketBooks(m, self.index, self.by_account) for m in markets
        }
        # (account, client id) -> order id; entries of closed orders are pruned lazily.
        self.client_ids: dict[tuple[str, str], int] = {}
        self.next_order_id = 1
        self.next_trade_id = 1
        # Levels changed by the current record, in first-touch order (never a set:
        # set order depends on string hashing, which differs between processes).
        self._touched: dict[tuple[MarketBooks, bool, int], None] = {}
        # Symbols whose mark may have moved during the current record.
        self.marks_touched: dict[str, None] = {}
        # Reduce-only orders resting in a book, by account (entries of orders
        # that closed are pruned when looked at): trimmed when positions shrink.
        self.resting_reduce_only: dict[str, dict[int, Order]] = {}
        # Scratch lists reused by every match (cleared after use): no allocation
        # per command on the hot path.
        self._fills: list[tuple[Order, int, int]] = []
        self._expired: list[tuple[Order, int]] = []

    # ------------------------------------------------------------ execution

    def execute(
        self, seq: int, state: MarketBooks, order: Order, events: list[Event]
    ) -> None:
        """Match an accepted order, report its fills, then rest or expire the rest."""
        spec = order.spec
        book = state.book
        limit = order.price or self._market_limit(state, order.is_buy)
        fills = self._fills
        expired = self._expired
        if limit is None or would_take(book, order.is_buy, limit):
            remaining, stp_stopped = match(
                book,
                order.is_buy,
                order.account,
                limit,
                order.remaining,
                STP_MODES[spec.stp],
                fills,
                expired,
            )
        else:  # most limit orders do not cross: skip the matching walk
            remaining, stp_stopped = order.remaining, False
        if fills:
            self._report_fills(seq, state, order, fills, events)
            fills.clear()
        if expired:
            for maker, open_qty in expired:
                self.touch(state, maker.is_buy, maker.price)
                self._expire(seq, maker, open_qty, "stp_maker", events)
            expired.clear()
        if not remaining:
            return
        order.remaining = remaining
        if stp_stopped or not order.price or spec.tif != "GTC":  # market: never rests
            reason = "stp_taker" if stp_stopped else "ioc"
            self._expire(seq, order, remaining, reason, events)
            return
        book.add(order)
        if spec.reduce_only:
            self.resting_reduce_only.setdefault(order.account, {})[order.order_id] = (
                order
            )
        self.touch(state, order.is_buy, order.price)
        events.append(
            OrderRested(
                seq=seq,
                order_id=order.order_id,
                symbol=spec.symbol,
                side=spec.side,
                price=order.price,
                qty=remaining,
            )
        )

    def _market_limit(self, state: MarketBooks, is_buy: bool) -> int | None:
        """Return a market order's price protection in ticks (None: no limit).

        With a mark, a market order trades only within the market's band around
        it, so a thin book cannot fill it at any price (and a trader closing an
        isolated position cannot lose far more than the bucket that way).
        """
        if self.risk is None:
            return None
        mark = self.risk.mark(state.market.symbol)
        if not mark:
            return None
        band = mark * state.market.market_band_ppm // PPM
        tick = state.market.tick_size
        # the band's edge on the tick grid, rounded to stay inside the band
        return (mark + band) // tick if is_buy else ceil_div(mark - band, tick)

    def _report_fills(
        self,
        seq: int,
        state: MarketBooks,
        taker: Order,
        fills: list[tuple[Order, int, int]],
        events: list[Event],
    ) -> None:
        """Turn matched ``(maker, price, qty)`` tuples into `OrderFilled` events."""
        symbol = state.market.symbol
        taker_side: Side = "buy" if taker.is_buy else "sell"
        trade_id = self.next_trade_id
        last_level = None
        risk = self.risk
        taker_open = taker.remaining
        for maker, price, qty in fills:
            taker_fee = maker_fee = 0
            if risk is not None:
                taker_fee, maker_fee = risk.fees(symbol, price, qty)
                if taker.spec.liquidation:
                    taker_fee = 0  # a liquidation pays the clearance fee instead
            fill = OrderFilled(
                seq=seq,
                trade_id=trade_id,
                symbol=symbol,
                price=price,
                qty=qty,
                taker_order_id=taker.order_id,
                taker_account=taker.account,
                taker_side=taker_side,
                maker_order_id=maker.order_id,
                maker_account=maker.account,
                taker_fee=taker_fee,
                maker_fee=maker_fee,
            )
            events.append(fill)
            if risk is not None:  # 3. settle
                risk.release(maker, qty, maker.remaining + qty)
                risk.release(taker, qty, taker_open)
                taker_open -= qty
                risk.settle(seq, fill, events)
            trade_id += 1
            if price != last_level:
                self.touch(state, maker.is_buy, price)
                last_level = price
        self.next_trade_id = trade_id
        state.last_price = fills[-1][1]
        if risk is not None:
            self.marks_touched[symbol] = None

    def fire_triggers(
        self,
        seq: int,
        state: MarketBooks,
        events: list[Event],
        *,
        by_mark: bool = False,
    ) -> None:
        """Run every stop / take-profit its price has reached, one at a time.

        ``by_mark``: the mark-price triggers (the mark in E8 against triggers on
        the tick grid), else those on the last trade price.
        """
        triggers = state.mark_triggers if by_mark else state.triggers
        tick = state.market.tick_size
        while triggers.parked:
            if by_mark:
                mark = self.risk.mark(state.market.symbol)  # type: ignore[union-attr]
                order = triggers.pop_next(mark, tick)
                reference = mark // tick  # reported in ticks, rounded down
            elif state.last_price is None:
                return
            else:
                reference = state.last_price
                order = triggers.pop_next(reference)
            if order is None:
                return
            spec = order.spec
            reason, margin = self._trigger_check(state, order)
            events.append(
                OrderTriggered(
                    seq=seq,
                    order_id=order.order_id,
                    account=order.account,
                    symbol=spec.symbol,
                    trigger_price=spec.trigger_price,
                    last_price=reference,
                    margin=margin,
                )
            )
            if margin:
                self.risk.reserve(order, margin)  # type: ignore[union-attr]
            if reason is not None:
                self._expire(seq, order, order.remaining, reason, events)
                continue
            self.execute(seq, state, order, events)

    def _trigger_check(
        self, state: MarketBooks, order: Order
    ) -> tuple[str | None, int]:
        """Return why a triggered order expires at once (or None), and its margin."""
        spec = order.spec
        if spec.post_only and would_take(state.book, order.is_buy, order.price):
            return "post_only", 0
        if spec.tif == "FOK" and not can_fill(
            state.book,
            order.is_buy,
            order.account,
            order.price or None,
            order.remaining,
            STP_MODES[spec.stp],
        ):
            return "fok", 0
        if self.risk is None:
            return None, 0
        needed = self.risk.check_order(
            order.account,
            spec.symbol,
            order.is_buy,
            order.price,
            order.remaining,
            spec.reduce_only,
            state.book,
        )
        if isinstance(needed, Refusal):
            return (
                "reduce_only"
                if needed.code == RejectCode.REDUCE_ONLY_REJECTED
                else "margin"
            ), 0
        return None, needed

    def take_off(
        self, seq: int, order: Order, events: list[Event], reason: str
    ) -> None:
        """Remove an open order from its book or trigger book and report it."""
        spec = order.spec
        state = self.markets[spec.symbol]
        qty = order.remaining
        self.release_all(order)
        parked = state.parked_in(order.order_id)
        if parked is not None:
            parked.remove(order, spec.trigger_price, is_rising(spec.type, order.is_buy))
        else:
            self.touch(state, order.is_buy, order.price)
            state.book.remove(order)
        events.append(
            OrderCanceled(
                seq=seq,
                order_id=order.order_id,
                account=order.account,
                symbol=spec.symbol,
                qty=qty,
                reason=reason,
            )
        )

    def _expire(
        self, seq: int, order: Order, qty: int, reason: str, events: list[Event]
    ) -> None:
        """End an order by rule (``qty`` lots unfilled): free its margin, report it."""
        self.release_all(order)
        events.append(
            OrderExpired(
                seq=seq,
                order_id=order.order_id,
                account=order.account,
                symbol=order.spec.symbol,
                qty=qty,
                reason=reason,
            )
        )

    def release_all(self, order: Order) -> None:
        """Give back the margin an order that is leaving the book still holds."""
        if self.risk is not None:
            self.risk.release_all(order)

    def next_id(self) -> int:
        """Allocate the next order id (ids are only spent on accepted orders)."""
        order_id = self.next_order_id
        self.next_order_id = order_id + 1
        return order_id

    def touch(self, state: MarketBooks, is_buy: bool, price: int) -> None:
        """Note that a level changed, to report it once at the end of the record."""
        self._touched[state, is_buy, price] = None

    def report_levels(self, seq: int, events: list[Event]) -> None:
        """Emit one `BookDelta` per level the record changed, then forget them."""
        for state, is_buy, price in self._touched:
            level = (state.book.bids if is_buy else state.book.asks).get(price)
            events.append(
                BookDelta(
                    seq=seq,
                    symbol=state.market.symbol,
                    side="buy" if is_buy else "sell",
                    price=price,
                    qty=0 if level is None else level.total,
                )
            )
        self._touched.clear()

    def restore_resting_reduce_only(self) -> None:
        """Re-derive the reduce-only orders at rest from the books (after a restore)."""
        self.resting_reduce_only.clear()
        for state in self.markets.values():
            for is_buy in (True, False):
                for order in state.book.orders(is_buy=is_buy):
                    if order.spec.reduce_only:
                        self.resting_reduce_only.setdefault(order.account, {})[
                            order.order_id
                        ] = order

    def cancel_orders(
        self,
        seq: int,
        account: str,
        symbols: tuple[str, ...],
        reason: str,
        events: list[Event],
    ) -> int:
        """Cancel the account's open orders in ``symbols``; return how many."""
        doomed = [
            o
            for o in self.by_account.get(account, {}).values()
            if o.spec.symbol in symbols
        ]
        for order in doomed:
            self.take_off(seq, order, events, reason)
        return len(doomed)

    def place_liquidation(
        self,
        seq: int,
        account: str,
        symbol: str,
        is_buy: bool,
        lots: int,
        price: int,
        events: list[Event],
    ) -> int:
        """Send the exchange's own IOC reduce-only order for a liquidated position.

        It is accepted without the checks a user order meets (the liquidator
        made them), pays no taker fee (`_report_fills`), and goes through the
        book like any order. Returns its order id.
        """
        order_id = self.next_id()
        spec = OrderAccepted(
            seq=seq,
            order_id=order_id,
            account=account,
            symbol=symbol,
            side="buy" if is_buy else "sell",
            type="limit",
            qty=lots,
            price=price,
            tif="IOC",
            post_only=False,
            reduce_only=True,
            trigger_price=0,
            stp="none",
            client_order_id="",
            liquidation=True,
        )
        events.append(spec)
        order = Order(order_id, account, is_buy, price, lots, spec)
        self.execute(seq, self.markets[symbol], order, events)
        return order_id

    # ------------------------------------------------------------ state

    def book_rows(self) -> list[object]:
        """Return every market's book, last price and triggers as canonical data."""
        markets: list[object] = []
        for symbol in sorted(self.markets):
            state = self.markets[symbol]
            book = state.book
            markets.append(
                [
                    symbol,
                    state.last_price,
                    [_order_row(o) for o in book.orders(is_buy=True)],
                    [_order_row(o) for o in book.orders(is_buy=False)],
                    [[t, r, *_order_row(o)] for t, r, o in state.triggers.pending()],
                    [
                        [t, r, *_order_row(o)]
                        for t, r, o in state.mark_triggers.pending()
                    ],
                ]
            )
        return markets


def _order_id(order: Order) -> int:
    """Return an order's id (a sort key)."""
    return order.order_id


def _order_row(order: Order) -> list[object]:
    """Return an open order as canonical plain data (live fields, then its spec)."""
    return [order.order_id, order.account, order.price, order.remaining, order.spec]
