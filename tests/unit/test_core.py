"""ExchangeCore: records and seqs, cancel, cancel-all, amend, client ids, state hash."""

from __future__ import annotations

import pytest
from harness import Harness, kinds, of, rejected_code

from exchange.codes import RejectCode
from exchange.errors import InvariantViolation
from exchange.messages import (
    AllCanceled,
    BookDelta,
    CancelOrder,
    Checkpoint,
    CheckpointTaken,
    CommandRejected,
    OrderAccepted,
    OrderAmended,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRested,
    PlaceOrder,
    Record,
)

E8 = 10**8


class TestRecords:
    """Records: seq discipline, ids, determinism and checkpoints."""

    def test_every_event_carries_the_seq_of_its_record(self, ex: Harness):
        """All events of a record, fills and book deltas included, carry its seq."""
        ex.rest("a", "sell", 5, 100)
        events = ex.place("b", "buy", 7, 100)
        assert len(events) > 3
        assert {e.seq for e in events} == {2}

    def test_record_with_a_seq_gap_raises_and_changes_nothing(self, ex: Harness):
        """A record whose seq does not follow the last one is refused as a bug."""
        ex.rest("a", "sell", 5, 100)
        before = ex.core.state_hash()
        cmd = PlaceOrder(
            account="a", symbol="X", side="buy", type="limit", qty=E8, price=100 * E8
        )
        with pytest.raises(InvariantViolation):
            ex.core.handle(Record(3, 0, cmd))
        assert ex.core.state_hash() == before

    def test_record_repeating_the_last_seq_raises(self, ex: Harness):
        """A record with an already applied seq is refused as a bug."""
        ex.rest("a", "sell", 5, 100)
        with pytest.raises(InvariantViolation):
            ex.core.handle(Record(1, 0, CancelOrder(account="a", order_id=1)))

    def test_order_ids_are_consecutive_from_one(self, ex: Harness):
        """Accepted orders get ids 1, 2, 3... in record order."""
        ids = [ex.rest("a", "sell", 1, 100 + i) for i in range(3)]
        assert ids == [1, 2, 3]

    def test_same_records_in_a_fresh_core_give_the_same_events_and_hash(
        self, ex: Harness
    ):
        """Replaying the records into a new core reproduces every event and the hash."""
        ex.rest("a", "sell", 5, 100, client_order_id="x")
        ex.place("b", "buy", 7, 101, stp="expire_maker")
        ex.place("c", "sell", 1, trigger=99, type="stop_market")
        ex.amend("b", 2, qty=1)
        ex.place("a", "sell", 3, 99)
        ex.cancel_all("c")
        twin = Harness()
        for record, events in zip(ex.records, ex.history, strict=True):
            assert twin.core.handle(record) == events
        assert twin.core.state_hash() == ex.core.state_hash()

    def test_checkpoint_reports_the_state_hash_after_it(self, ex: Harness):
        """A checkpoint record reports the hash the core has once it is applied."""
        ex.rest("a", "sell", 5, 100)
        (taken,) = ex.send(Checkpoint())
        assert isinstance(taken, CheckpointTaken)
        assert taken.state_hash == ex.core.state_hash()
        assert taken.seq == 2


