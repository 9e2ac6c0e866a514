"""Untriggered stop and take-profit orders, waiting for a reference price.

A "rising" trigger fires when the reference price reaches it from below (buy
stop, sell take-profit); a "falling" one when it reaches it from above (sell
stop, buy take-profit). Triggered orders fire one at a time, nearest trigger
first and then in time order, so a cascade is deterministic. Which price is the
reference (last trade now, mark price with margin) is the caller's choice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sortedcontainers import SortedDict

if TYPE_CHECKING:
    from exchange.engine.book import Order

__all__ = ["TriggerBook", "is_rising"]

_STOP_TYPES = frozenset({"stop_market", "stop_limit"})


def is_rising(order_type: str, is_buy: bool) -> bool:
    """Return True if the order fires when the price rises to its trigger."""
    return is_buy == (order_type in _STOP_TYPES)


class TriggerBook:
    """Pending triggers of one symbol, indexed by trigger price (ticks)."""

    __slots__ = ("by_account", "falling", "index", "parked", "rising")

    def __init__(
        self, index: dict[int, Order], by_account: dict[str, dict[int, Order]]
    ) -> None:
        """Create an empty trigger book sharing the exchange's order indexes."""
        self.rising: SortedDict = SortedDict()  # trigger -> list[Order], FIFO
        self.falling: SortedDict = SortedDict()
        self.parked: dict[int, Order] = {}  # this book's pending orders by id
        self.index = index
        self.by_account = by_account

    def __len__(self) -> int:
        """Return the number of pending orders."""
        return len(self.parked)

    def __contains__(self, order_id: int) -> bool:
        """Return True if the order is pending here (not yet triggered)."""
        return order_id in self.parked

    def would_fire(
        self, rising: bool, trigger: int, price: int | None, unit: int = 1
    ) -> bool:
        """Return True if a trigger at ``trigger`` ticks is reached at ``price``.

        ``price`` is in ticks (``unit`` 1) or in E8 (``unit`` = the tick size).
        """
        if not price:
            return False
        return price >= trigger * unit if rising else price <= trigger * unit

    def add(self, order: Order, trigger: int, rising: bool) -> None:
        """Park an order until the reference price reaches ``trigger`` ticks."""
        side = self.rising if rising else self.falling
        queue = side.get(trigger)
        if queue is None:
            queue = side[trigger] = []
        queue.append(order)
        self.parked[order.order_id] = order
        self.index[order.order_id] = order
        self.by_account.setdefault(order.account, {})[order.order_id] = order

    def remove(self, order: Order, trigger: int, rising: bool) -> None:
        """Take a pending order out (cancel) and unindex it."""
        side = self.rising if rising else self.falling
        queue = side[trigger]
        queue.remove(order)
        if not queue:
            del side[trigger]
        self._forget(order)

    def pop_next(self, price: int, unit: int = 1) -> Order | None:
        """Remove and return the next order that ``price`` has triggered, if any.

        ``price`` is in ticks (``unit`` 1) or in E8 (``unit`` = the tick size).
        """
        for side, key_index in ((self.rising, 0), (self.falling, -1)):
            if not side:
                continue
            trigger, queue = side.peekitem(key_index)
            level = trigger * unit
            if price >= level if key_index == 0 else price <= level:
                order: Order = queue.pop(0)
                if not queue:
                    del side[trigger]
                self._forget(order)
                return order
        return None

    def _forget(self, order: Order) -> None:
        """Drop an order that left this book from every index."""
        del self.parked[order.order_id]
        del self.index[order.order_id]
        del self.by_account[order.account][order.order_id]

    def pending(self) -> list[tuple[int, bool, Order]]:
        """Return (trigger, rising, order) for every pending order, canonically."""
        out = [(t, True, o) for t, q in self.rising.items() for o in q]
        out += [(t, False, o) for t, q in self.falling.items() for o in q]
        return out
