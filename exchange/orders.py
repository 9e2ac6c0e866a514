"""Order entry: the books, and what orders do to them (place, amend, cancel, trigger).

`OrderEntry` is a complete matching venue on its own: validation, matching,
fills, resting, stops and their triggers, cancels, amends and the book deltas
they cause. The margin ledger, when present, hooks in at three points: the
pre-trade check before an order is accepted, settlement of every fill, and the
release of the margin an order held when it leaves the book. `ExchangeCore`
builds the rest of the exchange (accounts, marks, liquidation) on top.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from exchange.book import Order, OrderBook
from exchange.codes import RejectCode
from exchange.matching import STP_MODES, can_fill, match, would_take
from exchange.messages import (
    AllCanceled,
    AmendOrder,
    BookDelta,
    CancelAll,
    CancelOrder,
    Event,
    OrderAccepted,
    OrderAmended,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderRested,
    OrderTriggered,
    PlaceOrder,
    Side,
)
from exchange.triggers import TriggerBook, is_rising
from exchange.validation import Refusal, check_order, to_lots, to_ticks

if TYPE_CHECKING:
    from collections.abc import Iterable

    from exchange.ledger import Ledger
    from exchange.markets import Market

__all__ = ["MarketState", "OrderEntry"]


class MarketState:
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


class OrderEntry:
    """Books, triggers, order indexes and id counters of every market."""

    def __init__(self, markets: Iterable[Market], ledger: Ledger | None) -> None:
        """Create empty books for ``markets``; ``ledger`` hooks in margin (or None)."""
        self.ledger = ledger
        self.index: dict[int, Order] = {}
        self.by_account: dict[str, dict[int, Order]] = {}
        self.markets: dict[str, MarketState] = {
            m.symbol: MarketState(m, self.index, self.by_account) for m in markets
        }
        # (account, client id) -> order id; entries of closed orders are pruned lazily.
        self.client_ids: dict[tuple[str, str], int] = {}
        self.next_order_id = 1
        self.next_trade_id = 1
        # Levels changed by the current record, in first-touch order (never a set:
        # set order depends on string hashing, which differs between processes).
        self._touched: dict[tuple[MarketState, bool, int], None] = {}
        # Symbols whose mark may have moved during the current record.
        self._marks_touched: dict[str, None] = {}
        # Reduce-only orders resting in a book, by account (entries of orders
        # that closed are pruned when looked at): trimmed when positions shrink.
        self.resting_reduce_only: dict[str, dict[int, Order]] = {}
        # Scratch lists reused by every match (cleared after use): no allocation
        # per command on the hot path.
        self._fills: list[tuple[Order, int, int]] = []
        self._expired: list[tuple[Order, int]] = []

    # ------------------------------------------------------------ commands

    def _place(self, seq: int, cmd: PlaceOrder, events: list[Event]) -> None:  # noqa: C901, PLR0912 -- hot path kept in one frame
        """Check, accept and execute (or park) a new order."""
        # 1. check
        state = self.markets.get(cmd.symbol)
        if state is None:
            self._reject(
                seq,
                cmd.account,
                RejectCode.UNKNOWN_SYMBOL,
                f"unknown symbol {cmd.symbol!r}",
                events,
                cmd.client_order_id,
            )
            return
        checked = check_order(state.market, cmd)
        if isinstance(checked, Refusal):
            self._refuse(seq, cmd, checked, events)
            return
        price, qty, trigger = checked
        if (
            cmd.client_order_id
            and self._open_by_client_id(cmd.account, cmd.client_order_id) is not None
        ):
            self._reject(
                seq,
                cmd.account,
                RejectCode.DUPLICATE_CLIENT_ORDER_ID,
                f"client order id {cmd.client_order_id!r} is already in use "
                "by an open order",
                events,
                cmd.client_order_id,
            )
            return
        is_buy = cmd.side == "buy"
        book = state.book
        stp = STP_MODES[cmd.stp]
        refusal = None
        if trigger:
            rising = is_rising(cmd.type, is_buy)
            refusal = self._trigger_refusal(state, cmd.trigger_by, rising, trigger)
        elif cmd.post_only and would_take(book, is_buy, price):
            refusal = Refusal(
                RejectCode.POST_ONLY_WOULD_TAKE, "post-only order would take liquidity"
            )
        elif cmd.tif == "FOK" and not can_fill(
            book, is_buy, cmd.account, price or None, qty, stp
        ):
            refusal = Refusal(
                RejectCode.FOK_NOT_FILLED, "fill-or-kill order cannot be filled whole"
            )
        margin = 0
        if refusal is None and self.ledger is not None and not trigger:
            needed = self.ledger.check_order(
                cmd.account, cmd.symbol, is_buy, price, qty, cmd.reduce_only, book
            )
            if isinstance(needed, Refusal):
                refusal = needed
            else:
                margin = needed
        if refusal is not None:
            self._refuse(seq, cmd, refusal, events)
            return
        # Accepted: from here on, state changes.
        order_id = self._next_id()
        spec = OrderAccepted(
            seq=seq,
            order_id=order_id,
            account=cmd.account,
            symbol=cmd.symbol,
            side=cmd.side,
            type=cmd.type,
            qty=qty,
            price=price,
            tif=cmd.tif,
            post_only=cmd.post_only,
            reduce_only=cmd.reduce_only,
            trigger_price=trigger,
            stp=cmd.stp,
            client_order_id=cmd.client_order_id,
            margin=margin,
            trigger_by=cmd.trigger_by,
        )
        events.append(spec)
        if cmd.client_order_id:
            self._remember_client_id(cmd.account, cmd.client_order_id, order_id)
        order = Order(order_id, cmd.account, is_buy, price, qty, spec)
        if margin:
            self.ledger.reserve(order, margin)  # type: ignore[union-attr]
        if trigger:
            by_mark = cmd.trigger_by == "mark"
            (state.mark_triggers if by_mark else state.triggers).add(
                order, trigger, rising
            )
            return
        # 2.-3. match and settle
        self._execute(seq, state, order, events)
        # 4. trigger
        if state.triggers.parked:
            self._fire_triggers(seq, state, events)

    def _trigger_refusal(
        self, state: MarketState, source: str, rising: bool, trigger: int
    ) -> Refusal | None:
        """Refuse a stop whose trigger is already reached (or has no price source)."""
        if source == "mark":
            if self.ledger is None:
                return Refusal(
                    RejectCode.MARGIN_DISABLED,
                    "triggers on the mark price need the margin ledger",
                )
            mark = self.ledger.markets[state.market.symbol].mark
            if state.mark_triggers.would_fire(
                rising, trigger, mark, state.market.tick_size
            ):
                return Refusal(
                    RejectCode.WOULD_TRIGGER_IMMEDIATELY,
                    f"the mark price is already past the trigger {trigger} ticks",
                )
        elif state.triggers.would_fire(rising, trigger, state.last_price):
            return Refusal(
                RejectCode.WOULD_TRIGGER_IMMEDIATELY,
                f"last price {state.last_price} ticks is already past "
                f"the trigger {trigger} ticks",
            )
        return None

    def _cancel(self, seq: int, cmd: CancelOrder, events: list[Event]) -> None:
        """Cancel one open order of the sender's (resting or untriggered)."""
        order = self._find_or_refuse(seq, cmd, events)
        if order is None:
            return
        self._take_off(seq, order, events, "user")

    def _cancel_all(self, seq: int, cmd: CancelAll, events: list[Event]) -> None:
        """Cancel every open order of the account (of one symbol, or all)."""
        if cmd.symbol and cmd.symbol not in self.markets:
            self._reject(
                seq,
                cmd.account,
                RejectCode.UNKNOWN_SYMBOL,
                f"unknown symbol {cmd.symbol!r}",
                events,
            )
            return
        symbols = (cmd.symbol,) if cmd.symbol else tuple(self.markets)
        count = self.cancel_orders(seq, cmd.account, symbols, "cancel_all", events)
        events.append(
            AllCanceled(seq=seq, account=cmd.account, symbol=cmd.symbol, count=count)
        )

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
            self._take_off(seq, order, events, reason)
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
        order_id = self._next_id()
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
        self._execute(seq, self.markets[symbol], order, events)
        return order_id

    def _amend(self, seq: int, cmd: AmendOrder, events: list[Event]) -> None:  # noqa: C901, PLR0912 -- every amend rule, checked before any change
        """Change a resting order's price and/or open quantity."""
        order = self._find_or_refuse(seq, cmd, events)
        if order is None:
            return
        spec = order.spec
        state = self.markets[spec.symbol]
        refusal: Refusal | None = None
        price, qty = order.price, order.remaining
        if state.parked_in(order.order_id) is not None:
            refusal = Refusal(
                RejectCode.NOT_AMENDABLE, "only resting limit orders can be amended"
            )
        elif cmd.qty or cmd.price:
            if cmd.qty:
                lots = to_lots(state.market, cmd.qty)
                refusal = lots if isinstance(lots, Refusal) else None
                qty = lots if isinstance(lots, int) else qty
            if cmd.price and refusal is None:
                ticks = to_ticks(state.market, cmd.price)
                refusal = ticks if isinstance(ticks, Refusal) else None
                price = ticks if isinstance(ticks, int) else price
        if refusal is None and (price, qty) == (order.price, order.remaining):
            refusal = Refusal(
                RejectCode.AMEND_NO_CHANGE,
                "the order already has this price and quantity",
            )
        if (
            refusal is None
            and spec.post_only
            and price != order.price
            and would_take(state.book, order.is_buy, price)
        ):
            refusal = Refusal(
                RejectCode.POST_ONLY_WOULD_TAKE,
                "post-only order would take liquidity at the new price",
            )
        margin = 0
        if refusal is None and self.ledger is not None:
            needed = self.ledger.check_order(
                order.account,
                spec.symbol,
                order.is_buy,
                price,
                qty,
                spec.reduce_only,
                state.book,
                credit=order.reserved,
            )
            refusal = needed if isinstance(needed, Refusal) else None
            margin = needed if isinstance(needed, int) else 0
        if refusal is not None:
            self._refuse(seq, cmd, refusal, events, with_order_id=True)
            return
        book = state.book
        self._touch(state, order.is_buy, order.price)
        self._release_all(order)
        in_place = price == order.price and qty < order.remaining
        events.append(
            OrderAmended(
                seq=seq,
                order_id=order.order_id,
                account=order.account,
                symbol=spec.symbol,
                price=price,
                qty=qty,
                requeued=not in_place,
                margin=margin,
            )
        )
        if in_place:
            book.reduce(order, qty)
            if margin:
                self.ledger.reserve(order, margin)  # type: ignore[union-attr]
            return
        book.remove(order)
        requeued = Order(order.order_id, order.account, order.is_buy, price, qty, spec)
        if margin:
            self.ledger.reserve(requeued, margin)  # type: ignore[union-attr]
        self._execute(seq, state, requeued, events)
        if state.triggers.parked:
            self._fire_triggers(seq, state, events)

    # ------------------------------------------------------------ execution

    def _execute(
        self, seq: int, state: MarketState, order: Order, events: list[Event]
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
                self._touched[state, maker.is_buy, maker.price] = None
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
        self._touched[state, order.is_buy, order.price] = None
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

    def _market_limit(self, state: MarketState, is_buy: bool) -> int | None:
        """Return a market order's price protection in ticks (None: no limit).

        With a mark, a market order trades only within the market's band around
        it, so a thin book cannot fill it at any price (and a trader closing an
        isolated position cannot lose far more than the bucket that way).
        """
        if self.ledger is None:
            return None
        mark = self.ledger.markets[state.market.symbol].mark
        if not mark:
            return None
        band = mark * state.market.market_band_ppm // 1_000_000
        tick = state.market.tick_size
        # the band's edge on the tick grid, rounded to stay inside the band
        return (mark + band) // tick if is_buy else -(-(mark - band) // tick)

    def _report_fills(
        self,
        seq: int,
        state: MarketState,
        taker: Order,
        fills: list[tuple[Order, int, int]],
        events: list[Event],
    ) -> None:
        """Turn matched ``(maker, price, qty)`` tuples into `OrderFilled` events."""
        symbol = state.market.symbol
        taker_side: Side = "buy" if taker.is_buy else "sell"
        trade_id = self.next_trade_id
        last_level = None
        ledger = self.ledger
        taker_open = taker.remaining
        for maker, price, qty in fills:
            taker_fee = maker_fee = 0
            if ledger is not None:
                taker_fee, maker_fee = ledger.fees(symbol, price, qty)
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
            if ledger is not None:  # 3. settle
                ledger.release(maker, qty, maker.remaining + qty)
                ledger.release(taker, qty, taker_open)
                taker_open -= qty
                ledger.settle(seq, fill, events)
            trade_id += 1
            if price != last_level:
                self._touched[state, maker.is_buy, price] = None
                last_level = price
        self.next_trade_id = trade_id
        state.last_price = fills[-1][1]
        if ledger is not None:
            self._marks_touched[symbol] = None

    def _fire_triggers(
        self,
        seq: int,
        state: MarketState,
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
                mark = self.ledger.markets[state.market.symbol].mark  # type: ignore[union-attr]
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
                self.ledger.reserve(order, margin)  # type: ignore[union-attr]
            if reason is not None:
                self._expire(seq, order, order.remaining, reason, events)
                continue
            self._execute(seq, state, order, events)

    def _trigger_check(
        self, state: MarketState, order: Order
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
        if self.ledger is None:
            return None, 0
        needed = self.ledger.check_order(
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

    # ------------------------------------------------------------ helpers

    def _take_off(
        self, seq: int, order: Order, events: list[Event], reason: str
    ) -> None:
        """Remove an open order from its book or trigger book and report it."""
        spec = order.spec
        state = self.markets[spec.symbol]
        qty = order.remaining
        self._release_all(order)
        parked = state.parked_in(order.order_id)
        if parked is not None:
            parked.remove(order, spec.trigger_price, is_rising(spec.type, order.is_buy))
        else:
            self._touch(state, order.is_buy, order.price)
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

    def trim_reduce_only(
        self, seq: int, accounts: list[str], events: list[Event]
    ) -> None:
        """Keep resting reduce-only orders from ever growing a position.

        After ``accounts``' positions changed: an order on the position's side
        (or with the position flat) is canceled (reason "reduce_only"); one
        larger than the position is cut down to it in place (`OrderAmended`).
        """
        ledger = self.ledger
        assert ledger is not None
        for name in accounts:
            resting = self.resting_reduce_only.get(name)
            if not resting:
                continue
            for order_id in [i for i in resting if i not in self.index]:
                del resting[order_id]
            account = ledger.accounts[name]
            for order in list(resting.values()):
                position = account.positions.get(order.spec.symbol)
                size = position.size if position is not None else 0
                if not size or (size > 0) == order.is_buy:
                    del resting[order.order_id]
                    self._take_off(seq, order, events, "reduce_only")
                elif order.remaining > abs(size):
                    state = self.markets[order.spec.symbol]
                    state.book.reduce(order, abs(size))
                    self._touched[state, order.is_buy, order.price] = None
                    events.append(
                        OrderAmended(
                            seq=seq,
                            order_id=order.order_id,
                            account=name,
                            symbol=order.spec.symbol,
                            price=order.price,
                            qty=abs(size),
                            requeued=False,
                            margin=order.reserved,
                        )
                    )

    def _expire(
        self, seq: int, order: Order, qty: int, reason: str, events: list[Event]
    ) -> None:
        """End an order by rule (``qty`` lots unfilled): free its margin, report it."""
        self._release_all(order)
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

    def _release_all(self, order: Order) -> None:
        """Give back the margin an order that is leaving the book still holds."""
        if self.ledger is not None:
            self.ledger.release_all(order)

    def _find_or_refuse(
        self, seq: int, cmd: CancelOrder | AmendOrder, events: list[Event]
    ) -> Order | None:
        """Return the open order a cancel or amend names, or reject it as unknown."""
        order = self._find(cmd.account, cmd.order_id, cmd.client_order_id)
        if order is None:
            self._reject(
                seq,
                cmd.account,
                RejectCode.UNKNOWN_ORDER,
                "no such open order for this account",
                events,
                cmd.client_order_id,
                cmd.order_id,
            )
        return order

    def _find(self, account: str, order_id: int, client_order_id: str) -> Order | None:
        """Return the account's open order by id (or client id), else None."""
        if not order_id and client_order_id:
            order_id = self._open_by_client_id(account, client_order_id) or 0
        order = self.index.get(order_id)
        if order is None or order.account != account:
            return None  # another account's order is "unknown", never "not yours"
        return order

    def _open_by_client_id(self, account: str, client_order_id: str) -> int | None:
        """Return the open order id using this client id, if there is one."""
        order_id = self.client_ids.get((account, client_order_id))
        if order_id is None or order_id not in self.index:
            return None
        return order_id

    def _remember_client_id(
        self, account: str, client_order_id: str, order_id: int
    ) -> None:
        """Map a client id to its order; prune closed orders' ids when many pile up."""
        ids = self.client_ids
        ids[account, client_order_id] = order_id
        if len(ids) > 2 * len(self.index) + 1024:
            self.client_ids = {k: v for k, v in ids.items() if v in self.index}

    def _next_id(self) -> int:
        """Allocate the next order id (ids are only spent on accepted orders)."""
        order_id = self.next_order_id
        self.next_order_id = order_id + 1
        return order_id

    def _refuse(
        self,
        seq: int,
        cmd: PlaceOrder | AmendOrder,
        refusal: Refusal,
        events: list[Event],
        *,
        with_order_id: bool = False,
    ) -> None:
        """Reject an order command for ``refusal``, echoing its client or order id."""
        self._reject(
            seq,
            cmd.account,
            refusal.code,
            refusal.reason,
            events,
            cmd.client_order_id,
            cmd.order_id if with_order_id and isinstance(cmd, AmendOrder) else 0,
        )

    def _reject(
        self,
        seq: int,
        account: str,
        code: RejectCode,
        reason: str,
        events: list[Event],
        client_order_id: str = "",
        order_id: int = 0,
    ) -> None:
        """Emit an `OrderRejected`; nothing else changes."""
        events.append(
            OrderRejected(
                seq=seq,
                account=account,
                code=int(code),
                reason=reason,
                order_id=order_id,
                client_order_id=client_order_id,
            )
        )

    def _touch(self, state: MarketState, is_buy: bool, price: int) -> None:
        """Note that a level changed, to report it once at the end of the record."""
        self._touched[state, is_buy, price] = None

    def _report_levels(self, seq: int, events: list[Event]) -> None:
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


def _order_row(order: Order) -> list[object]:
    """Return an open order as canonical plain data (live fields, then its spec)."""
    return [order.order_id, order.account, order.price, order.remaining, order.spec]