class TestStateHash:
    """The canonical state hash."""

    def test_rejected_record_leaves_the_seq_free_hash_unchanged(self, ex: Harness):
        """A refused command leaves the hash without the seq exactly as it was."""
        ex.rest("a", "sell", 5, 100)
        before = ex.core.state_hash(include_seq=False)
        assert rejected_code(ex.place("a", "buy", 1, 100, symbol="NOPE"))
        assert ex.core.state_hash(include_seq=False) == before

    def test_full_hash_covers_the_seq_of_every_record(self, ex: Harness):
        """The default hash includes the last seq, so even a reject moves it."""
        ex.rest("a", "sell", 5, 100)
        before = ex.core.state_hash()
        assert rejected_code(ex.place("a", "buy", 1, 100, symbol="NOPE"))
        assert ex.core.state_hash() != before

    def test_rejected_record_changes_nothing_but_the_seq(self, ex: Harness):
        """A reject leaves the same hash as a checkpoint, which changes only the seq."""
        twin = Harness()
        for h in (ex, twin):
            h.rest("a", "sell", 5, 100)
        assert rejected_code(ex.place("a", "buy", 1, 100, symbol="NOPE"))
        twin.send(Checkpoint())
        assert ex.core.state_hash() == twin.core.state_hash()

    def test_hash_changes_when_an_order_rests(self, ex: Harness):
        """A resting order is part of the hashed state."""
        before = ex.core.state_hash()
        ex.rest("a", "sell", 5, 100)
        assert ex.core.state_hash() != before

    def test_hash_depends_on_queue_order_within_a_level(self):
        """Same levels with a different time priority give a different hash."""
        one, two = Harness(), Harness()
        one.rest("a", "sell", 5, 100)
        one.rest("b", "sell", 5, 100)
        two.rest("b", "sell", 5, 100)
        two.rest("a", "sell", 5, 100)
        assert one.book() == two.book()
        assert one.core.state_hash() != two.core.state_hash()

    def test_hash_is_a_sha256_hex_digest(self, ex: Harness):
        """The state hash is 64 lowercase hex characters."""
        digest = ex.core.state_hash()
        assert len(digest) == 64
        assert int(digest, 16) >= 0
        assert digest == digest.lower()


class TestCancel:
    """Cancel by order id or client id, and its rejects."""

    def test_cancel_removes_the_order_and_reports_its_open_qty(self, ex: Harness):
        """A cancel takes the order off the book and reports what was still open."""
        oid = ex.rest("a", "sell", 5, 100)
        ex.place("b", "buy", 2, 100)
        events = ex.cancel("a", oid)
        assert kinds(events) == ["OrderCanceled", "BookDelta"]
        (canceled,) = of(events, OrderCanceled)
        assert (canceled.order_id, canceled.account, canceled.symbol) == (oid, "a", "X")
        assert (canceled.qty, canceled.reason) == (3, "user")
        assert ex.book() == {"bids": [], "asks": []}

    def test_cancel_by_client_order_id(self, ex: Harness):
        """An order can be canceled by the client id it was placed with."""
        oid = ex.rest("a", "sell", 5, 100, client_order_id="mine")
        events = ex.cancel("a", client_order_id="mine")
        assert [c.order_id for c in of(events, OrderCanceled)] == [oid]

    def test_cancel_keeps_the_priority_of_the_other_orders(self, ex: Harness):
        """Canceling an order in the middle of a level leaves the others in order."""
        first = ex.rest("a", "sell", 1, 100)
        middle = ex.rest("b", "sell", 1, 100)
        last = ex.rest("c", "sell", 1, 100)
        ex.cancel("b", middle)
        events = ex.place("d", "buy", 2, 100)
        assert [f.maker_order_id for f in of(events, OrderFilled)] == [first, last]

    def test_cancel_of_another_accounts_order_is_unknown_and_changes_nothing(
        self, ex: Harness
    ):
        """An account cannot cancel someone else's order; it looks unknown to it."""
        oid = ex.rest("a", "sell", 5, 100)
        before = ex.state()
        events = ex.cancel("b", oid)
        assert rejected_code(events) == RejectCode.UNKNOWN_ORDER
        assert ex.state() == before

    def test_cancel_of_a_nonexistent_order_is_rejected(self, ex: Harness):
        """A cancel naming no order is refused as unknown."""
        assert rejected_code(ex.cancel("a", 42)) == RejectCode.UNKNOWN_ORDER

    def test_cancel_of_a_filled_order_is_rejected_as_unknown_order(self, ex: Harness):
        """A filled order is no longer open and cannot be canceled."""
        oid = ex.rest("a", "sell", 5, 100)
        ex.place("b", "buy", 5, 100)
        assert rejected_code(ex.cancel("a", oid)) == RejectCode.UNKNOWN_ORDER

    def test_second_cancel_of_an_order_is_rejected(self, ex: Harness):
        """A canceled order cannot be canceled again."""
        oid = ex.rest("a", "sell", 5, 100)
        ex.cancel("a", oid)
        assert rejected_code(ex.cancel("a", oid)) == RejectCode.UNKNOWN_ORDER

    def test_cancel_by_unknown_client_order_id_is_rejected(self, ex: Harness):
        """A client id no open order uses names nothing to cancel."""
        ex.rest("a", "sell", 5, 100, client_order_id="x")
        events = ex.cancel("a", client_order_id="y")
        assert rejected_code(events) == RejectCode.UNKNOWN_ORDER

    def test_cancel_by_another_accounts_client_order_id_is_rejected(self, ex: Harness):
        """Client ids are per account: another account's id names nothing."""
        ex.rest("a", "sell", 5, 100, client_order_id="x")
        assert (
            rejected_code(ex.cancel("b", client_order_id="x"))
            == RejectCode.UNKNOWN_ORDER
        )

    def test_cancel_reject_echoes_the_named_order(self, ex: Harness):
        """The reject of a cancel carries the order id and client id it named."""
        (rej,) = ex.cancel("a", 7, client_order_id="c")
        assert isinstance(rej, CommandRejected)
        assert (rej.account, rej.order_id, rej.client_order_id) == ("a", 7, "c")

    def test_cancel_with_empty_account_is_rejected(self, ex: Harness):
        """A cancel from an empty account id matches no order."""
        oid = ex.rest("a", "sell", 5, 100)
        assert rejected_code(ex.cancel("", oid)) == RejectCode.UNKNOWN_ORDER


