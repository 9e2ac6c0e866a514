"""What the margin side needs of the engine, as protocols: quotes, orders, a route.

The margin ledger never imports the engine. It prices market orders and
samples the funding premium from a book's quotes (`Quotes`), holds margin for
open orders (`HeldOrder`), and the liquidator cancels orders and sends its
liquidation orders through the books (`LiquidationOrders`). The engine's
`OrderBook`, `Order` and `Execution` provide them; the core wires them in.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from exchange.messages import Event, OrderAccepted

__all__ = ["HeldOrder", "LiquidationOrders", "Quotes"]


class Quotes(Protocol):
    """A book's prices in ticks and open lots, best first."""

    def best_bid(self) -> int | None:
        """Return the highest bid price in ticks, or None."""
        ...

    def best_ask(self) -> int | None:
        """Return the lowest ask price in ticks, or None."""
        ...

    def levels(self, is_buy: bool) -> Iterator[tuple[int, int]]:
        """Yield (price, open lots) of one side, best first."""
        ...


class HeldOrder(Protocol):
    """An open order: whose, what it would still trade, and the margin it holds."""

    account: str
    is_buy: bool
    price: int  # ticks (0: market)
    remaining: int  # open lots
    reserved: int  # E8 margin it holds; the ledger keeps it
    spec: OrderAccepted


class LiquidationOrders(Protocol):
    """The two calls the liquidator makes into the books."""

    def cancel_orders(
        self,
        seq: int,
        account: str,
        symbols: tuple[str, ...],
        reason: str,
        events: list[Event],
    ) -> int:
        """Cancel the account's open orders in ``symbols``; return how many."""
        ...

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
        """Send an IOC reduce-only order at ``price`` through the book; its id."""
        ...
