"""Tests that resting reduce-only orders follow the position they reduce."""

from __future__ import annotations

from decimal import Decimal

import pytest

from exchange import Exchange, Market, RejectCode, Rejected
from exchange.journal.payload import JOURNALED_DECODER
from exchange.messages import Command, Event, OrderAmended, OrderCanceled, PlaceOrder
from exchange.units import to_e8

BTC = Market.from_decimals(
    "BTC-PERP",
    tick_size="0.1",
    lot_size="0.001",
    max_price="4529764",
    mark_source="index",
)


@pytest.fixture
def ex() -> Exchange:
    """Bob long 1 BTC @ 60,000 from alice, with a reduce-only sell of 1 at 62,000."""
    ex = Exchange([BTC], margin=True)
    for account in ("alice", "bob"):
        ex.deposit(account, "100000")
    ex.set_index_price("BTC-PERP", "60000")
    ex.place_order("alice", "BTC-PERP", "sell", "limit", "1", "60000")
    ex.place_order("bob", "BTC-PERP", "buy", "market", "1")
    ex.place_order("bob", "BTC-PERP", "sell", "limit", "1", "62000", reduce_only=True)
    return ex


class TestReduceOnlyFollowsThePosition:
    """Resting reduce-only orders shrink or go as the position does."""

    def test_an_order_larger_than_the_shrunk_position_is_cut_down(
        self, ex: Exchange
    ) -> None:
        """Closing 0.4 elsewhere cuts the reduce-only sell to 0.6, keeping its place."""
        ex.place_order("alice", "BTC-PERP", "buy", "limit", "0.4", "60000")
        result = ex.place_order("bob", "BTC-PERP", "sell", "market", "0.4")
        assert result.filled == Decimal("0.4")
        (order,) = ex.open_orders("bob")
        assert order["remaining"] == Decimal("0.6")
        assert ex.order_book("BTC-PERP")["asks"] == [(Decimal(62000), Decimal("0.6"))]

    def test_an_order_is_canceled_once_the_position_is_flat(self, ex: Exchange) -> None:
        """Closing the whole position cancels the reduce-only order (reason given)."""
        ex.place_order("alice", "BTC-PERP", "buy", "limit", "1", "60000")
        seq, _ = ex.submit(_market_sell("1"))
        assert ex.open_orders("bob") == []
        assert ex.positions("bob") == []
        entries = [e for _, p in ex.journal.read(seq) for e in _decode(p)]
        assert [e.reason for e in entries if isinstance(e, OrderCanceled)] == [
            "reduce_only"
        ]

    def test_a_reduce_only_order_that_would_open_is_refused(self, ex: Exchange) -> None:
        """A reduce-only buy on a long position is refused at placement."""
        with pytest.raises(Rejected) as info:
            ex.place_order(
                "bob", "BTC-PERP", "buy", "limit", "0.1", "59000", reduce_only=True
            )
        assert info.value.code == RejectCode.REDUCE_ONLY_REJECTED

    def test_the_cut_is_reported_as_an_in_place_amend(self, ex: Exchange) -> None:
        """The cut is an OrderAmended that keeps priority (requeued False)."""
        ex.place_order("alice", "BTC-PERP", "buy", "limit", "0.25", "60000")
        seq, _ = ex.submit(_market_sell("0.25"))
        amends = [
            e
            for _, p in ex.journal.read(seq)
            for e in _decode(p)
            if isinstance(e, OrderAmended)
        ]
        assert [(a.qty, a.requeued) for a in amends] == [(750, False)]


def _market_sell(qty: str) -> Command:
    """Return bob's market sell command."""
    return PlaceOrder(
        account="bob", symbol="BTC-PERP", side="sell", type="market", qty=to_e8(qty)
    )


def _decode(payload: bytes) -> list[Event]:
    """Return the events of one journaled record."""
    return list(JOURNALED_DECODER.decode(payload).events)
