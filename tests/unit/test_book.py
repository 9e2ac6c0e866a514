"""The book as the core reports it: levels, queues, and one BookDelta per level."""

from __future__ import annotations

from harness import Harness, kinds, of, rejected_code

from exchange.messages import BookDelta, OrderFilled


def deltas(events: list) -> list[tuple[str, int, int]]:
    """Return a record's book deltas as (side, price, qty), in event order."""
    return [(d.side, d.price, d.qty) for d in of(events, BookDelta)]


class TestLevels:
    """Levels as the canonical state shows them: order, totals, queues."""

    def test_bids_are_best_first_descending_and_asks_ascending(self, ex: Harness):
        """Levels list the best price first on each side."""
        for price in (98, 100, 99):
            ex.rest("a", "buy", 1, price)
        for price in (103, 101, 102):
            ex.rest("a", "sell", 1, price)
        assert ex.book() == {
            "bids": [(100, 1), (99, 1), (98, 1)],
            "asks": [(101, 1), (102, 1), (103, 1)],
        }

    def test_level_total_is_the_sum_of_its_open_orders(self, ex: Harness):
        """A level's quantity adds up every order resting there."""
        ex.rest("a", "sell", 2, 101)
        ex.rest("b", "sell", 3, 101)
        ex.place("c", "buy", 1, 101)
        assert ex.book()["asks"] == [(101, 4)]

    def test_level_disappears_when_its_last_order_leaves(self, ex: Harness):
        """An emptied level is gone, not kept at zero."""
        oid = ex.rest("a", "sell", 2, 101)
        ex.rest("a", "sell", 2, 102)
        ex.cancel("a", oid)
        assert ex.book()["asks"] == [(102, 2)]

    def test_new_order_at_an_emptied_price_starts_a_fresh_level(self, ex: Harness):
        """A price whose orders all left accepts new orders in the usual way."""
        ids = [ex.rest("a", "sell", 1, 101) for _ in range(3)]
        for oid in ids:
            ex.cancel("a", oid)
        new = ex.rest("b", "sell", 4, 101)
        assert ex.queue("sell") == [(new, 101, 4)]

    def test_many_cancels_in_one_level_keep_the_survivors_in_time_order(
        self, ex: Harness
    ):
        """After most of a long queue is canceled, the rest fill first-in first-out."""
        ids = [ex.rest(f"a{i % 3}", "sell", 1, 101) for i in range(200)]
        survivors = ids[5::10]
        for oid in ids:
            if oid not in survivors:
                ex.cancel(f"a{(oid - 1) % 3}", oid)
        assert [oid for oid, _, _ in ex.queue("sell")] == survivors
        events = ex.place("b", "buy", len(survivors), 101)
        assert [f.maker_order_id for f in of(events, OrderFilled)] == survivors
        assert ex.book() == {"bids": [], "asks": []}

    def test_orders_canceled_at_the_front_are_never_matched(self, ex: Harness):
        """A canceled order at the head of a level does not trade."""
        first = ex.rest("a", "sell", 1, 101)
        second = ex.rest("b", "sell", 1, 101)
        ex.cancel("a", first)
        events = ex.place("c", "buy", 2, 101)
        assert [f.maker_order_id for f in of(events, OrderFilled)] == [second]
        assert ex.book() == {"bids": [(101, 1)], "asks": []}


class TestBookDeltas:
    """BookDelta events: each touched level once per record, final quantity."""

    def test_resting_order_reports_its_level(self, ex: Harness):
        """A new resting order reports the level's new total."""
        ex.rest("a", "sell", 2, 101)
        assert deltas(ex.place("b", "sell", 3, 101)) == [("sell", 101, 5)]

    def test_sweep_reports_every_touched_level_once_with_its_final_qty(
        self, ex: Harness
    ):
        """A taker crossing several levels reports each level once, after the record."""
        ex.rest("a", "sell", 1, 100)
        ex.rest("b", "sell", 1, 100)
        ex.rest("a", "sell", 2, 101)
        ex.rest("a", "sell", 5, 102)
        events = ex.place("c", "buy", 6, 102)
        assert sorted(deltas(events)) == [
            ("sell", 100, 0),
            ("sell", 101, 0),
            ("sell", 102, 3),
        ]

    def test_deltas_come_after_every_other_event_of_the_record(self, ex: Harness):
        """Book deltas close the record's events."""
        ex.rest("a", "sell", 1, 100)
        events = ex.place("c", "buy", 3, 100)
        names = kinds(events)
        first_delta = names.index("BookDelta")
        assert set(names[first_delta:]) == {"BookDelta"}
        assert sorted(deltas(events)) == [("buy", 100, 2), ("sell", 100, 0)]

    def test_level_touched_twice_in_one_record_is_reported_once(self, ex: Harness):
        """A level hit by a taker and then by the stop it triggers appears once."""
        ex.rest("mm", "sell", 1, 100)
        ex.place("tt", "buy", 1, 100)
        ex.rest("mm", "buy", 1, 97)
        ex.rest("mm", "buy", 1, 97)
        ex.rest("s", "sell", 1, type="stop_market", trigger=97)
        events = ex.place("tt", "sell", 1, 97)
        assert len(of(events, OrderFilled)) == 2
        assert deltas(events) == [("buy", 97, 0)]

    def test_partial_fill_reports_the_remaining_level_qty(self, ex: Harness):
        """A level partly taken reports what is left on it."""
        ex.rest("a", "buy", 5, 99)
        assert deltas(ex.place("b", "sell", 2, 99)) == [("buy", 99, 3)]

    def test_rejected_record_reports_no_delta(self, ex: Harness):
        """A refused command touches no level."""
        ex.rest("a", "sell", 1, 100)
        events = ex.place("b", "buy", 1, 100, post_only=True)
        assert rejected_code(events) is not None
        assert deltas(events) == []

    def test_expired_ioc_without_fills_reports_no_delta(self, ex: Harness):
        """An IOC that trades nothing and never rests changes no level."""
        ex.rest("a", "sell", 1, 101)
        assert deltas(ex.place("b", "buy", 1, 100, tif="IOC")) == []

    def test_deltas_name_the_market_they_belong_to(self, ex: Harness):
        """A delta carries its symbol and the record's seq."""
        (delta,) = of(ex.place("a", "sell", 1, 100, symbol="Y"), BookDelta)
        assert (delta.symbol, delta.seq) == ("Y", 1)
