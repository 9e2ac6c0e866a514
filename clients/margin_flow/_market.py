"""One market as the generator sees it: its index, quote centres, crowd and triggers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sortedcontainers import SortedList

from clients.orderflow import DEFAULT_START_PRICES
from exchange.units import to_e8

if TYPE_CHECKING:
    from exchange.markets import Market

PPM = 1_000_000


class MarketView:
    """One market: its index path, makers' quote centres and trigger lists."""

    __slots__ = (
        "centres",
        "down",
        "gap_at",
        "index",
        "leg_end",
        "leg_step",
        "market",
        "net",
        "up",
    )

    def __init__(self, market: Market, start: int, makers: int) -> None:
        """Start at index ``start`` (ticks), with ``makers`` makers yet to quote."""
        self.market = market
        self.index = start  # ticks
        self.centres: list[int | None] = [None] * makers  # last quote centre, ticks
        self.net = 0  # the takers' net position, lots
        # (price ticks, seqno, kind, position): fire when the index rises to /
        # falls to the price
        self.up: SortedList = SortedList()
        self.down: SortedList = SortedList()
        self.leg_end = 0  # flow step at which the current leg ends
        self.leg_step = 0.0  # drift per index update, ppm
        self.gap_at = -1  # flow step of this leg's jump (-1: none to come)


def start_ticks(market: Market) -> int:
    """Return a market's starting index in ticks (orderflow's start prices)."""
    price = DEFAULT_START_PRICES.get(market.symbol, "1000")
    return to_e8(price) // market.tick_size
