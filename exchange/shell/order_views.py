"""Orders as their owners see them: status, filled and open quantity, fills.

`OrderTracker` folds the core's events into one `OrderView` per open order
(as a client would from its order updates) and turns a view into the
`OrderResult` the in-process `Exchange` returns (Decimal quantities and
prices, a Binance-style status, and the order's own fills of the last call)
or into a row of its open orders.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from exchange.messages import (
    Event,
    OrderAccepted,
    OrderAmended,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
)
from exchange.units import from_e8

if TYPE_CHECKING:
    from exchange.engine.book import Order
    from exchange.markets import Market

__all__ = ["OrderResult", "OrderTracker", "OrderView", "Trade"]


class Trade(msgspec.Struct, frozen=True, kw_only=True):
    """One fill of an order, from that order's point of view."""

    trade_id: int
    price: Decimal
    qty: Decimal
    liquidity: Literal["maker", "taker"]
    counterparty_order_id: int
    fee: Decimal


class OrderResult(msgspec.Struct, kw_only=True):
    """What became of an order after a call (Binance-style status).

    ``status``: "new" (resting or waiting for its trigger, nothing filled),
    "partially_filled" (resting, some filled), "filled", "canceled", "expired".
    ``fills`` are the order's trades during the call (its own record and the
    liquidations that record caused); ``filled`` and ``average_price`` cover
    all its trades so far, as ccxt's ``filled`` and ``average`` do: the
    quantity-weighted mean price, rounded half-even to 1e-8 (the unit every
    price the exchange shows is in, as for a position's entry price).
    """

    order_id: int
    client_order_id: str
    symbol: str
    side: str
    type: str
    status: str
    price: Decimal | None
    qty: Decimal
    filled: Decimal
    remaining: Decimal
    average_price: Decimal | None
    fills: list[Trade]
    seq: int