class TestCancelAll:
    """Cancel-all per account and per symbol."""

    def test_cancel_all_cancels_only_that_accounts_orders(self, ex: Harness):
        """Cancel-all removes every order of one account and reports the count."""
        mine = [
            ex.rest("a", "sell", 1, 100),
            ex.rest("a", "buy", 1, 90),
            ex.rest("a", "sell", 1, 100, symbol="Y"),
        ]
        theirs = ex.rest("b", "sell", 1, 100)
        events = ex.cancel_all("a")
        assert sorted(c.order_id for c in of(events, OrderCanceled)) == mine
        assert {c.reason for c in of(events, OrderCanceled)} == {"cancel_all"}
        (done,) = of(events, AllCanceled)
        assert (done.account, done.symbol, done.count) == ("a", "", 3)
        assert ex.open_ids("X") | ex.open_ids("Y") == {theirs}

    def test_cancel_all_for_one_symbol_leaves_other_symbols(self, ex: Harness):
        """Cancel-all with a symbol leaves the account's orders in other markets."""
        ex.rest("a", "sell", 1, 100)
        other = ex.rest("a", "sell", 1, 100, symbol="Y")
        events = ex.cancel_all("a", "X")
        assert of(events, AllCanceled)[0].count == 1
        assert ex.open_ids("X") == set()
        assert ex.open_ids("Y") == {other}

    def test_cancel_all_includes_untriggered_stops(self, ex: Harness):
        """Pending stop orders are canceled too."""
        stop = ex.rest("a", "buy", 1, type="stop_market", trigger=110)
        events = ex.cancel_all("a")
        assert [c.order_id for c in of(events, OrderCanceled)] == [stop]
        assert ex.pending() == []

    def test_cancel_all_without_orders_reports_zero(self, ex: Harness):
        """Cancel-all of an account with nothing open reports a count of 0."""
        ex.rest("b", "sell", 1, 100)
        before = ex.state()
        events = ex.cancel_all("a")
        assert kinds(events) == ["AllCanceled"]
        assert of(events, AllCanceled)[0].count == 0
        assert ex.state() == before

    def test_cancel_all_of_an_unknown_symbol_is_rejected(self, ex: Harness):
        """Cancel-all naming a market that does not exist is refused."""
        ex.rest("a", "sell", 1, 100)
        before = ex.state()
        assert rejected_code(ex.cancel_all("a", "NOPE")) == RejectCode.UNKNOWN_SYMBOL
        assert ex.state() == before

    def test_cancel_all_reports_each_emptied_level(self, ex: Harness):
        """Every level that lost an order is reported once with its new total."""
        ex.rest("a", "sell", 1, 100)
        ex.rest("a", "sell", 1, 100)
        ex.rest("b", "sell", 2, 100)
        ex.rest("a", "buy", 1, 90)
        events = ex.cancel_all("a")
        deltas = [(d.side, d.price, d.qty) for d in of(events, BookDelta)]
        assert sorted(deltas) == [("buy", 90, 0), ("sell", 100, 2)]


