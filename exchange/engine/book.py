"""The order book: price levels of FIFO queues on `sortedcontainers.SortedDict`.

Each side maps price (ticks) -> `Level`; a level is a deque of `Order`s in
time priority with its open total. Cancels are lazy: a removed order is marked
dead (``remaining == 0``) and left in its deque until matching reaches it or
the level empties (then the whole level goes), so a cancel is O(1) whatever
the queue length; a level whose deque is mostly dead is compacted.

The book only stores and indexes orders; the rules of who trades with whom
are in `matching`. The order-id and per-account indexes are shared by every
book of an exchange (one dict each), so the core finds any open order by id.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from itertools import islice
from typing import TYPE_CHECKING

import msgspec
from sortedcontainers import SortedDict

if TYPE_CHECKING:
    from exchange.messages import OrderAccepted

__all__ = ["Level", "Order", "OrderBook"]

# A level is compacted once its deque holds this many more dead than live orders.
_COMPACT_SLACK = 32


class Order(msgspec.Struct, eq=False, gc=False):
    """An open order: identity, price (ticks), open quantity (lots), static spec.

    ``spec`` is the `OrderAccepted` event that created it (side, type, flags,
    client id...), shared rather than copied. ``reserved`` is the margin the
    ledger holds for it (0 without a ledger). ``remaining == 0`` marks a dead
    entry still sitting in a level's deque.

    A mutable msgspec struct rather than a slotted class: one is built per
    accepted order, and msgspec builds it in C, 3x faster than ``__init__``.
    ``eq=False``: orders compare (and hash) by identity; ``gc=False``: they
    hold only ints, strings and their spec, so they are never in a cycle.
    """

    order_id: int
    account: str
    is_buy: bool
    price: int
    remaining: int
    spec: OrderAccepted
    reserved: int = 0  # E8 margin the ledger holds for the open part

    def __repr__(self) -> str:
        """Show id, side, open quantity and price."""
        side = "buy" if self.is_buy else "sell"
        return (
            f"Order({self.order_id} {self.account} {side} "
            f"{self.remaining}@{self.price})"
        )


class Level:
    """One price level: a FIFO of orders, its open total and live-order count.

    ``price`` is the level's own int: orders placed at an existing level take
    it (`OrderEntry.place`), so a price costs one int object per level, not
    one per order (32 bytes each).
    """

    __slots__ = ("live", "orders", "price", "total")

    def __init__(self, price: int) -> None:
        """Create an empty level at ``price`` ticks."""
        self.price = price
        self.orders: deque[Order] = deque()
        self.total = 0
        self.live = 0


class OrderBook:
    """Both sides of one symbol's book, plus the exchange-wide order indexes."""

    __slots__ = (
        "ask_keys",
        "asks",
        "bid_keys",
        "bids",
        "by_account",
        "index",
        "symbol",
    )

    def __init__(
        self,
        symbol: str,
        index: dict[int, Order] | None = None,
        by_account: dict[str, dict[int, Order]] | None = None,
    ) -> None:
        """Create an empty book; pass the exchange's shared indexes if any."""
        self.symbol = symbol
        self.bids: SortedDict = SortedDict()  # price -> Level; best = last
        self.asks: SortedDict = SortedDict()  # price -> Level; best = first
        # The sorted key storage of each side (a list of sorted sublists), for a
        # best-price peek without a method call: ``ask_keys[0][0]`` is the best
        # ask, ``bid_keys[-1][-1]`` the best bid. sortedcontainers 2.x keeps this
        # list object for the dict's lifetime (pinned < 3 in pyproject); the
        # differential tests against a naive book guard the assumption.
        self.ask_keys: list[list[int]] = self.asks._list._lists  # noqa: SLF001
        self.bid_keys: list[list[int]] = self.bids._list._lists  # noqa: SLF001
        self.index: dict[int, Order] = {} if index is None else index
        self.by_account: dict[str, dict[int, Order]] = (
            {} if by_account is None else by_account
        )

    # ------------------------------------------------------------ mutation

    def add(self, order: Order) -> None:
        """Append an order at the back of its price level and index it."""
        side = self.bids if order.is_buy else self.asks
        level = side.get(order.price)
        if level is None:
            level = side[order.price] = Level(order.price)
        level.orders.append(order)
        level.total += order.remaining
        level.live += 1
        self.index[order.order_id] = order
        account_orders = self.by_account.get(order.account)
        if account_orders is None:
            account_orders = self.by_account[order.account] = {}
        account_orders[order.order_id] = order

    def remove(self, order: Order) -> None:
        """Take a resting order out of the book (lazily) and unindex it."""
        side = self.bids if order.is_buy else self.asks
        level: Level = side[order.price]
        level.total -= order.remaining
        level.live -= 1
        order.remaining = 0
        if level.live == 0:
            del side[order.price]
        elif len(level.orders) > 2 * level.live + _COMPACT_SLACK:
            level.orders = deque(o for o in level.orders if o.remaining)
        self.unindex(order)

    def unindex(self, order: Order) -> None:
        """Forget an order that is no longer open (filled, canceled, expired)."""
        del self.index[order.order_id]
        del self.by_account[order.account][order.order_id]

    def reduce(self, order: Order, remaining: int) -> None:
        """Lower a resting order's open quantity in place, keeping its priority."""
        side = self.bids if order.is_buy else self.asks
        side[order.price].total -= order.remaining - remaining
        order.remaining = remaining

    # ------------------------------------------------------------ queries

    def best_bid(self) -> int | None:
        """Return the highest bid price in ticks, or None."""
        keys = self.bid_keys
        return keys[-1][-1] if keys else None

    def best_ask(self) -> int | None:
        """Return the lowest ask price in ticks, or None."""
        keys = self.ask_keys
        return keys[0][0] if keys else None

    def level_qty(self, is_buy: bool, price: int) -> int:
        """Return the open lots at one level (0 if there is none)."""
        level = (self.bids if is_buy else self.asks).get(price)
        return 0 if level is None else level.total

    def levels(self, is_buy: bool) -> Iterator[tuple[int, int]]:
        """Yield (price, open lots) of one side, best first, as long as asked."""
        side = self.bids if is_buy else self.asks
        for price in reversed(side) if is_buy else iter(side):
            yield price, side[price].total

    def depth(self, is_buy: bool, levels: int) -> list[tuple[int, int]]:
        """Return up to ``levels`` (price, open lots) pairs, best first."""
        return list(islice(self.levels(is_buy), levels))

    def orders(self, is_buy: bool) -> Iterator[Order]:
        """Yield the open orders of one side in priority order (best price first)."""
        side = self.bids if is_buy else self.asks
        prices = reversed(side) if is_buy else iter(side)
        for price in prices:
            for order in side[price].orders:
                if order.remaining:
                    yield order
