"""Tests of the outbox: private messages kept whole, market data conflated."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from exchange.gateway.answers import Accepted, MarkUpdate, PublicTrade
from exchange.gateway.outbox import Outbox
from exchange.gateway.wire import Outbound


def _ack(n: int) -> Outbound:
    return Outbound("ack", "alice", Accepted(id=f"r{n}", op="new", seq=n))


def _mark(symbol: str, price: int) -> Outbound:
    message = MarkUpdate(
        seq=price, ts_ns=0, symbol=symbol, mark=Decimal(price), index=None
    )
    return Outbound("mark", symbol, message)


def _trade(n: int) -> Outbound:
    message = PublicTrade(
        seq=n,
        ts_ns=0,
        symbol="X",
        trade_id=n,
        price=Decimal(1),
        qty=Decimal(1),
        taker_side="buy",
    )
    return Outbound("trades", "X", message)


class TestOutbox:
    """Per-kind policies of the outbox."""

    async def test_private_messages_are_never_dropped_and_signal_overload(
        self,
    ) -> None:
        """Acks beyond the limit are kept in order and make the outbox overloaded."""
        outbox = Outbox(private_limit=3)
        outbox.put([_ack(n) for n in range(5)])
        assert outbox.overloaded
        taken = await outbox.take_private(10)
        assert [m.message.seq for m in taken] == list(range(5))
        assert not outbox.overloaded

    async def test_marks_conflate_to_the_latest_per_symbol(self) -> None:
        """Only each symbol's newest mark waits; other symbols keep theirs."""
        outbox = Outbox()
        outbox.put([_mark("X", 1), _mark("Y", 5), _mark("X", 2), _mark("X", 3)])
        taken = await outbox.take_market(10)
        assert sorted((m.key, m.message.seq) for m in taken) == [("X", 3), ("Y", 5)]

    async def test_trades_over_the_limit_drop_the_oldest_and_are_counted(
        self,
    ) -> None:
        """A full trades queue drops its oldest messages and counts them."""
        outbox = Outbox(market_limit=3)
        outbox.put([_trade(n) for n in range(5)])
        taken = await outbox.take_market(10)
        assert [m.message.seq for m in taken] == [2, 3, 4]
        assert outbox.dropped["trades"] == 2

    async def test_takers_wait_for_messages_and_end_when_closed(self) -> None:
        """A waiting taker wakes on a put, and gets [] once closed and empty."""
        outbox = Outbox()
        waiting = asyncio.create_task(outbox.take_private(10))
        await asyncio.sleep(0)
        assert not waiting.done()
        outbox.put([_ack(1)])
        assert len(await asyncio.wait_for(waiting, 5)) == 1
        outbox.close()
        assert await asyncio.wait_for(outbox.take_private(10), 5) == []
        assert await asyncio.wait_for(outbox.take_market(10), 5) == []

    async def test_requeued_private_messages_go_out_first_in_their_order(
        self,
    ) -> None:
        """Messages a dropped link did not send are taken again before newer ones."""
        outbox = Outbox()
        outbox.put([_ack(n) for n in range(4)])
        taken = await outbox.take_private(2)
        outbox.requeue_private(taken)
        outbox.close()
        again = await outbox.take_private(10)
        assert [m.message.seq for m in again] == [0, 1, 2, 3]

    def test_market_data_a_link_could_not_send_is_counted_as_dropped(self) -> None:
        """`drop` counts market data lost with a link by kind."""
        outbox = Outbox()
        outbox.drop([_trade(1), _trade(2), _mark("X", 3)])
        assert outbox.dropped == {"trades": 2, "mark": 1}