class TestClientOrderIds:
    """Client order ids: unique among an account's open orders."""

    def test_duplicate_client_id_among_open_orders_is_rejected(self, ex: Harness):
        """A second open order with the same client id is refused, changing nothing."""
        ex.rest("a", "sell", 1, 100, client_order_id="dup")
        before = ex.state()
        events = ex.place("a", "sell", 1, 101, client_order_id="dup")
        assert rejected_code(events) == RejectCode.DUPLICATE_CLIENT_ORDER_ID
        assert ex.state() == before

    def test_client_id_of_a_pending_stop_counts_as_in_use(self, ex: Harness):
        """An untriggered stop holds its client id."""
        ex.rest("a", "buy", 1, type="stop_market", trigger=110, client_order_id="s")
        events = ex.place("a", "sell", 1, 101, client_order_id="s")
        assert rejected_code(events) == RejectCode.DUPLICATE_CLIENT_ORDER_ID

    def test_same_client_id_in_another_account_is_accepted(self, ex: Harness):
        """Client ids are unique per account, not exchange-wide."""
        first = ex.rest("a", "sell", 1, 100, client_order_id="same")
        second = ex.rest("b", "sell", 1, 100, client_order_id="same")
        events = ex.cancel("b", client_order_id="same")
        assert [c.order_id for c in of(events, OrderCanceled)] == [second]
        assert ex.queue("sell") == [(first, 100, 1)]

    def test_client_id_is_reusable_after_the_order_is_canceled(self, ex: Harness):
        """A canceled order frees its client id, and the id then names the new order."""
        old = ex.rest("a", "sell", 1, 100, client_order_id="c")
        ex.cancel("a", old)
        new = ex.rest("a", "sell", 1, 101, client_order_id="c")
        events = ex.cancel("a", client_order_id="c")
        assert [c.order_id for c in of(events, OrderCanceled)] == [new]

    def test_client_id_is_reusable_after_the_order_is_filled(self, ex: Harness):
        """A filled order frees its client id, and the id then names the new order."""
        old = ex.rest("a", "sell", 1, 100, client_order_id="c")
        fills = of(ex.place("b", "buy", 1, 100), OrderFilled)
        assert [f.maker_order_id for f in fills] == [old]
        new = ex.rest("a", "sell", 1, 101, client_order_id="c")
        events = ex.cancel("a", client_order_id="c")
        assert [c.order_id for c in of(events, OrderCanceled)] == [new]

    def test_client_id_is_reusable_after_the_order_expired(self, ex: Harness):
        """An expired IOC order never holds its client id."""
        events = ex.place("a", "sell", 1, 100, tif="IOC", client_order_id="c")
        expired = of(events, OrderExpired)
        assert [e.order_id for e in expired] == [of(events, OrderAccepted)[0].order_id]
        new = ex.rest("a", "sell", 1, 100, client_order_id="c")
        events = ex.cancel("a", client_order_id="c")
        assert [c.order_id for c in of(events, OrderCanceled)] == [new]

    def test_client_id_survives_a_requeueing_amend(self, ex: Harness):
        """An order moved by an amend can still be canceled by its client id."""
        oid = ex.rest("a", "sell", 1, 100, client_order_id="c")
        ex.amend("a", oid, price=105)
        events = ex.cancel("a", client_order_id="c")
        assert [c.order_id for c in of(events, OrderCanceled)] == [oid]


