"""Matching: price-time priority, fills at the maker's price, TIFs, flags and STP."""

from __future__ import annotations

import pytest
from harness import Harness, kinds, of, rejected_code

from exchange.codes import RejectCode
from exchange.messages import (
    BookDelta,
    OrderAccepted,
    OrderExpired,
    OrderFilled,
    OrderRested,
)


def fills(events: list) -> list[tuple[int, int, int]]:
    """Return the fills of a record as (maker order id, price, qty)."""
    return [(f.maker_order_id, f.price, f.qty) for f in of(events, OrderFilled)]


def expiries(events: list) -> list[tuple[int, int, str]]:
    """Return the expiries of a record as (order id, qty, reason)."""
    return [(e.order_id, e.qty, e.reason) for e in of(events, OrderExpired)]


class TestPriceTimePriority:
    """Better price first, then first-in first-out."""

    def test_better_priced_ask_fills_before_an_earlier_worse_ask(self, ex: Harness):
        """A buy takes the lowest ask first even if a higher ask arrived earlier."""
        worse = ex.rest("a", "sell", 5, 101)
        better = ex.rest("b", "sell", 5, 100)
        events = ex.place("c", "buy", 5, 101)
        assert fills(events) == [(better, 100, 5)]
        assert ex.queue("sell") == [(worse, 101, 5)]

    def test_better_priced_bid_fills_before_an_earlier_worse_bid(self, ex: Harness):
        """A sell takes the highest bid first even if a lower bid arrived earlier."""
        worse = ex.rest("a", "buy", 5, 99)
        better = ex.rest("b", "buy", 5, 100)
        events = ex.place("c", "sell", 5, 99)
        assert fills(events) == [(better, 100, 5)]
        assert ex.queue("buy") == [(worse, 99, 5)]

    def test_orders_at_one_price_fill_in_arrival_order(self, ex: Harness):
        """Orders at the same price fill first-in first-out."""
        first = ex.rest("a", "sell", 3, 100)
        second = ex.rest("b", "sell", 3, 100)
        third = ex.rest("a", "sell", 3, 100)
        events = ex.place("c", "buy", 7, 100)
        assert fills(events) == [(first, 100, 3), (second, 100, 3), (third, 100, 1)]
        assert ex.queue("sell") == [(third, 100, 2)]

    def test_taker_sweeps_levels_best_first_and_stops_at_its_limit(self, ex: Harness):
        """A limit buy takes every ask up to its price, then rests the rest there."""
        a100 = ex.rest("a", "sell", 2, 100)
        a101 = ex.rest("a", "sell", 3, 101)
        ex.rest("a", "sell", 4, 102)
        events = ex.place("b", "buy", 10, 101)
        assert fills(events) == [(a100, 100, 2), (a101, 101, 3)]
        rested = of(events, OrderRested)
        assert [(r.price, r.qty) for r in rested] == [(101, 5)]
        assert ex.book() == {"bids": [(101, 5)], "asks": [(102, 4)]}

    def test_later_order_at_a_level_queues_behind_a_partially_filled_one(
        self, ex: Harness
    ):
        """A partial fill leaves the maker at the front of its level."""
        big = ex.rest("a", "sell", 10, 100)
        small = ex.rest("b", "sell", 5, 100)
        ex.place("c", "buy", 4, 100)
        assert ex.queue("sell") == [(big, 100, 6), (small, 100, 5)]
        events = ex.place("c", "buy", 8, 100)
        assert fills(events) == [(big, 100, 6), (small, 100, 2)]

    def test_non_crossing_orders_rest_without_trading(self, ex: Harness):
        """A bid below the best ask rests and produces no fill."""
        ex.rest("a", "sell", 1, 101)
        events = ex.place("b", "buy", 1, 100)
        assert of(events, OrderFilled) == []
        assert ex.book() == {"bids": [(100, 1)], "asks": [(101, 1)]}


