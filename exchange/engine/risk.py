"""What the engine asks of the risk side: the narrow interface it matches under.

The engine never imports the margin ledger. The core hands it an object with
these methods (the ledger, or None for a pure matching venue), and the engine
calls them at the points where an order's money is decided: before accepting
it, at every fill, and when it leaves the book.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from exchange.codes import Refusal
    from exchange.engine.book import Order, OrderBook
    from exchange.messages import Event, OrderFilled

__all__ = ["RiskGate"]


class RiskGate(Protocol):
    """Pre-trade checks, order margin, fees, settlement and the mark, by symbol."""

    def check_order(
        self,
        account_name: str,
        symbol: str,
        is_buy: bool,
        limit: int,
        lots: int,
        reduce_only: bool,
        book: OrderBook,
        credit: int = 0,
    ) -> Refusal | int:
        """Return the margin (E8) an order must hold, or why it is refused."""
        ...

    def reserve(self, order: Order, amount: int) -> None:
        """Hold ``amount`` of the account's free balance for an open order."""
        ...

    def release(self, order: Order, lots: int, open_before: int) -> None:
        """Release the margin of ``lots`` of an order that had ``open_before`` open."""
        ...

    def release_all(self, order: Order) -> None:
        """Release everything an order holds (it was canceled or expired)."""
        ...

    def fees(self, symbol: str, ticks: int, lots: int) -> tuple[int, int]:
        """Return the (taker, maker) fees in E8 of a fill."""
        ...

    def settle(self, seq: int, fill: OrderFilled, events: list[Event]) -> None:
        """Book a fill into both accounts' positions and wallets."""
        ...

    def mark(self, symbol: str) -> int:
        """Return the market's mark price in E8 (0: no price yet)."""
        ...
