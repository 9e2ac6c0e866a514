"""Accounts and positions: the ledger's state, and the arithmetic of a fill.

Money is an int of E8 collateral units (1e-8 USDT); sizes are signed lots of
the position's market. A position keeps its entry *value* ``cost`` (signed:
long positive) rather than an entry price, so nothing is rounded while a
position grows; the entry price is ``cost / size`` at the edge.

Money identity (checked by the property tests): for every account set,
``deposits - withdrawals == sum(wallet + isolated margins) - sum(cost)
+ insurance fund + fees collected``. A trade moves value between the
buyer's and the seller's (wallet - cost) and never creates any.
"""

from __future__ import annotations

from typing import Literal

from exchange.units import ceil_div

__all__ = ["Account", "FillEffect", "Position", "apply_fill"]

MarginMode = Literal["isolated", "cross"]
DEFAULT_LEVERAGE = 20  # Binance's default for a new symbol
DEFAULT_MODE: MarginMode = "cross"  # Binance's default


class Position:
    """One account's one-way position in one symbol, with its settings."""

    __slots__ = ("account", "cost", "leverage", "margin", "mode", "size", "symbol")

    def __init__(self, account: str, symbol: str) -> None:
        """Create a flat position with the default mode and leverage."""
        self.account = account
        self.symbol = symbol
        self.size = 0  # signed lots
        self.cost = 0  # signed E8 entry value
        self.margin = 0  # isolated wallet (E8); always 0 in cross mode
        self.mode: MarginMode = DEFAULT_MODE
        self.leverage = DEFAULT_LEVERAGE

    def row(self) -> list[object]:
        """Return the canonical plain data of this position."""
        return [
            self.symbol,
            self.size,
            self.cost,
            self.margin,
            self.mode,
            self.leverage,
        ]


class Account:
    """A trader's cross wallet, positions and margin held by open orders."""

    __slots__ = (
        "daily_loss_limit",
        "day",
        "day_pnl",
        "max_order_margin_ppm",
        "name",
        "order_margin",
        "ordinal",
        "positions",
        "wallet",
    )

    def __init__(self, name: str, ordinal: int = 0) -> None:
        """Create an empty account (no risk limits), the ``ordinal``-th opened."""
        self.name = name
        # Where the account stands in the ledger's accounts (in the order they
        # were opened): lists of some accounts are put in that order, as a
        # scan of all of them would be.
        self.ordinal = ordinal
        self.wallet = 0  # cross wallet (E8)
        self.order_margin = 0  # E8 reserved by open orders of every symbol
        self.positions: dict[str, Position] = {}
        self.max_order_margin_ppm = 0  # 0 = off
        self.daily_loss_limit = 0  # E8; 0 = off
        self.day = 0  # exchange day (UTC) that day_pnl covers
        self.day_pnl = 0  # realized PnL minus fees of that day (E8)

    def book_day(self, day: int, pnl: int) -> None:
        """Add realized PnL minus fees to the running total of exchange ``day``."""
        if day != self.day:
            self.day, self.day_pnl = day, 0
        self.day_pnl += pnl

    def row(self) -> list[object]:
        """Return the canonical plain data of the account (positions by symbol)."""
        return [
            self.name,
            self.wallet,
            self.order_margin,
            self.max_order_margin_ppm,
            self.daily_loss_limit,
            self.day,
            self.day_pnl,
            [self.positions[s].row() for s in sorted(self.positions)],
        ]

    def position(self, symbol: str) -> Position:
        """Return the position (created flat on first use) of one symbol."""
        position = self.positions.get(symbol)
        if position is None:
            position = self.positions[symbol] = Position(self.name, symbol)
        return position


class FillEffect:
    """What one fill did to one position: realized PnL and closed/opened lots."""

    __slots__ = ("closed", "old_size", "opened", "realized")

    def __init__(self, old_size: int, closed: int, opened: int, realized: int) -> None:
        """Record the effect."""
        self.old_size = old_size
        self.closed = closed  # lots of the old position closed (>= 0)
        self.opened = opened  # lots added in the fill's direction (>= 0)
        self.realized = realized  # E8 PnL realized by the closed lots


def apply_fill(position: Position, side: int, lots: int, value: int) -> FillEffect:
    """Apply a fill of ``lots`` (side +1 buy / -1 sell) worth ``value`` E8.

    One-way mode: a fill against the position closes up to its size (realizing
    PnL on the closed part) and opens the rest in the fill's direction, so a
    position flips through zero in one fill. The closed part's share of the
    entry value is rounded up (toward +infinity), which rounds the realized
    PnL of longs and shorts alike against the trader, never creating money.
    """
    size = position.size
    if size == 0 or (size > 0) == (side > 0):
        position.size = size + side * lots
        position.cost += side * value
        return FillEffect(size, 0, lots, 0)
    held = abs(size)
    closed = min(lots, held)
    if closed == held:
        removed = position.cost
    else:  # round up: the trader never gains from the division
        removed = ceil_div(position.cost * closed, held)
    closed_value = value * closed // lots if closed != lots else value
    # exit value of the closed lots, signed like the position being closed
    realized = (closed_value if size > 0 else -closed_value) - removed
    position.cost -= removed
    opened = lots - closed
    position.size = size + side * lots
    if opened:
        # the opened part carries the rest of the fill's value (exactly)
        position.cost += side * (value - closed_value)
    return FillEffect(size, closed, opened, realized)