class TestFills:
    """Fill events: price, quantities, ids, remainders."""

    def test_fill_is_at_the_makers_price_not_the_takers(self, ex: Harness):
        """A buy priced above the ask trades at the ask."""
        ex.rest("a", "sell", 1, 100)
        (fill,) = of(ex.place("b", "buy", 1, 105), OrderFilled)
        assert fill.price == 100

    def test_sell_taker_trades_at_the_bids_price(self, ex: Harness):
        """A sell priced below the bid trades at the bid."""
        ex.rest("a", "buy", 1, 100)
        (fill,) = of(ex.place("b", "sell", 1, 90), OrderFilled)
        assert fill.price == 100

    def test_fill_event_names_both_sides(self, ex: Harness):
        """A fill carries the record's seq, the symbol and both orders and accounts."""
        maker = ex.rest("alice", "sell", 2, 100)
        events = ex.place("bob", "buy", 2, 100)
        taker = of(events, OrderAccepted)[0].order_id
        (fill,) = of(events, OrderFilled)
        assert (fill.seq, fill.symbol, fill.price, fill.qty) == (2, "X", 100, 2)
        assert (fill.taker_order_id, fill.taker_account, fill.taker_side) == (
            taker,
            "bob",
            "buy",
        )
        assert (fill.maker_order_id, fill.maker_account) == (maker, "alice")
        assert (fill.taker_fee, fill.maker_fee) == (0, 0)

    def test_trade_ids_are_consecutive_across_records(self, ex: Harness):
        """Trade ids start at 1 and increase by one per fill, across records."""
        for _ in range(3):
            ex.rest("a", "sell", 1, 100)
        first = of(ex.place("b", "buy", 2, 100), OrderFilled)
        second = of(ex.place("b", "buy", 1, 100), OrderFilled)
        assert [f.trade_id for f in first + second] == [1, 2, 3]

    def test_partial_fill_rests_the_takers_remainder(self, ex: Harness):
        """A limit taker larger than the book rests its unfilled part."""
        ex.rest("a", "sell", 3, 100)
        events = ex.place("b", "buy", 5, 100)
        assert kinds(events)[:3] == ["OrderAccepted", "OrderFilled", "OrderRested"]
        (rested,) = of(events, OrderRested)
        assert (rested.side, rested.price, rested.qty) == ("buy", 100, 2)
        assert ex.book() == {"bids": [(100, 2)], "asks": []}

    def test_full_fill_of_the_taker_leaves_no_resting_order(self, ex: Harness):
        """A taker filled whole neither rests nor expires."""
        ex.rest("a", "sell", 5, 100)
        events = ex.place("b", "buy", 5, 100)
        assert of(events, OrderRested) == []
        assert of(events, OrderExpired) == []
        assert ex.book() == {"bids": [], "asks": []}

    def test_accepted_event_reports_ticks_lots_and_flags(self, ex: Harness):
        """The acceptance echoes the order in ticks and lots with its flags."""
        (acc,) = of(
            ex.place("a", "buy", 3, 99, client_order_id="c1", stp="expire_maker"),
            OrderAccepted,
        )
        assert (acc.order_id, acc.account, acc.symbol, acc.side, acc.type) == (
            1,
            "a",
            "X",
            "buy",
            "limit",
        )
        assert (acc.qty, acc.price, acc.tif, acc.post_only, acc.trigger_price) == (
            3,
            99,
            "GTC",
            False,
            0,
        )
        assert (acc.stp, acc.client_order_id) == ("expire_maker", "c1")


class TestMarketOrders:
    """Market orders sweep and never rest."""

    def test_market_buy_sweeps_levels_and_expires_the_rest_as_ioc(self, ex: Harness):
        """A market order takes every level it can and expires what is left."""
        a100 = ex.rest("a", "sell", 2, 100)
        a101 = ex.rest("a", "sell", 3, 101)
        events = ex.place("b", "buy", 10)
        taker = of(events, OrderAccepted)[0].order_id
        assert fills(events) == [(a100, 100, 2), (a101, 101, 3)]
        assert expiries(events) == [(taker, 5, "ioc")]
        assert ex.book() == {"bids": [], "asks": []}

    def test_market_sell_sweeps_bids_best_first(self, ex: Harness):
        """A market sell takes the highest bid first."""
        low = ex.rest("a", "buy", 2, 98)
        high = ex.rest("a", "buy", 2, 99)
        events = ex.place("b", "sell", 3)
        assert fills(events) == [(high, 99, 2), (low, 98, 1)]
        assert ex.book() == {"bids": [(98, 1)], "asks": []}

    def test_market_order_on_an_empty_book_expires_whole(self, ex: Harness):
        """A market order with nothing to take expires its full quantity."""
        events = ex.place("b", "buy", 4)
        assert kinds(events) == ["OrderAccepted", "OrderExpired"]
        assert expiries(events) == [(1, 4, "ioc")]

    def test_market_order_filled_whole_does_not_expire(self, ex: Harness):
        """A market order the book can fill whole produces no expiry."""
        ex.rest("a", "sell", 5, 100)
        events = ex.place("b", "buy", 5)
        assert of(events, OrderExpired) == []
        assert ex.book() == {"bids": [], "asks": []}


