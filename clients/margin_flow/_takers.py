"""The takers: their accounts and settings, and how often each of them acts."""

from __future__ import annotations

import bisect
import math
from typing import TYPE_CHECKING

from exchange.messages import (
    Command,
    Deposit,
    MarginMode,
    SetLeverage,
    SetMarginMode,
)
from exchange.units import SCALE

if TYPE_CHECKING:
    import random
    from collections.abc import Sequence

    from clients.margin_flow._market import MarketView
    from clients.margin_flow._positions import Position
    from clients.margin_flow._shape import MarginShape


class Taker:
    """One taker account and what the generator believes of it."""

    __slots__ = (
        "deposit",
        "equity",
        "ids",
        "leverage",
        "modes",
        "name",
        "position",
        "target",
    )

    def __init__(self, name: str, deposit: int, target: int, leverage: int) -> None:
        """Start flat, with one deposit of ``deposit`` USDT as its equity."""
        self.name = name
        self.deposit = deposit  # USDT of each deposit
        self.equity = float(deposit)  # USDT, estimated
        self.target = target  # effective leverage
        self.leverage = leverage  # the exchange setting
        self.modes: dict[str, MarginMode] = {}
        self.position: Position | None = None
        self.ids = 0  # client order ids used

    def client_id(self, prefix: str) -> str:
        """Return the taker's next client order id, ``prefix`` and a number."""
        self.ids += 1
        return f"{prefix}{self.ids}"


class Takers:
    """The takers ``t-1`` ... ``t-N``, their activity skewed by Zipf weights."""

    def __init__(self, shape: MarginShape, rng: random.Random) -> None:
        """Draw from ``rng``; there are no takers until `setup`."""
        self.shape = shape
        self.rng = rng
        self.accounts: list[Taker] = []
        self.cumulative: list[float] = []  # activity weights, cumulated

    def setup(self, markets: Sequence[MarketView]) -> list[Command]:
        """Create the takers; return their deposits, modes and leverages."""
        shape, rng = self.shape, self.rng
        out: list[Command] = []
        low, high = math.log(shape.deposit[0]), math.log(shape.deposit[1])
        total = 0.0
        for i in range(1, shape.accounts - shape.makers + 1):
            deposit = round(math.exp(rng.uniform(low, high)))
            target = rng.randint(*shape.leverage)
            taker = Taker(f"t-{i}", deposit, target, math.ceil(target * 1.25))
            self.accounts.append(taker)
            total += 1.0 / i**shape.activity
            self.cumulative.append(total)
            out.append(Deposit(account=taker.name, amount=deposit * SCALE))
            for m in markets:
                symbol = m.market.symbol
                mode: MarginMode = (
                    "isolated" if rng.random() < shape.p_isolated else "cross"
                )
                taker.modes[symbol] = mode
                out.append(SetMarginMode(account=taker.name, symbol=symbol, mode=mode))
                out.append(
                    SetLeverage(
                        account=taker.name, symbol=symbol, leverage=taker.leverage
                    )
                )
        # the takers' order is shuffled so that activity is not by number
        order = list(range(len(self.accounts)))
        rng.shuffle(order)
        self.accounts = [self.accounts[i] for i in order]
        return out

    def pick(self) -> Taker:
        """Return the taker who acts next, drawn by activity weight."""
        total = self.cumulative[-1]
        return self.accounts[bisect.bisect(self.cumulative, self.rng.random() * total)]
