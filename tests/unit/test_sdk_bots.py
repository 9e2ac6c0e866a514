"""The sample bots, run on an in-process exchange."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from sdk_rig import BTC, client, venue

from clients.bots import hedger, lottery, market_maker, noise, trend

D = Decimal
ETH = "ETH-PERP"
GUARD_S = 10  # a guard against a hang, not a timing


async def subscribed(ex, name):
    """Return once some client of ``ex`` subscribes to topic ``name``."""
    for _ in range(10_000):
        if any(name in link.subscriptions for link in ex.transports):
            return
        await asyncio.sleep(0)  # let the bot run up to its subscription
    raise AssertionError(name)


async def test_the_market_maker_quotes_both_sides_and_requotes_on_a_new_mark():
    """Each mark update replaces the quotes: one bid below, one ask above."""
    ex = venue("mm")
    async with client(ex, "mm") as mm:
        bot = asyncio.create_task(market_maker.run(mm, BTC, requotes=2))
        await subscribed(ex, "paperx/v1/md/BTC-PERP/mark")
        ex.set_index(BTC, "65010")
        ex.set_index(BTC, "65020")
        assert await asyncio.wait_for(bot, GUARD_S) == 2
        quotes = await mm.fetch_open_orders(BTC)
    assert sorted((q["side"], q["price"]) for q in quotes) == [
        ("buy", D("64987.4")),
        ("sell", D("65052.6")),
    ]


@pytest.mark.parametrize("mode", ["isolated", "cross"])
async def test_the_trend_follower_buys_a_rising_mark_in_its_mode_and_leverage(mode):
    """A mark rising past its average makes the bot go long, as configured."""
    ex = venue("trend", "mm")
    async with client(ex, "trend") as bot_client, client(ex, "mm") as mm:
        await mm.create_order(BTC, "limit", "sell", "1", "65700")
        bot = asyncio.create_task(
            trend.run(bot_client, BTC, mode=mode, leverage=20, window=3, steps=4)
        )
        await subscribed(ex, "paperx/v1/md/BTC-PERP/mark")
        for price in ("65010", "65020", "65030", "65600"):
            ex.set_index(BTC, price)
        orders = await asyncio.wait_for(bot, GUARD_S)
        (position,) = await bot_client.fetch_positions([BTC])
    assert [(o["side"], o["status"]) for o in orders] == [("buy", "closed")]
    assert (position["side"], position["marginMode"], position["leverage"]) == (
        "long",
        mode,
        20,
    )


async def test_the_trend_follower_reads_its_position_after_a_liquidation():
    """Liquidated while long, a falling mark makes it go short by its size only."""
    ex = venue("trend", deposit="1000")
    ex.add_account("mm", "100000")
    async with client(ex, "trend") as bot_client, client(ex, "mm") as mm:
        await mm.create_order(BTC, "limit", "sell", "0.1", "65600")
        await mm.create_order(BTC, "limit", "buy", "1", "63990")
        bot = asyncio.create_task(
            trend.run(bot_client, BTC, leverage=100, size=D("0.1"), window=3, steps=7)
        )
        await subscribed(ex, "paperx/v1/md/BTC-PERP/mark")
        for price in ("65010", "65020", "65030", "65600"):  # long at 65,600
            ex.set_index(BTC, price)
        for price in ("64000", "63990", "63980"):  # liquidated; the trend is down
            ex.set_index(BTC, price)
        orders = await asyncio.wait_for(bot, GUARD_S)
        positions = await bot_client.fetch_positions([BTC])
    assert [(o["side"], o["filled"]) for o in orders] == [
        ("buy", D("0.1")),
        ("sell", D("0.1")),
    ]
    assert [(p["side"], p["contracts"]) for p in positions] == [("short", D("0.1"))]


async def test_a_lottery_ticket_wins_at_its_take_profit_and_the_next_is_liquidated():
    """The first ticket's take-profit fills; the second loses its isolated margin."""
    ex = venue("yolo", "mm", "buyer", deposit="2000")
    async with (
        client(ex, "yolo") as yolo,
        client(ex, "mm") as mm,
        client(ex, "buyer") as buyer,
    ):
        await mm.create_order(BTC, "limit", "sell", "0.01", "65000")  # ticket 1
        await mm.create_order(BTC, "limit", "buy", "0.1", "30000")
        orders = yolo.watch_orders(BTC)
        bot = asyncio.create_task(lottery.run(yolo, BTC, seed=1, tickets=2))
        take_profits = []
        async with asyncio.timeout(GUARD_S):
            while len(take_profits) < 2:
                order = await anext(orders)
                if order["reduceOnly"] and order["status"] == "open":
                    take_profits.append(order)
                    if len(take_profits) == 1:  # a buyer takes its profit
                        await buyer.create_order(BTC, "limit", "buy", "0.01", "65325")
                        await mm.create_order(BTC, "limit", "sell", "0.01", "65000")
        ex.set_index(BTC, "64000")  # the second ticket is liquidated
        won, lost = await asyncio.wait_for(bot, GUARD_S)
        balance = await yolo.fetch_balance()
    assert [o["price"] for o in take_profits] == [D("65325"), D("65325")]
    assert won == D("3.25")
    assert -D("6.5") >= lost >= -D("6.5") - D("3")  # the ticket's margin, and fees
    assert balance["USDT"]["total"] == D(2000) + won + lost  # the rest untouched


async def test_noise_traders_with_the_same_seed_send_the_same_orders():
    """A seed fixes each order's symbol, side and size; the orders fill."""
    runs = []
    for _ in range(2):
        ex = venue("crowd", "mm")
        ex.set_index(ETH, "3500")
        async with client(ex, "crowd") as crowd, client(ex, "mm") as mm:
            for symbol, low, high in ((BTC, "64000", "66000"), (ETH, "3400", "3600")):
                await mm.create_order(symbol, "limit", "buy", "1", low)
                await mm.create_order(symbol, "limit", "sell", "1", high)
            orders = await noise.run(
                crowd, [BTC, ETH], seed=3, pause=0, mode="isolated", steps=8
            )
        runs.append([(o["symbol"], o["side"], o["amount"]) for o in orders])
        assert all(o["status"] == "closed" for o in orders)
    assert runs[0] == runs[1]
    assert len(runs[0]) == 8
    assert len({side for _, side, _ in runs[0]}) == 2


async def test_the_hedger_holds_a_long_and_a_short_of_equal_notional_under_cross():
    """Once both marks are known it buys BTC and sells ETH for the notional, cross."""
    ex = venue("pair", "mm")
    async with client(ex, "pair") as pair, client(ex, "mm") as mm:
        await mm.create_order(BTC, "limit", "sell", "1", "65000")
        await mm.create_order(ETH, "limit", "buy", "10", "3500")
        bot = asyncio.create_task(hedger.run(pair, BTC, ETH, steps=3))
        await subscribed(ex, "paperx/v1/md/ETH-PERP/mark")
        ex.set_index(BTC, "65010")
        ex.set_index(ETH, "3500")
        ex.set_index(ETH, "3501")  # a move under the threshold: no trade
        orders = await asyncio.wait_for(bot, GUARD_S)
        positions = await pair.fetch_positions()
    assert [(o["symbol"], o["side"], o["filled"]) for o in orders] == [
        ("BTC/USDT:USDT", "buy", D("0.153")),
        ("ETH/USDT:USDT", "sell", D("2.857")),
    ]
    assert {(p["symbol"], p["side"], p["marginMode"]) for p in positions} == {
        ("BTC/USDT:USDT", "long", "cross"),
        ("ETH/USDT:USDT", "short", "cross"),
    }
