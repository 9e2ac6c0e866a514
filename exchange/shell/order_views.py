"""Orders as their owners see them: status, filled and open quantity, fills.

`OrderTracker` folds the core's events into one `OrderView` per open order
(as a client would from its order updates) and turns a view into the
`OrderResult` the in-process `Exchange` returns: Decimal quantities and
prices, a Binance-style status, and the order's own fills of the last call.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Literal

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
    """What became of an order after a command (Binance-style status).

    ``status``: "new" (resting or waiting for its trigger, nothing filled),
    "partially_filled" (resting, some filled), "filled", "canceled", "expired".
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
    """Views of the open orders, kept one call longer once they close."""

    def __init__(self, markets: dict[str, Market]) -> None:
        """Track orders on ``markets`` (symbol -> market)."""
        self.markets = markets
        self.views: dict[int, OrderView] = {}  # open orders, as results see them
        self._closed: list[int] = []  # views closed by the last command

    def result(self, seq: int, order_id: int, events: list[Event]) -> OrderResult:
        """Summarise one order after ``events`` (already folded into the views)."""
        view = self.views[order_id]
        m = self.markets[view.spec.symbol]
        fills = [
            _trade(m, e, order_id)
            for e in events
            if isinstance(e, OrderFilled)
            and order_id in (e.taker_order_id, e.maker_order_id)
        ]
        fill_qty = sum(t.qty for t in fills)
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
            average_price=(sum(t.price * t.qty for t in fills) / fill_qty)
            if fill_qty
            else None,
            fills=fills,
            seq=seq,
        )

    def follow(self, events: list[Event]) -> None:
        """Fold a command's events into the views of open orders.

        Views of orders that closed in the previous command are dropped first:
        they lived one call longer so that call could report them.
        """
        views = self.views
        for order_id in self._closed:
            del views[order_id]
        closed = self._closed = []
        for e in events:
            if isinstance(e, OrderAccepted):
                views[e.order_id] = OrderView(e)
                continue
            touched: tuple[OrderView, ...]
            if isinstance(e, OrderFilled):
                touched = (views[e.taker_order_id], views[e.maker_order_id])
                for view in touched:
                    view.fill(e.qty)
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

    __slots__ = ("filled", "price", "qty", "remaining", "spec", "status")

    def __init__(self, spec: OrderAccepted) -> None:
        """Start from the acceptance."""
        self.spec = spec
        self.price = spec.price
        self.qty = spec.qty
        self.filled = 0
        self.remaining = spec.qty
        self.status = "new"

    @property
    def closed(self) -> bool:
        """Return True once the order can no longer trade."""
        return self.status in ("filled", "canceled", "expired")

    def fill(self, qty: int) -> None:
        """Account for one fill."""
        self.filled += qty
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
