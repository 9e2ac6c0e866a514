"""The delay stage: messages wait out injected latency, in order, without blocking."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from exchange.gateway.answers import Accepted, BookUpdate
from exchange.gateway.delay import DelayedOutbox
from exchange.gateway.stress import Delays, Fixed, LatencySettings, Uniform
from exchange.gateway.wire import Outbound

TIMEOUT_S = 5.0


def _ack(n: int, account: str = "alice") -> Outbound:
    return Outbound("ack", account, Accepted(id=f"r{n}", op="new", seq=n))


def _delta(n: int, symbol: str = "X") -> Outbound:
    delta = BookUpdate(
        seq=n,
        ts_ns=0,
        symbol=symbol,
        book_seq=n,
        bids=[(Decimal(1), Decimal(n))],
        asks=[],
    )
    return Outbound("book", symbol, delta)


def _outbox(settings: LatencySettings, **limits: int) -> DelayedOutbox:
    return DelayedOutbox(Delays(settings, seed=1), **limits)


async def _take_private(outbox: DelayedOutbox, count: int) -> list[Outbound]:
    """Take ``count`` private messages, as the publisher would, within the timeout."""
    taken: list[Outbound] = []
    async with asyncio.timeout(TIMEOUT_S):
        while len(taken) < count:
            taken += await outbox.take_private(count - len(taken))
    return taken


class TestDelayedOutbox:
    """Held for the drawn delay, released in order, counted while held."""

    async def test_a_message_is_held_at_least_the_fixed_delay(self) -> None:
        """With fixed 50 ms an ack is taken no sooner than 50 ms after its put."""
        outbox = _outbox(LatencySettings(private=Fixed(ms=50)))
        loop = asyncio.get_running_loop()
        put_at = loop.time()
        outbox.put([_ack(1)])
        assert outbox.pending == 1
        (taken,) = await _take_private(outbox, 1)
        assert taken == _ack(1)
        assert loop.time() - put_at >= 0.05

    async def test_put_never_waits(self) -> None:
        """Putting returns at once, whatever the delay; the messages are held."""
        outbox = _outbox(LatencySettings(private=Fixed(ms=10_000)))
        outbox.put([_ack(n) for n in range(100)])
        assert outbox.pending == 100
        outbox.close()
        assert len(await outbox.take_private(1000)) == 100

    async def test_an_accounts_messages_keep_their_order_under_random_delays(
        self,
    ) -> None:
        """Uniform 0-30 ms draws: alice's acks still come out in the order put."""
        outbox = _outbox(LatencySettings(private=Uniform(low_ms=0, high_ms=30)))
        for n in range(40):
            outbox.put([_ack(n), _ack(n, "bob")])
            await asyncio.sleep(0.001)
        taken = await _take_private(outbox, 80)
        for account in ("alice", "bob"):
            seqs = [m.message.seq for m in taken if m.key == account]
            assert seqs == list(range(40))

    async def test_book_deltas_keep_their_book_seq_order(self) -> None:
        """Market-data delays keep each symbol's deltas in order: no gap appears."""
        outbox = _outbox(LatencySettings(market_data=Uniform(low_ms=0, high_ms=20)))
        for n in range(1, 31):
            outbox.put([_delta(n), _delta(n, "Y")])
        taken: list[Outbound] = []
        async with asyncio.timeout(TIMEOUT_S):
            while len(taken) < 60:
                taken += await outbox.take_market(100)
        for symbol in ("X", "Y"):
            seqs = [m.message.book_seq for m in taken if m.key == symbol]
            assert seqs == list(range(1, 31))

    async def test_accounts_without_a_delay_are_not_held(self) -> None:
        """Only alice is slowed: bob's acks are in the queue as soon as put."""
        outbox = _outbox(LatencySettings(accounts={"alice": Fixed(ms=10_000)}))
        outbox.put([_ack(1), _ack(2, "bob")])
        assert await outbox.take_private(10) == [_ack(2, "bob")]
        outbox.close()
        assert await outbox.take_private(10) == [_ack(1)]

    async def test_held_messages_count_toward_overload(self) -> None:
        """Admission sees held private messages: a long delay still refuses."""
        outbox = _outbox(LatencySettings(private=Fixed(ms=10_000)), private_limit=3)
        outbox.put([_ack(n) for n in range(2)])
        assert not outbox.overloaded
        outbox.put([_ack(2)])
        assert outbox.overloaded
        outbox.close()

    async def test_closing_releases_everything_held(self) -> None:
        """A clean stop publishes every answer: close puts the held ones out."""
        outbox = _outbox(LatencySettings(private=Fixed(ms=10_000)))
        outbox.put([_ack(n) for n in range(3)])
        outbox.close()
        assert [m.message.seq for m in await outbox.take_private(10)] == [0, 1, 2]
        assert not outbox.overloaded
        outbox.put([_ack(9)])  # after the close: straight to the queue
        assert await outbox.take_private(10) == [_ack(9)]