class TestImmediateOrCancel:
    """IOC limit orders."""

    def test_ioc_remainder_expires_with_reason_ioc(self, ex: Harness):
        """An IOC limit fills what crosses and expires the rest instead of resting."""
        maker = ex.rest("a", "sell", 2, 100)
        events = ex.place("b", "buy", 5, 100, tif="IOC")
        taker = of(events, OrderAccepted)[0].order_id
        assert fills(events) == [(maker, 100, 2)]
        assert expiries(events) == [(taker, 3, "ioc")]
        assert of(events, OrderRested) == []
        assert ex.book() == {"bids": [], "asks": []}

    def test_ioc_that_crosses_nothing_expires_whole(self, ex: Harness):
        """An IOC limit that cannot trade expires without touching the book."""
        ex.rest("a", "sell", 2, 101)
        events = ex.place("b", "buy", 5, 100, tif="IOC")
        assert kinds(events) == ["OrderAccepted", "OrderExpired"]
        assert ex.book() == {"bids": [], "asks": [(101, 2)]}

    def test_ioc_filled_whole_does_not_expire(self, ex: Harness):
        """An IOC that fills whole reports only its fills."""
        ex.rest("a", "sell", 5, 100)
        events = ex.place("b", "buy", 5, 100, tif="IOC")
        assert of(events, OrderExpired) == []


class TestFillOrKill:
    """FOK orders fill whole or are rejected."""

    def test_fok_that_can_fill_whole_fills_across_levels(self, ex: Harness):
        """A fill-or-kill order sweeps several levels when they hold enough."""
        a100 = ex.rest("a", "sell", 4, 100)
        a101 = ex.rest("a", "sell", 4, 101)
        events = ex.place("b", "buy", 6, 101, tif="FOK")
        assert fills(events) == [(a100, 100, 4), (a101, 101, 2)]
        assert of(events, OrderExpired) == []
        assert ex.book() == {"bids": [], "asks": [(101, 2)]}

    def test_fok_that_cannot_fill_whole_is_rejected_and_changes_nothing(
        self, ex: Harness
    ):
        """A fill-or-kill order larger than the book is refused whole."""
        ex.rest("a", "sell", 4, 100)
        before = ex.state()
        events = ex.place("b", "buy", 5, 100, tif="FOK")
        assert rejected_code(events) == RejectCode.FOK_NOT_FILLED
        assert len(events) == 1
        assert ex.state() == before

    def test_fok_counts_only_liquidity_within_its_limit(self, ex: Harness):
        """Asks beyond a fill-or-kill buy's price do not count towards its fill."""
        ex.rest("a", "sell", 5, 100)
        ex.rest("a", "sell", 5, 102)
        events = ex.place("b", "buy", 10, 101, tif="FOK")
        assert rejected_code(events) == RejectCode.FOK_NOT_FILLED

    def test_market_fok_is_rejected_when_the_book_is_too_thin(self, ex: Harness):
        """A market fill-or-kill order is refused when the whole side is too small."""
        ex.rest("a", "buy", 3, 100)
        events = ex.place("b", "sell", 4, tif="FOK")
        assert rejected_code(events) == RejectCode.FOK_NOT_FILLED
        assert ex.book() == {"bids": [(100, 3)], "asks": []}

    def test_market_fok_fills_when_the_book_is_deep_enough(self, ex: Harness):
        """A market fill-or-kill order fills whole against a deep enough side."""
        ex.rest("a", "buy", 3, 100)
        ex.rest("a", "buy", 3, 99)
        events = ex.place("b", "sell", 4, tif="FOK")
        assert sum(f.qty for f in of(events, OrderFilled)) == 4

    def test_fok_with_expire_maker_does_not_count_own_orders(self, ex: Harness):
        """Own orders that STP would expire do not count as fillable liquidity."""
        ex.rest("a", "sell", 5, 100)
        ex.rest("b", "sell", 5, 101)
        events = ex.place("a", "buy", 10, 101, tif="FOK", stp="expire_maker")
        assert rejected_code(events) == RejectCode.FOK_NOT_FILLED

    def test_fok_with_expire_maker_fills_past_own_orders(self, ex: Harness):
        """A fill-or-kill order fills from others while STP expires its own makers."""
        own = ex.rest("a", "sell", 5, 100)
        other = ex.rest("b", "sell", 5, 101)
        events = ex.place("a", "buy", 5, 101, tif="FOK", stp="expire_maker")
        assert fills(events) == [(other, 101, 5)]
        assert expiries(events) == [(own, 5, "stp_maker")]

    def test_fok_with_expire_taker_is_rejected_when_an_own_order_is_in_the_way(
        self, ex: Harness
    ):
        """An own order that would stop the taker before it fills makes FOK refuse."""
        ex.rest("b", "sell", 5, 100)
        ex.rest("a", "sell", 5, 100)
        ex.rest("b", "sell", 5, 101)
        events = ex.place("a", "buy", 10, 101, tif="FOK", stp="expire_taker")
        assert rejected_code(events) == RejectCode.FOK_NOT_FILLED

    def test_fok_with_expire_taker_fills_before_reaching_own_order(self, ex: Harness):
        """An own order behind enough liquidity does not stop a fill-or-kill order."""
        other = ex.rest("b", "sell", 5, 100)
        ex.rest("a", "sell", 5, 100)
        events = ex.place("a", "buy", 5, 100, tif="FOK", stp="expire_taker")
        assert fills(events) == [(other, 100, 5)]


