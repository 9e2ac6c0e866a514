"""Who trades in ``paperx demo``: the sample bots, their accounts and settings.

Two market makers (BTC-PERP and ETH-PERP) quote for everyone; two trend
followers run the same signal, one isolated and one cross, so the report
compares the modes on the same trades; a lottery-ticket trader buys 125x
isolated tickets; a hedger holds long BTC / short ETH under cross; and
``bots`` noise traders (alternately isolated and cross) make the crowd.
Every random choice derives from ``seed``.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from clients.bots import hedger, lottery, market_maker, noise, trend
from clients.sdk import PaperxClient

__all__ = ["Role", "cast"]

D = Decimal
Bot = Callable[[PaperxClient], Coroutine[Any, Any, object]]
Mode = Literal["isolated", "cross"]


@dataclass(frozen=True, slots=True)
class Role:
    """One bot of the demo: its account, deposit (USDT), what it is, how it runs."""

    account: str
    deposit: Decimal
    bot: str  # its `paperx bot` name
    run: Bot


def cast(bots: int, seed: int) -> list[Role]:
    """Return the demo's bots: the fixed cast, then ``bots`` noise traders."""
    roles = [
        Role("maker-btc", D(2_000_000), "market-maker", _maker("BTC-PERP", "0.1")),
        Role("maker-eth", D(2_000_000), "market-maker", _maker("ETH-PERP", "0.01")),
        Role("trend-isolated", D(10_000), "trend", _trend("isolated")),
        Role("trend-cross", D(10_000), "trend", _trend("cross")),
        Role("lottery", D(1_000), "lottery", _lottery(seed)),
        Role("hedger", D(10_000), "hedger", _hedger()),
    ]
    roles += [
        Role(f"noise-{i}", D(5_000), "noise", _noise(seed * 1000 + i))
        for i in range(1, bots + 1)
    ]
    return roles


def _maker(symbol: str, tick: str) -> Bot:
    """Quote 50,000 USDT a side, 4 bps apart, around ``symbol``'s mark."""
    size = D("0.8") if symbol == "BTC-PERP" else D(15)

    def run(client: PaperxClient) -> Coroutine[Any, Any, int]:
        return market_maker.run(
            client, symbol, size=size, spread_bps=D(4), skew_bps=D(1), tick=D(tick)
        )

    return run


def _trend(mode: Mode) -> Bot:
    """Follow BTC's trend with 0.5 BTC at 50x in ``mode``."""

    def run(client: PaperxClient) -> Coroutine[Any, Any, object]:
        return trend.run(
            client,
            "BTC-PERP",
            mode=mode,
            leverage=50,
            size=D("0.5"),
            window=8,
            threshold_bps=D(6),
        )

    return run


def _lottery(seed: int) -> Bot:
    """Buy 0.02 BTC tickets at 125x isolated, taking profit 100 bps away."""

    def run(client: PaperxClient) -> Coroutine[Any, Any, object]:
        return lottery.run(
            client,
            "BTC-PERP",
            leverage=125,
            size=D("0.02"),
            take_profit_bps=D(100),
            seed=seed,
        )

    return run


def _hedger() -> Bot:
    """Hold 30,000 USDT long BTC and short ETH at 10x under cross."""

    def run(client: PaperxClient) -> Coroutine[Any, Any, object]:
        return hedger.run(
            client, "BTC-PERP", "ETH-PERP", notional=D(30_000), leverage=10
        )

    return run


def _noise(seed: int) -> Bot:
    """Trade small random amounts of BTC and ETH, isolated or cross by seed."""
    mode: Mode = "isolated" if seed % 2 else "cross"

    def run(client: PaperxClient) -> Coroutine[Any, Any, object]:
        return noise.run(
            client,
            ["BTC-PERP", "ETH-PERP"],
            seed=seed,
            max_lots=50,
            pause=0.25,
            mode=mode,
            leverage=10,
        )

    return run
