"""The sample bots, run on an in-process exchange."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from sdk_rig import BTC, client, venue

from clients.bots import market_maker, momentum, overleveraged

D = Decimal


async def test_the_market_maker_quotes_both_sides_and_requotes_on_a_new_mark():
    """Each mark update replaces the quotes: one bid below, one ask above."""
    ex = venue("mm")
    async with client(ex, "mm") as mm:
        bot = asyncio.create_task(market_maker.run(mm, BTC, requotes=2))
        await mm.fetch_balance()  # the bot's first read has subscribed by now
        await asyncio.sleep(0)
        ex.set_index(BTC, "65010")
        ex.set_index(BTC, "65020")
        assert await asyncio.wait_for(bot, 10) == 2  # a guard, not a timing
        quotes = await mm.fetch_open_orders(BTC)
    assert sorted((q["side"], q["price"]) for q in quotes) == [
        ("buy", D("64987.4")),
        ("sell", D("65052.6")),
    ]


async def test_the_momentum_bot_buys_a_rising_mark():
    """A mark rising past its average by the threshold makes the bot buy."""
    ex = venue("trend", "mm")
    async with client(ex, "trend") as trend, client(ex, "mm") as mm:
        await mm.create_order(BTC, "limit", "sell", "1", "65700")
        bot = asyncio.create_task(momentum.run(trend, BTC, window=3, steps=4))
        await trend.fetch_balance()
        await asyncio.sleep(0)
        for price in ("65010", "65020", "65030", "65600"):  # marks must move
            ex.set_index(BTC, price)
            await mm.fetch_balance()  # let the bot read each mark
        orders = await asyncio.wait_for(bot, 10)  # a guard, not a timing
    assert [(o["side"], o["status"]) for o in orders] == [("buy", "closed")]


@pytest.mark.parametrize(("mode", "crash"), [("isolated", "64600"), ("cross", "40000")])
async def test_the_overleveraged_bot_is_liquidated(mode, crash):
    """At 100x the long is liquidated when the mark falls far enough for its mode."""
    ex = venue("yolo", "mm", deposit="2000")
    async with client(ex, "yolo") as yolo, client(ex, "mm") as mm:
        await mm.create_order(BTC, "limit", "sell", "0.1", "65000")
        await mm.create_order(BTC, "limit", "buy", "0.1", "30000")
        positions = yolo.watch_positions(BTC)
        bot = asyncio.create_task(overleveraged.run(yolo, BTC, mode=mode, leverage=100))
        while not (await anext(positions))["contracts"]:
            pass  # the settings publish flat position updates first
        ex.set_index(BTC, crash)
        notice = await asyncio.wait_for(bot, 10)  # a guard, not a timing
    assert (notice.symbol, notice.mode, notice.qty) == (BTC, mode, D("0.1"))