class TestPostOnly:
    """Post-only orders never take."""

    def test_post_only_that_would_take_is_rejected_and_changes_nothing(
        self, ex: Harness
    ):
        """A post-only buy at or above the best ask is refused."""
        ex.rest("a", "sell", 1, 100)
        before = ex.state()
        events = ex.place("b", "buy", 1, 100, post_only=True)
        assert rejected_code(events) == RejectCode.POST_ONLY_WOULD_TAKE
        assert ex.state() == before

    def test_post_only_sell_at_the_best_bid_is_rejected(self, ex: Harness):
        """A post-only sell at the best bid would take, so it is refused."""
        ex.rest("a", "buy", 1, 100)
        events = ex.place("b", "sell", 1, 100, post_only=True)
        assert rejected_code(events) == RejectCode.POST_ONLY_WOULD_TAKE

    def test_post_only_that_does_not_cross_rests(self, ex: Harness):
        """A post-only buy below the best ask rests like a plain limit."""
        ex.rest("a", "sell", 1, 100)
        events = ex.place("b", "buy", 2, 99, post_only=True)
        assert kinds(events)[:2] == ["OrderAccepted", "OrderRested"]
        assert ex.book() == {"bids": [(99, 2)], "asks": [(100, 1)]}

    def test_post_only_on_an_empty_book_rests(self, ex: Harness):
        """A post-only order with no opposite side rests."""
        ex.place("b", "sell", 2, 100, post_only=True)
        assert ex.book() == {"bids": [], "asks": [(100, 2)]}

    @pytest.mark.parametrize("tif", ["IOC", "FOK"])
    def test_post_only_with_a_non_gtc_tif_is_rejected_as_invalid_flags(
        self, ex: Harness, tif: str
    ):
        """Post-only combined with IOC or FOK is a contradiction and is refused."""
        events = ex.place("b", "buy", 1, 100, post_only=True, tif=tif)
        assert rejected_code(events) == RejectCode.INVALID_FLAGS

    def test_post_only_market_order_is_rejected_as_invalid_flags(self, ex: Harness):
        """A market order cannot be post-only."""
        events = ex.place("b", "buy", 1, post_only=True)
        assert rejected_code(events) == RejectCode.INVALID_FLAGS