class OrderTracker:
    """Views of the open orders, kept until the next call once they close.

    A call is one command and the system commands (liquidations) it caused:
    an order that closes anywhere in it is still reported by that call.
    """

    def __init__(self, markets: dict[str, Market]) -> None:
        """Track orders on ``markets`` (symbol -> market)."""
        self.markets = markets
        self.views: dict[int, OrderView] = {}  # open orders, as results see them
        self._closed: list[int] = []  # views closed during the last call

    def start_call(self) -> None:
        """Forget the orders that closed during the previous call."""
        for order_id in self._closed:
            del self.views[order_id]
        self._closed = []

    def result(self, seq: int, order_id: int, events: list[Event]) -> OrderResult:
        """Summarise one order after ``events`` (already folded into the views)."""
        view = self.views[order_id]
        m = self.markets[view.spec.symbol]
        own = [
            e
            for e in events
            if isinstance(e, OrderFilled)
            and order_id in (e.taker_order_id, e.maker_order_id)
        ]
        # sum(ticks x lots) x E8 per tick / lots, in exact ints until the rounding
        average = (
            from_e8(round(Fraction(view.traded * m.tick_size, view.filled)))
            if view.filled
            else None
        )
        return OrderResult(
            order_id=order_id,
            client_order_id=view.spec.client_order_id,
            symbol=view.spec.symbol,
            side=view.spec.side,
            type=view.spec.type,
            status=view.status,
            price=m.price_decimal(view.price) if view.price else None,
            qty=m.qty_decimal(view.qty),
            filled=m.qty_decimal(view.filled),
            remaining=m.qty_decimal(view.remaining),
            average_price=average,
            fills=[_trade(m, e, order_id) for e in own],
            seq=seq,
        )

    def row(self, order_id: int, *, parked: bool) -> dict[str, Any]:
        """Return an open order as `Exchange.open_orders` lists it.

        ``parked``: the order still waits for its trigger. ``triggered`` is
        None for an order without a trigger, else whether it has fired.
        """
        view = self.views[order_id]
        spec = view.spec
        m = self.markets[spec.symbol]
        conditional = spec.trigger_price != 0
        return {
            "order_id": order_id,
            "client_order_id": spec.client_order_id,
            "symbol": spec.symbol,
            "side": spec.side,
            "type": spec.type,
            "status": view.status,
            "price": m.price_decimal(view.price) if view.price else None,
            "qty": m.qty_decimal(view.qty),
            "filled": m.qty_decimal(view.filled),
            "remaining": m.qty_decimal(view.remaining),
            "tif": spec.tif,
            "post_only": spec.post_only,
            "reduce_only": spec.reduce_only,
            "trigger_price": m.price_decimal(spec.trigger_price)
            if conditional
            else None,
            "trigger_by": spec.trigger_by if conditional else None,
            "triggered": (not parked) if conditional else None,
        }

    def open_rows(
        self, account: str, symbol: str, parked: Callable[[OrderView], bool]
    ) -> list[dict[str, Any]]:
        """Return an account's open orders as rows (see `row`), oldest first.

        ``symbol`` "" lists every symbol; ``parked`` tells whether an order
        still waits for its trigger (the core's books know).
        """
        return [
            self.row(order_id, parked=parked(view))
            for order_id, view in sorted(self.views.items())
            if view.spec.account == account
            and not view.closed
            and (not symbol or view.spec.symbol == symbol)
        ]

    def adopt(self, orders: Iterable[Order]) -> None:
        """Start views of open orders that exist before the tracker (recovery).

        The views begin from each order's acceptance, current price and open
        quantity; what filled before is the accepted quantity less the open
        one (an order amended up before adoption shows nothing filled).
        """
        for order in orders:
            view = OrderView(order.spec)
            view.price = order.price
            view.remaining = order.remaining
            view.filled = max(order.spec.qty - order.remaining, 0)
            view.qty = view.filled + order.remaining
            if view.filled:
                view.status = "partially_filled"
            self.views[order.order_id] = view

    def follow(self, events: list[Event]) -> None:
        """Fold one record's events into the views of open orders."""
        views = self.views
        closed = self._closed
        for e in events:
            if isinstance(e, OrderAccepted):
                views[e.order_id] = OrderView(e)
                continue
            touched: tuple[OrderView, ...]
            if isinstance(e, OrderFilled):
                touched = (views[e.taker_order_id], views[e.maker_order_id])
                for view in touched:
                    view.fill(e.price, e.qty)
            elif isinstance(e, OrderAmended):
                touched = (views[e.order_id],)
                touched[0].amend(e.price, e.qty)
            elif isinstance(e, OrderCanceled | OrderExpired):
                touched = (views[e.order_id],)
                touched[0].end(
                    "canceled" if isinstance(e, OrderCanceled) else "expired"
                )
            else:
                continue
            closed.extend(v.spec.order_id for v in touched if v.closed)


class OrderView:
    """One order as its owner sees it: quantities in lots and a status."""

    __slots__ = ("filled", "price", "qty", "remaining", "spec", "status", "traded")

    def __init__(self, spec: OrderAccepted) -> None:
        """Start from the acceptance."""
        self.spec = spec
        self.price = spec.price
        self.qty = spec.qty
        self.filled = 0
        self.traded = 0  # sum of price ticks x lots over its fills
        self.remaining = spec.qty
        self.status = "new"

    @property
    def closed(self) -> bool:
        """Return True once the order can no longer trade."""
        return self.status in ("filled", "canceled", "expired")

    def fill(self, price: int, qty: int) -> None:
        """Account for one fill of ``qty`` lots at ``price`` ticks."""
        self.filled += qty
        self.traded += price * qty
        self.remaining -= qty
        self.status = "partially_filled" if self.remaining else "filled"

    def amend(self, price: int, open_qty: int) -> None:
        """Take a new price and open quantity; the total follows the open part."""
        self.price = price
        self.qty = self.filled + open_qty
        self.remaining = open_qty

    def end(self, status: str) -> None:
        """Close the order as canceled or expired."""
        self.status = status
        self.remaining = 0


def _trade(market: Market, fill: OrderFilled, order_id: int) -> Trade:
    """Return a fill as seen by one of its two orders."""
    taker = fill.taker_order_id == order_id
    return Trade(
        trade_id=fill.trade_id,
        price=market.price_decimal(fill.price),
        qty=market.qty_decimal(fill.qty),
        liquidity="taker" if taker else "maker",
        counterparty_order_id=fill.maker_order_id if taker else fill.taker_order_id,
        fee=from_e8(fill.taker_fee if taker else fill.maker_fee),
    )
