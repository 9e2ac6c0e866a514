"""Book floods: valid no-op deltas a client following ``book_seq`` never resyncs on."""

from __future__ import annotations

import asyncio
import contextlib

from gateway_rig import Rig

from clients.sdk._book import LocalBook
from exchange.gateway.answers import BookSnapshot, BookUpdate
from exchange.gateway.flood import run_flood
from exchange.gateway.outbox import Outbox
from exchange.gateway.stress import FloodSettings, seeded
from exchange.gateway.wire import Outbound
from exchange.messages import Deposit

BTC, ETH = "BTC-PERP", "ETH-PERP"
ORDER = {"symbol": BTC, "type": "limit", "qty": "0.01"}


def _deltas(messages: list[Outbound], symbol: str = BTC) -> list[BookUpdate]:
    """Return the book deltas of ``symbol`` among published messages."""
    return [
        m.message
        for m in messages
        if m.kind == "book" and m.key == symbol and isinstance(m.message, BookUpdate)
    ]


def _quoted_rig() -> Rig:
    """Return a rig whose BTC-PERP book has two bid levels and an ask."""
    rig = Rig()
    rig.apply(Deposit(account="alice", amount=100_000 * 10**8))
    for side, price in (("buy", "100"), ("buy", "99"), ("sell", "101")):
        rig.call("alice", "new", side=side, price=price, **ORDER)
    return rig


class TestRestate:
    """One flood delta: the next ``book_seq``, levels as they are."""

    def test_a_flood_delta_restates_existing_levels_at_their_quantity(self) -> None:
        """It names a bid and an ask the book has, at their open quantity."""
        rig = _quoted_rig()
        last = rig.session.snapshot(BTC)
        assert last is not None
        assert isinstance(last.message, BookSnapshot)
        rng = seeded(1, "test")
        outbound = rig.session.restate(BTC, rng, ts_ns=5)
        delta = outbound.message
        assert isinstance(delta, BookUpdate)
        assert (outbound.kind, outbound.key) == ("book", BTC)
        assert delta.book_seq == last.message.book_seq + 1
        assert set(delta.bids) <= set(last.message.bids)
        assert delta.asks == last.message.asks
        assert (len(delta.bids), delta.ts_ns, delta.seq) == (1, 5, rig.core.last_seq)

    def test_a_client_following_deltas_stays_in_sync_through_a_flood(self) -> None:
        """Snapshot, real deltas and flood deltas interleaved: no gap, same book."""
        rig = Rig()
        rig.apply(Deposit(account="alice", amount=100_000 * 10**8))
        book = LocalBook(BTC)
        snapshot = rig.session.snapshot(BTC)
        assert snapshot is not None
        assert isinstance(snapshot.message, BookSnapshot)
        book.apply_snapshot(snapshot.message)
        rng = seeded(2, "test")
        prices = ["100", "99", "98", "101", "102"]
        for n, price in enumerate(prices):
            side = "buy" if int(price) < 101 else "sell"
            published = rig.call("alice", "new", side=side, price=price, **ORDER)
            published += [rig.session.restate(BTC, rng, 0) for _ in range(n * 5)]
            for delta in _deltas(published):
                book.apply_delta(delta)
        assert (book.synced, book.gaps) == (True, 0)
        final = rig.session.snapshot(BTC)
        assert final is not None
        assert isinstance(final.message, BookSnapshot)
        assert book.book_seq == final.message.book_seq
        assert book.top() == _top(final.message)


def _top(snapshot: BookSnapshot) -> object:
    """Return a snapshot's levels as `LocalBook.top` shows a book."""
    fresh = LocalBook(snapshot.symbol)
    fresh.apply_snapshot(snapshot)
    return fresh.top()


class TestRunFlood:
    """The flood task: the set rate per symbol, in ``book_seq`` order."""

    async def test_every_flooded_symbol_gets_consecutive_deltas(self) -> None:
        """At 500 a second, each symbol's deltas come one ``book_seq`` after another."""
        rig = _quoted_rig()
        start = rig.session.publisher.books[BTC].book_seq
        outbox = Outbox()
        task = asyncio.create_task(
            run_flood(rig.session, outbox, FloodSettings(rate=500), [BTC, ETH], 1)
        )
        taken: list[Outbound] = []
        try:
            async with asyncio.timeout(5):
                while len(_deltas(taken, ETH)) < 20:
                    taken += await outbox.take_market(1000)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        btc, eth = _deltas(taken, BTC), _deltas(taken, ETH)
        assert [d.book_seq for d in btc] == list(range(start + 1, start + 1 + len(btc)))
        assert [d.book_seq for d in eth] == list(range(1, len(eth) + 1))
        assert all(d.bids == d.asks == [] for d in eth)  # an empty book: nothing
        assert abs(len(btc) - len(eth)) <= 1