class TestAmend:
    """Amend: priority rules, crossing, and rejects."""

    def test_qty_down_keeps_time_priority(self, ex: Harness):
        """Lowering the open quantity at the same price keeps the order's place."""
        first = ex.rest("a", "sell", 5, 100)
        second = ex.rest("b", "sell", 5, 100)
        events = ex.amend("a", first, qty=2)
        assert kinds(events) == ["OrderAmended", "BookDelta"]
        (amended,) = of(events, OrderAmended)
        assert (amended.order_id, amended.price, amended.qty, amended.requeued) == (
            first,
            100,
            2,
            False,
        )
        assert ex.queue("sell") == [(first, 100, 2), (second, 100, 5)]
        assert of(events, BookDelta)[0].qty == 7

    def test_qty_up_loses_time_priority(self, ex: Harness):
        """Raising the open quantity sends the order to the back of its level."""
        first = ex.rest("a", "sell", 5, 100)
        second = ex.rest("b", "sell", 5, 100)
        events = ex.amend("a", first, qty=8)
        assert kinds(events)[:2] == ["OrderAmended", "OrderRested"]
        assert of(events, OrderAmended)[0].requeued is True
        assert ex.queue("sell") == [(second, 100, 5), (first, 100, 8)]

    def test_price_change_loses_time_priority(self, ex: Harness):
        """A new price puts the order at the back of the new level."""
        moving = ex.rest("a", "sell", 5, 101)
        there = ex.rest("b", "sell", 5, 100)
        events = ex.amend("a", moving, price=100)
        assert of(events, OrderAmended)[0].requeued is True
        assert ex.queue("sell") == [(there, 100, 5), (moving, 100, 5)]

    def test_price_change_and_back_still_loses_priority(self, ex: Harness):
        """Moving away and back to a level queues behind orders that stayed there."""
        first = ex.rest("a", "sell", 5, 100)
        second = ex.rest("b", "sell", 5, 100)
        ex.amend("a", first, price=101)
        ex.amend("a", first, price=100)
        assert ex.queue("sell") == [(second, 100, 5), (first, 100, 5)]

    def test_amend_that_crosses_matches_at_the_makers_price(self, ex: Harness):
        """An amend to a crossing price trades first, then rests the rest."""
        bid = ex.rest("a", "buy", 5, 99)
        ask = ex.rest("b", "sell", 3, 101)
        events = ex.amend("a", bid, price=102)
        assert kinds(events)[:3] == ["OrderAmended", "OrderFilled", "OrderRested"]
        (fill,) = of(events, OrderFilled)
        assert (fill.taker_order_id, fill.maker_order_id, fill.price, fill.qty) == (
            bid,
            ask,
            101,
            3,
        )
        assert ex.book() == {"bids": [(102, 2)], "asks": []}

    def test_amend_that_crosses_fully_leaves_the_order_filled(self, ex: Harness):
        """An amended order filled whole by its new price is no longer open."""
        bid = ex.rest("a", "buy", 2, 99)
        ex.rest("b", "sell", 3, 101)
        events = ex.amend("a", bid, price=101)
        assert of(events, OrderRested) == []
        assert rejected_code(ex.cancel("a", bid)) == RejectCode.UNKNOWN_ORDER

    def test_amend_sets_the_open_qty_after_a_partial_fill(self, ex: Harness):
        """The amended quantity is the new open quantity, not the original total."""
        oid = ex.rest("a", "sell", 10, 100)
        ex.place("b", "buy", 4, 100)
        events = ex.amend("a", oid, qty=3)
        assert of(events, OrderAmended)[0].qty == 3
        assert ex.queue("sell") == [(oid, 100, 3)]

    def test_amend_by_client_order_id(self, ex: Harness):
        """An order can be amended by its client id."""
        oid = ex.rest("a", "sell", 5, 100, client_order_id="c")
        events = ex.amend("a", qty=1, client_order_id="c")
        assert of(events, OrderAmended)[0].order_id == oid

    def test_amend_reports_the_old_and_new_levels(self, ex: Harness):
        """A price amend reports the level it left and the level it joined."""
        oid = ex.rest("a", "sell", 5, 101)
        events = ex.amend("a", oid, price=102)
        deltas = sorted((d.price, d.qty) for d in of(events, BookDelta))
        assert deltas == [(101, 0), (102, 5)]

    @pytest.mark.parametrize(
        ("qty", "price"), [(5, None), (None, 100), (5, 100), (None, None)]
    )
    def test_amend_without_a_change_is_rejected(self, ex: Harness, qty, price):
        """An amend that keeps both price and quantity is refused."""
        oid = ex.rest("a", "sell", 5, 100)
        before = ex.state()
        events = ex.amend("a", oid, qty=qty, price=price)
        assert rejected_code(events) == RejectCode.AMEND_NO_CHANGE
        assert ex.state() == before

    def test_amend_of_an_untriggered_stop_is_rejected(self, ex: Harness):
        """A pending stop cannot be amended."""
        stop = ex.rest("a", "buy", 1, 120, type="stop_limit", trigger=110)
        before = ex.state()
        events = ex.amend("a", stop, qty=2)
        assert rejected_code(events) == RejectCode.NOT_AMENDABLE
        assert ex.state() == before

    def test_amend_of_another_accounts_order_is_unknown(self, ex: Harness):
        """An account cannot amend someone else's order; it looks unknown to it."""
        oid = ex.rest("a", "sell", 5, 100)
        before = ex.state()
        events = ex.amend("b", oid, qty=1)
        assert rejected_code(events) == RejectCode.UNKNOWN_ORDER
        assert ex.state() == before

    def test_amend_of_a_filled_order_is_unknown(self, ex: Harness):
        """A filled order can no longer be amended."""
        oid = ex.rest("a", "sell", 5, 100)
        ex.place("b", "buy", 5, 100)
        assert rejected_code(ex.amend("a", oid, qty=1)) == RejectCode.UNKNOWN_ORDER

    @pytest.mark.parametrize(
        ("qty", "price", "code"),
        [
            ("0.5", None, RejectCode.OFF_LOT),
            (None, "100.5", RejectCode.OFF_TICK),
            (-1, None, RejectCode.INVALID_QUANTITY),
            (None, -1, RejectCode.INVALID_PRICE),
            (2_000_000, None, RejectCode.QTY_OUT_OF_RANGE),
            (None, 2_000_000, RejectCode.PRICE_OUT_OF_RANGE),
        ],
    )
    def test_amend_to_an_invalid_value_is_rejected(self, ex: Harness, qty, price, code):
        """An amend's new price and quantity pass the same checks as a new order."""
        oid = ex.rest("a", "sell", 5, 100)
        before = ex.state()
        assert rejected_code(ex.amend("a", oid, qty=qty, price=price)) == code
        assert ex.state() == before

    def test_post_only_amend_that_would_take_is_rejected(self, ex: Harness):
        """A post-only order cannot be amended to a price that crosses."""
        ex.rest("b", "sell", 5, 101)
        oid = ex.rest("a", "buy", 5, 100, post_only=True)
        before = ex.state()
        events = ex.amend("a", oid, price=101)
        assert rejected_code(events) == RejectCode.POST_ONLY_WOULD_TAKE
        assert ex.state() == before

    def test_post_only_amend_that_does_not_cross_is_accepted(self, ex: Harness):
        """A post-only order can move to another passive price."""
        ex.rest("b", "sell", 5, 102)
        oid = ex.rest("a", "buy", 5, 100, post_only=True)
        events = ex.amend("a", oid, price=101)
        assert of(events, OrderAmended)[0].price == 101

    def test_amend_keeps_the_orders_identity_and_flags(self, ex: Harness):
        """A requeued order keeps its id, and its STP mode still applies."""
        own = ex.rest("a", "sell", 5, 101)
        oid = ex.rest("a", "buy", 5, 100, stp="expire_taker")
        events = ex.amend("a", oid, price=101)
        assert of(events, OrderFilled) == []
        assert [
            (e.order_id, e.reason) for e in events if type(e).__name__ == "OrderExpired"
        ] == [(oid, "stp_taker")]
        assert ex.queue("sell") == [(own, 101, 5)]

    def test_accepted_order_is_not_reported_by_amend(self, ex: Harness):
        """An amend emits no new acceptance: the order keeps its original spec."""
        oid = ex.rest("a", "sell", 5, 100)
        assert of(ex.amend("a", oid, price=103), OrderAccepted) == []