class TestSelfTradePrevention:
    """STP modes none / expire_taker / expire_maker / expire_both."""

    def test_mode_none_lets_an_account_trade_with_itself(self, ex: Harness):
        """Without STP an account's taker fills against its own maker."""
        own = ex.rest("a", "sell", 5, 100)
        events = ex.place("a", "buy", 8, 101, stp="none")
        assert fills(events) == [(own, 100, 5)]
        (fill,) = of(events, OrderFilled)
        assert fill.taker_account == fill.maker_account == "a"
        assert ex.book() == {"bids": [(101, 3)], "asks": []}

    def test_expire_taker_expires_the_incoming_order_and_keeps_the_maker(
        self, ex: Harness
    ):
        """EXPIRE_TAKER ends the taker at its own maker and leaves the maker resting."""
        own = ex.rest("a", "sell", 5, 100)
        events = ex.place("a", "buy", 8, 101, stp="expire_taker")
        taker = of(events, OrderAccepted)[0].order_id
        assert kinds(events) == ["OrderAccepted", "OrderExpired"]
        assert expiries(events) == [(taker, 8, "stp_taker")]
        assert ex.queue("sell") == [(own, 100, 5)]
        assert ex.book()["bids"] == []

    def test_expire_maker_expires_own_makers_and_keeps_matching(self, ex: Harness):
        """EXPIRE_MAKER removes the own maker, then trades on and rests the rest."""
        own = ex.rest("a", "sell", 5, 100)
        other = ex.rest("b", "sell", 4, 101)
        events = ex.place("a", "buy", 8, 101, stp="expire_maker")
        taker = of(events, OrderAccepted)[0].order_id
        assert kinds(events)[:4] == [
            "OrderAccepted",
            "OrderFilled",
            "OrderExpired",
            "OrderRested",
        ]
        assert fills(events) == [(other, 101, 4)]
        assert expiries(events) == [(own, 5, "stp_maker")]
        assert ex.queue("buy") == [(taker, 101, 4)]
        assert ex.book()["asks"] == []

    def test_expire_both_expires_the_maker_and_the_taker(self, ex: Harness):
        """EXPIRE_BOTH removes the own maker and ends the taker there."""
        own = ex.rest("a", "sell", 5, 100)
        ex.rest("b", "sell", 4, 101)
        events = ex.place("a", "buy", 8, 101, stp="expire_both")
        taker = of(events, OrderAccepted)[0].order_id
        assert kinds(events)[:3] == ["OrderAccepted", "OrderExpired", "OrderExpired"]
        assert expiries(events) == [(own, 5, "stp_maker"), (taker, 8, "stp_taker")]
        assert of(events, OrderFilled) == []
        assert ex.book() == {"bids": [], "asks": [(101, 4)]}

    def test_expire_taker_after_partial_fills_expires_only_the_remainder(
        self, ex: Harness
    ):
        """Fills before the own order stand; the taker expires what is left."""
        other = ex.rest("b", "sell", 2, 100)
        own = ex.rest("a", "sell", 5, 100)
        events = ex.place("a", "buy", 8, 100, stp="expire_taker")
        taker = of(events, OrderAccepted)[0].order_id
        assert fills(events) == [(other, 100, 2)]
        assert expiries(events) == [(taker, 6, "stp_taker")]
        assert ex.queue("sell") == [(own, 100, 5)]

    def test_expire_maker_expires_every_own_order_it_meets(self, ex: Harness):
        """EXPIRE_MAKER expires each own maker in priority order as it reaches them."""
        own1 = ex.rest("a", "sell", 1, 100)
        other = ex.rest("b", "sell", 1, 100)
        own2 = ex.rest("a", "sell", 1, 101)
        events = ex.place("a", "buy", 5, 101, stp="expire_maker")
        assert fills(events) == [(other, 100, 1)]
        assert expiries(events)[:2] == [(own1, 1, "stp_maker"), (own2, 1, "stp_maker")]
        assert ex.book()["asks"] == []

    def test_stp_does_not_apply_between_different_accounts(self, ex: Harness):
        """An STP mode changes nothing when the maker belongs to someone else."""
        other = ex.rest("b", "sell", 5, 100)
        events = ex.place("a", "buy", 5, 100, stp="expire_both")
        assert fills(events) == [(other, 100, 5)]
        assert of(events, OrderExpired) == []

    def test_only_the_takers_stp_mode_counts(self, ex: Harness):
        """A maker's own STP mode does not stop a taker that has none."""
        own = ex.rest("a", "sell", 5, 100, stp="expire_both")
        events = ex.place("a", "buy", 5, 100)
        assert fills(events) == [(own, 100, 5)]

    def test_stp_expiries_report_the_touched_levels(self, ex: Harness):
        """A level emptied by an STP expiry is reported with quantity 0."""
        ex.rest("a", "sell", 5, 100)
        events = ex.place("a", "buy", 1, 100, stp="expire_maker")
        deltas = {(d.side, d.price): d.qty for d in of(events, BookDelta)}
        assert deltas == {("sell", 100): 0, ("buy", 100): 1}
