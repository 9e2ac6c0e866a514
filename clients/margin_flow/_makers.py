"""The market makers: their accounts, ladders around the index, and re-quotes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from clients.margin_flow._market import PPM
from exchange.messages import (
    CancelAll,
    Command,
    Deposit,
    PlaceOrder,
    SetLeverage,
    SetMarginMode,
)
from exchange.units import SCALE

if TYPE_CHECKING:
    import random
    from collections.abc import Sequence

    from clients.margin_flow._market import MarketView
    from clients.margin_flow._shape import MarginShape


class Makers:
    """The makers ``mm-1`` ... ``mm-N``, each with its own re-quote threshold."""

    def __init__(self, shape: MarginShape, rng: random.Random) -> None:
        """Name the makers and draw their re-quote thresholds from ``rng``."""
        self.shape = shape
        self.names = [f"mm-{i}" for i in range(1, shape.makers + 1)]
        self.thresholds = [rng.randint(*shape.requote_ppm) for _ in self.names]

    def setup(self, markets: Sequence[MarketView]) -> list[Command]:
        """Return the makers' deposits, cross margin modes and leverages."""
        shape = self.shape
        out: list[Command] = []
        for maker in self.names:
            out.append(Deposit(account=maker, amount=shape.maker_deposit * SCALE))
            for m in markets:
                symbol = m.market.symbol
                out.append(SetMarginMode(account=maker, symbol=symbol, mode="cross"))
                out.append(
                    SetLeverage(
                        account=maker, symbol=symbol, leverage=shape.maker_leverage
                    )
                )
        return out

    def pull(self, m: MarketView) -> list[Command]:
        """Return every maker's cancel-all in the market; they quote afresh after."""
        m.centres = [None] * len(self.names)
        return [CancelAll(account=a, symbol=m.market.symbol) for a in self.names]

    def requote(self, m: MarketView) -> list[Command]:
        """Return the ladders of the makers the index moved past their threshold."""
        out: list[Command] = []
        for i in range(len(self.names)):
            centre = m.centres[i]
            if centre is None or abs(m.index - centre) * PPM > (
                self.thresholds[i] * centre
            ):
                out.extend(self.ladder(m, i))
        return out

    def ladder(self, m: MarketView, i: int) -> list[Command]:
        """Return maker ``i``'s cancel-all and fresh ladder around the index."""
        shape, market = self.shape, m.market
        maker = self.names[i]
        m.centres[i] = m.index
        out: list[Command] = [CancelAll(account=maker, symbol=market.symbol)]
        price_e8 = m.index * market.tick_size
        # the crowd's net long is the makers' short: quote more bids then
        net = m.net * market.lot_size * price_e8 // SCALE // SCALE  # USDT
        skew = max(-0.8, min(0.8, net / (len(self.names) * shape.maker_limit)))
        base = shape.level_notional * SCALE * SCALE // price_e8  # E8 qty
        lots = max(base // market.lot_size, 1)
        for level in range(shape.levels):
            ppm = shape.half_spread_ppm + level * shape.level_step_ppm
            offset = max(m.index * ppm // PPM, 1)
            post_only = level >= shape.levels - 2
            for side, sign, size in (
                ("buy", -1, round(lots * (1 + skew))),
                ("sell", 1, round(lots * (1 - skew))),
            ):
                out.append(
                    PlaceOrder(
                        account=maker,
                        symbol=market.symbol,
                        side=side,  # type: ignore[arg-type]
                        type="limit",
                        qty=max(size, 1) * market.lot_size,
                        price=(m.index + sign * offset) * market.tick_size,
                        post_only=post_only,
                    )
                )
        return out
