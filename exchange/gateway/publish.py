"""Outcomes to messages: a record's events as per-account updates and market data.

`Publisher` follows every record the core applies, in seq order, and turns
its events into what the exchange publishes (acks are the session's): order
updates and fills on each owner's ack topic, balances, positions, margin
calls, liquidations, ADL and funding on its account topic, and public trades,
book deltas and marks. It keeps its own L2 books, built from the records'
`BookDelta` events, so a snapshot always matches the deltas already
published (the core itself may be records ahead, waiting for durability).
"""

from __future__ import annotations

import random
from decimal import Decimal

from exchange import messages as ev
from exchange.core import ExchangeCore
from exchange.gateway import answers as out
from exchange.gateway.wire import Outbound
from exchange.markets import Market
from exchange.shell.account_views import entry_price
from exchange.shell.order_views import OrderTracker
from exchange.units import from_e8

__all__ = ["Publisher"]


class _Book:
    """One symbol's L2 book as published: price ticks -> total lots per side."""

    __slots__ = ("asks", "bids", "book_seq")

    def __init__(self) -> None:
        """Start empty, before the first delta."""
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        self.book_seq = 0


class Publisher:
    """Turns each record's events into the messages the exchange publishes."""

    def __init__(self, core: ExchangeCore) -> None:
        """Follow ``core`` from its current state (a recovered one included)."""
        self.markets: dict[str, Market] = {
            symbol: state.market for symbol, state in core.markets.items()
        }
        self.orders = OrderTracker(self.markets)
        self.orders.adopt(core.index.values())
        for account_orders in core.by_account.values():  # untriggered ones too
            self.orders.adopt(
                o for o in account_orders.values() if o.order_id not in core.index
            )
        self.books: dict[str, _Book] = {}
        for symbol, state in core.markets.items():
            book = self.books[symbol] = _Book()
            book.bids = dict(state.book.depth(is_buy=True, levels=2**31))
            book.asks = dict(state.book.depth(is_buy=False, levels=2**31))

    def publish(self, record: ev.Record, events: list[ev.Event]) -> list[Outbound]:
        """Return every message of one record except the acks, in event order.

        Order updates come after the record's fills, one per order it touched
        (its state after the record); book deltas come last, one per symbol.
        """
        self.orders.start_call()
        self.orders.follow(events)
        ts = record.ts_ns
        messages: list[Outbound] = []
        touched: dict[int, str] = {}  # order id -> why it ended ("" if open)
        deltas: dict[str, list[ev.BookDelta]] = {}
        funded: set[str] = set()
        for e in events:
            match e:
                case ev.OrderFilled():
                    messages += self._fill(ts, e)
                    touched.setdefault(e.taker_order_id, "")
                    touched.setdefault(e.maker_order_id, "")
                case ev.OrderCanceled() | ev.OrderExpired():
                    touched[e.order_id] = e.reason
                case ev.OrderAccepted() | ev.OrderAmended() | ev.OrderTriggered():
                    touched.setdefault(e.order_id, "")
                case ev.BookDelta():
                    deltas.setdefault(e.symbol, []).append(e)
                case ev.FundingPaid():
                    messages += self._funding(ts, e, funded)
                case _:
                    messages += self._account_event(ts, e)
        messages += [self._order_update(record, i, r) for i, r in touched.items()]
        messages += [self._book_update(record, s, d) for s, d in deltas.items()]
        return messages

    def snapshot(
        self, symbol: str, depth: int, seq: int, request_id: str = ""
    ) -> out.BookSnapshot:
        """Return the top ``depth`` levels of a known symbol as published so far."""
        book = self.books[symbol]
        market = self.markets[symbol]
        return out.BookSnapshot(
            id=request_id,
            seq=seq,
            symbol=symbol,
            book_seq=book.book_seq,
            bids=_levels(market, book.bids, depth, descending=True),
            asks=_levels(market, book.asks, depth, descending=False),
        )

    def restate(
        self, symbol: str, seq: int, ts_ns: int, rng: random.Random
    ) -> out.BookUpdate:
        """Return the next book delta of a known symbol, changing nothing.

        It re-states one level per side, drawn at random from the book, at
        the quantity it has (none on an empty side): a no-op a client must
        still apply in ``book_seq`` order (a stress flood,
        `exchange.gateway.flood`). ``seq`` is the record last published,
        ``ts_ns`` the time of the flood.
        """
        book = self.books[symbol]
        book.book_seq += 1
        market = self.markets[symbol]
        sides: list[list[out.Level]] = []
        for levels in (book.bids, book.asks):
            prices = [rng.choice(tuple(levels))] if levels else []
            sides.append(
                [
                    (market.price_decimal(p), market.qty_decimal(levels[p]))
                    for p in prices
                ]
            )
        return out.BookUpdate(
            seq=seq,
            ts_ns=ts_ns,
            symbol=symbol,
            book_seq=book.book_seq,
            bids=sides[0],
            asks=sides[1],
        )

    # ------------------------------------------------------------ per event

    def _fill(self, ts: int, e: ev.OrderFilled) -> list[Outbound]:
        """Return a trade's fills for both owners and its public print."""
        m = self.markets[e.symbol]
        price, qty = m.price_decimal(e.price), m.qty_decimal(e.qty)
        maker_side: ev.Side = "sell" if e.taker_side == "buy" else "buy"
        messages = []
        for account, order_id, side, liquidity, fee in (
            (e.taker_account, e.taker_order_id, e.taker_side, "taker", e.taker_fee),
            (e.maker_account, e.maker_order_id, maker_side, "maker", e.maker_fee),
        ):
            view = self.orders.views[order_id]
            fill = out.TradeFill(
                seq=e.seq,
                ts_ns=ts,
                trade_id=e.trade_id,
                order_id=order_id,
                cid=view.spec.client_order_id,
                symbol=e.symbol,
                side=side,
                price=price,
                qty=qty,
                liquidity=liquidity,  # type: ignore[arg-type]  # a Literal above
                fee=from_e8(fee),
            )
            messages.append(Outbound("ack", account, fill))
        trade = out.PublicTrade(
            seq=e.seq,
            ts_ns=ts,
            symbol=e.symbol,
            trade_id=e.trade_id,
            price=price,
            qty=qty,
            taker_side=e.taker_side,
        )
        messages.append(Outbound("trades", e.symbol, trade))
        return messages

    def _funding(self, ts: int, e: ev.FundingPaid, funded: set[str]) -> list[Outbound]:
        """Return a funding payment, and the symbol's rate once per record."""
        notice = out.FundingNotice(
            seq=e.seq,
            ts_ns=ts,
            symbol=e.symbol,
            amount=from_e8(e.amount),
            rate=from_e8(e.rate),
            mark=from_e8(e.mark),
            funding_ts_ns=e.funding_ts_ns,
        )
        messages = [Outbound("acct", e.account, notice)]
        if e.symbol not in funded:
            funded.add(e.symbol)
            rate = out.FundingRate(
                seq=e.seq,
                ts_ns=ts,
                symbol=e.symbol,
                rate=notice.rate,
                mark=notice.mark,
                funding_ts_ns=e.funding_ts_ns,
            )
            messages.append(Outbound("mark", e.symbol, rate))
        return messages

    def _account_event(self, ts: int, e: ev.Event) -> list[Outbound]:
        """Return the account or mark message of a ledger event, if it has one."""
        message: out.Answer
        match e:
            case ev.BalanceChanged():
                message = out.BalanceUpdate(
                    seq=e.seq,
                    ts_ns=ts,
                    change=from_e8(e.amount),
                    wallet=from_e8(e.wallet),
                    reason=e.reason,
                )
            case ev.PositionChanged():
                message = self._position(ts, e)
            case ev.MarginCall():
                message = out.MarginCallNotice(
                    seq=e.seq,
                    ts_ns=ts,
                    symbol=e.symbol,
                    margin_balance=from_e8(e.margin_balance),
                    maintenance_margin=from_e8(e.maintenance_margin),
                )
            case ev.PositionLiquidated():
                m = self.markets[e.symbol]
                message = out.LiquidationNotice(
                    seq=e.seq,
                    ts_ns=ts,
                    symbol=e.symbol,
                    mode=e.mode,
                    qty=m.qty_decimal(e.qty),
                    bankruptcy_price=m.price_decimal(e.bankruptcy_price),
                    order_id=e.order_id,
                    filled=m.qty_decimal(e.filled),
                    deleveraged=m.qty_decimal(e.deleveraged),
                    fee=from_e8(e.fee),
                    left=m.qty_decimal(e.left),
                )
            case ev.PositionDeleveraged():
                m = self.markets[e.symbol]
                message = out.AdlNotice(
                    seq=e.seq,
                    ts_ns=ts,
                    symbol=e.symbol,
                    qty=m.qty_decimal(e.qty),
                    price=m.price_decimal(e.price),
                )
            case ev.MarkPriceChanged():
                mark = out.MarkUpdate(
                    seq=e.seq,
                    ts_ns=ts,
                    symbol=e.symbol,
                    mark=from_e8(e.mark),
                    index=from_e8(e.index) if e.index else None,
                )
                return [Outbound("mark", e.symbol, mark)]
            case _:  # acks are the session's; the rest is internal
                return []
        return [Outbound("acct", e.account, message)]

    def _position(self, ts: int, e: ev.PositionChanged) -> out.PositionUpdate:
        """Return a position snapshot in contracts and USDT."""
        m = self.markets[e.symbol]
        size_e8 = e.size * m.lot_size
        entry = entry_price(e.cost, size_e8) if e.size else None
        return out.PositionUpdate(
            seq=e.seq,
            ts_ns=ts,
            symbol=e.symbol,
            size=from_e8(size_e8),
            entry_price=entry,
            margin=from_e8(e.margin),
            mode=e.mode,
            leverage=e.leverage,
            realized=from_e8(e.realized),
            fee=from_e8(e.fee),
        )

    def _order_update(self, record: ev.Record, order_id: int, reason: str) -> Outbound:
        """Return an order's state after the record, for its owner."""
        view = self.orders.views[order_id]
        spec = view.spec
        m = self.markets[spec.symbol]
        update = out.OrderUpdate(
            seq=record.seq,
            ts_ns=record.ts_ns,
            order_id=order_id,
            cid=spec.client_order_id,
            symbol=spec.symbol,
            side=spec.side,
            type=spec.type,
            status=view.status,
            price=m.price_decimal(view.price) if view.price else None,
            qty=m.qty_decimal(view.qty),
            filled=m.qty_decimal(view.filled),
            remaining=m.qty_decimal(view.remaining),
            reason=reason,
        )
        return Outbound("ack", spec.account, update)

    def _book_update(
        self, record: ev.Record, symbol: str, deltas: list[ev.BookDelta]
    ) -> Outbound:
        """Apply a record's deltas of one symbol; return them as one message."""
        book = self.books[symbol]
        book.book_seq += 1
        m = self.markets[symbol]
        bids: list[out.Level] = []
        asks: list[out.Level] = []
        for d in deltas:
            side, levels = (book.bids, bids) if d.side == "buy" else (book.asks, asks)
            if d.qty:
                side[d.price] = d.qty
            else:
                side.pop(d.price, None)
            levels.append((m.price_decimal(d.price), m.qty_decimal(d.qty)))
        update = out.BookUpdate(
            seq=record.seq,
            ts_ns=record.ts_ns,
            symbol=symbol,
            book_seq=book.book_seq,
            bids=bids,
            asks=asks,
        )
        return Outbound("book", symbol, update)


def _levels(
    market: Market, side: dict[int, int], depth: int, *, descending: bool
) -> list[tuple[Decimal, Decimal]]:
    """Return a side's best ``depth`` levels as (price, qty) decimals."""
    prices = sorted(side, reverse=descending)[:depth]
    return [(market.price_decimal(p), market.qty_decimal(side[p])) for p in prices]
