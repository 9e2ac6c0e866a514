"""Recorded runs for the replay tools' tests: the README's crash, a margin stream."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec
from clock import START_NS, FixedClock

from clients.margin_flow import MarginShape, MarginStream, generate
from exchange import DEFAULT_MARKETS, Exchange, Market
from exchange.messages import SetMarginMode

if TYPE_CHECKING:
    from pathlib import Path

BTC = "BTC-PERP"
STORY_MARKET = Market.from_decimals(
    "BTC-PERP",
    tick_size="0.1",
    lot_size="0.001",
    max_price="4529764",
    mark_source="index",
)
SECOND_NS = 10**9


def story_venue(path: Path, clock: FixedClock | None = None) -> Exchange:
    """Return a margin exchange on the story's market, journaling to ``path``.

    ``clock`` (default: standing at 07:00 UTC) stamps its records.
    """
    clock = clock or FixedClock(START_NS)
    return Exchange([STORY_MARKET], margin=True, journal=path, clock=clock)


def record_crash(path: Path, alice: str, bob: str) -> None:
    """Journal the README's story with alice and bob in the given margin modes.

    Alice (10,000 USDT) goes long 0.5 BTC at 60,000 with 10x leverage against
    bob, who also bids 0.5 at 54,100; the index falls to 54,000 (below the
    isolated liquidation price 54,216.87), comes back to 57,000, then 58,000.
    """
    clock = FixedClock(START_NS)
    ex = story_venue(path, clock)
    ex.deposit("alice", "10000")
    ex.deposit("bob", "1000000")
    ex.set_index_price(BTC, "60000")
    ex.set_margin_mode("alice", BTC, alice)
    ex.set_leverage("alice", BTC, 10)
    ex.set_margin_mode("bob", BTC, bob)
    ex.place_order("bob", BTC, "sell", "limit", "0.5", "60000")
    ex.place_order("alice", BTC, "buy", "market", "0.5")
    ex.place_order("bob", BTC, "buy", "limit", "0.5", "54100")
    for price in ("57000", "54000", "57000", "58000"):
        clock.now += SECOND_NS
        ex.set_index_price(BTC, price)
    ex.close()


def margin_stream(n: int = 3_000) -> MarginStream:
    """A seeded venue-like margin stream with liquidations in either mode."""
    return generate(n, 7, MarginShape(accounts=1_000, makers=4))


def record_stream(path: Path, stream: MarginStream, *, flip: bool) -> None:
    """Journal ``stream`` through the facade, every margin mode flipped if ``flip``.

    The clock reads the stream's own stamps, so both runs see the same times.
    """
    clock = FixedClock(0)
    ex = Exchange(DEFAULT_MARKETS, margin=True, journal=path, clock=clock, fsync="off")
    for ts_ns, cmd in [*stream.setup, *stream.flow]:
        clock.now = ts_ns
        if flip and isinstance(cmd, SetMarginMode):
            other = "cross" if cmd.mode == "isolated" else "isolated"
            ex.submit(msgspec.structs.replace(cmd, mode=other))
        else:
            ex.submit(cmd)
    ex.close()
