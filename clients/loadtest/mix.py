"""What the simulated bots send: the order mix and the request it draws.

Each bot draws its next request from its own seeded `random.Random`, so a
run's requests are reproducible given the seed and the order of answers.
New orders carry the request id as their client order id (to time the first
fill); cancels and amends name one of the bot's own open orders (an
acknowledged limit order not yet seen to end), or place a limit order when
it has none.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from decimal import Decimal

from exchange.gateway.wire import AmendOrder, BatchItem, CancelOrder, NewOrder
from exchange.messages import MarginMode, Side

__all__ = ["BotBook", "OrderMix", "parse_mix"]


@dataclass(frozen=True, slots=True)
class OrderMix:
    """Weights of the request kinds and the order settings the bots use.

    ``cross`` is the chance a limit order is priced through the mid (and
    trades); ``band`` the spread of passive prices around the mid, as a
    fraction of it; ``leverage`` and ``margin_modes`` are set per bot at
    start, bot *i* taking element ``i % len``.
    """

    limit: float = 0.55
    market: float = 0.1
    cancel: float = 0.25
    amend: float = 0.1
    post_only: float = 0.1
    reduce_only: float = 0.05
    cross: float = 0.1
    band: float = 0.002
    qty_lots: tuple[int, int] = (1, 20)
    leverage: tuple[int, ...] = (5, 10, 20)
    margin_modes: tuple[MarginMode, ...] = ("cross", "isolated")
    symbols: tuple[str, ...] = ("BTC-PERP",)

    def kinds(self) -> tuple[list[str], list[float]]:
        """Return the request kinds and their weights."""
        return ["limit", "market", "cancel", "amend"], [
            self.limit,
            self.market,
            self.cancel,
            self.amend,
        ]


def parse_mix(text: str) -> dict[str, float]:
    """Parse ``limit=55,market=10,cancel=25,amend=10`` into weights.

    Raises:
        ValueError: an unknown kind or a negative weight, or all zero.
    """
    weights: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.partition("=")
        if name not in {"limit", "market", "cancel", "amend"}:
            msg = f"mix: unknown kind {name!r} (limit, market, cancel, amend)"
            raise ValueError(msg)
        weights[name] = float(value)
        if weights[name] < 0:
            msg = f"mix: {name} has a negative weight"
            raise ValueError(msg)
    if not any(weights.values()):
        msg = "mix: every weight is zero"
        raise ValueError(msg)
    return weights


@dataclass(slots=True)
class BotBook:
    """One bot's view: its open orders (oldest first) and how to draw requests."""

    account: str
    mix: OrderMix
    tick: Decimal
    lot: Decimal
    rng: random.Random
    mid: dict[str, Decimal]
    open_orders: dict[int, str] = field(default_factory=dict)  # order id -> symbol

    def draw(self, request_id: str) -> tuple[str, BatchItem]:
        """Return the next request's metric (order, cancel, amend) and the request."""
        kinds, weights = self.mix.kinds()
        kind = self.rng.choices(kinds, weights)[0]
        ts_ms = time.time_ns() // 1_000_000
        if kind == "cancel" and self.open_orders:
            order_id = next(iter(self.open_orders))
            del self.open_orders[order_id]  # one cancel per order
            return "cancel", CancelOrder(id=request_id, ts_ms=ts_ms, order_id=order_id)
        if kind == "amend" and self.open_orders:
            order_id = next(reversed(self.open_orders))
            symbol = self.open_orders[order_id]
            side: Side = "buy" if self.rng.random() < 0.5 else "sell"
            return "amend", AmendOrder(
                id=request_id,
                ts_ms=ts_ms,
                order_id=order_id,
                price=self._passive_price(symbol, side),
            )
        return "order", self._new_order(request_id, ts_ms, market=kind == "market")

    def _new_order(self, request_id: str, ts_ms: int, *, market: bool) -> NewOrder:
        """Return a new limit or market order of a random side and size."""
        rng, mix = self.rng, self.mix
        symbol = rng.choice(mix.symbols)
        side: Side = "buy" if rng.random() < 0.5 else "sell"
        qty = self.lot * rng.randint(*mix.qty_lots)
        reduce_only = rng.random() < mix.reduce_only
        if market:
            return NewOrder(
                id=request_id,
                ts_ms=ts_ms,
                symbol=symbol,
                side=side,
                type="market",
                qty=qty,
                reduce_only=reduce_only,
                cid=request_id,
            )
        crossing = rng.random() < mix.cross
        price = (
            self._crossing_price(symbol, side)
            if crossing
            else self._passive_price(symbol, side)
        )
        return NewOrder(
            id=request_id,
            ts_ms=ts_ms,
            symbol=symbol,
            side=side,
            type="limit",
            qty=qty,
            price=price,
            post_only=not crossing and rng.random() < mix.post_only,
            reduce_only=reduce_only,
            cid=request_id,
        )

    def _passive_price(self, symbol: str, side: Side) -> Decimal:
        """Return a price on the bot's own side of the mid, within the band."""
        away = Decimal(repr(self.rng.uniform(0.0001, self.mix.band)))
        factor = 1 - away if side == "buy" else 1 + away
        return self._on_tick(self.mid[symbol] * factor)

    def _crossing_price(self, symbol: str, side: Side) -> Decimal:
        """Return a price through the mid by up to half the band (it trades)."""
        away = Decimal(repr(self.rng.uniform(0.0001, self.mix.band / 2)))
        factor = 1 + away if side == "buy" else 1 - away
        return self._on_tick(self.mid[symbol] * factor)

    def _on_tick(self, price: Decimal) -> Decimal:
        """Round a price to the market's tick."""
        return (price / self.tick).quantize(Decimal(1)) * self.tick
