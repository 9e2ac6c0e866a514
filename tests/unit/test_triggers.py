"""Stop and take-profit orders: direction, placement checks, firing and cascades."""

from __future__ import annotations

import pytest
from harness import Harness, kinds, of, rejected_code

from exchange.codes import RejectCode
from exchange.messages import (
    BookDelta,
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRested,
    OrderTriggered,
)


def trade_at(ex: Harness, price: int, symbol: str = "X") -> list:
    """Make two bystanders trade one lot at ``price``; return the taker's events."""
    ex.rest("mm", "sell", 1, price, symbol=symbol)
    return ex.place("tt", "buy", 1, price, symbol=symbol)


# (type, side, trigger, price that fires it, nearest price that does not)
DIRECTIONS = [
    ("stop_market", "buy", 110, 110, 109),
    ("stop_market", "buy", 110, 112, 109),
    ("stop_market", "sell", 90, 90, 91),
    ("stop_market", "sell", 90, 88, 91),
    ("take_profit_market", "buy", 90, 90, 91),
    ("take_profit_market", "sell", 110, 110, 109),
    ("stop_limit", "buy", 110, 110, 109),
    ("stop_limit", "sell", 90, 90, 91),
    ("take_profit_limit", "buy", 90, 90, 91),
    ("take_profit_limit", "sell", 110, 110, 109),
]


def place_trigger(ex: Harness, order_type: str, side: str, trigger: int, **kw) -> int:
    """Place a triggered order for account "s" (limit types priced at the trigger)."""
    price = trigger if order_type.endswith("limit") else None
    return ex.rest("s", side, 1, price, type=order_type, trigger=trigger, **kw)


class TestTriggerDirection:
    """Which way each triggered type fires, and placement checks."""

    @pytest.mark.parametrize(
        ("order_type", "side", "trigger", "fires", "_"), DIRECTIONS
    )
    def test_order_fires_when_last_price_reaches_its_trigger(
        self, ex: Harness, order_type, side, trigger, fires, _
    ):
        """Buy stops and sell take-profits fire on a rise, the others on a fall."""
        trade_at(ex, 100)
        oid = place_trigger(ex, order_type, side, trigger)
        events = trade_at(ex, fires)
        (fired,) = of(events, OrderTriggered)
        assert (fired.order_id, fired.account, fired.symbol) == (oid, "s", "X")
        assert (fired.trigger_price, fired.last_price) == (trigger, fires)
        assert ex.pending() == []

    @pytest.mark.parametrize(
        ("order_type", "side", "trigger", "_", "short"), DIRECTIONS
    )
    def test_order_waits_while_last_price_is_short_of_its_trigger(
        self, ex: Harness, order_type, side, trigger, _, short
    ):
        """A trade one tick short of the trigger leaves the order pending."""
        trade_at(ex, 100)
        oid = place_trigger(ex, order_type, side, trigger)
        assert of(trade_at(ex, short), OrderTriggered) == []
        assert ex.pending() == [oid]

    @pytest.mark.parametrize(
        ("order_type", "side", "trigger", "fires", "_"), DIRECTIONS
    )
    def test_order_already_past_its_trigger_is_rejected(
        self, ex: Harness, order_type, side, trigger, fires, _
    ):
        """A trigger the last price has already reached is refused at placement."""
        trade_at(ex, fires)
        before = ex.state()
        price = trigger if order_type.endswith("limit") else None
        events = ex.place("s", side, 1, price, type=order_type, trigger=trigger)
        assert rejected_code(events) == RejectCode.WOULD_TRIGGER_IMMEDIATELY
        assert ex.state() == before

    @pytest.mark.parametrize(("order_type", "side", "trigger", "_f", "_s"), DIRECTIONS)
    def test_any_trigger_is_accepted_before_the_first_trade(
        self, ex: Harness, order_type, side, trigger, _f, _s
    ):
        """Without a last price nothing can trigger immediately."""
        oid = place_trigger(ex, order_type, side, trigger)
        assert ex.pending() == [oid]

    def test_a_resting_order_alone_does_not_set_the_last_price(self, ex: Harness):
        """Only trades move the reference price; quotes do not."""
        ex.rest("mm", "sell", 1, 120)
        ex.rest("mm", "buy", 1, 80)
        oid = place_trigger(ex, "stop_market", "buy", 110)
        assert ex.pending() == [oid]
        assert ex.last_price() is None


class TestTriggeredExecution:
    """What a triggered order does once it fires."""

    def test_pending_order_is_accepted_but_neither_rests_nor_trades(self, ex: Harness):
        """Placing a stop emits only its acceptance."""
        trade_at(ex, 100)
        ex.rest("mm", "sell", 5, 120)
        events = ex.place("s", "buy", 1, type="stop_market", trigger=110)
        assert kinds(events) == ["OrderAccepted"]
        assert of(events, OrderAccepted)[0].trigger_price == 110

    def test_stop_market_sweeps_the_book_and_expires_the_rest(self, ex: Harness):
        """A triggered stop-market behaves as a market order."""
        trade_at(ex, 100)
        ask = ex.rest("mm", "sell", 2, 115)
        stop = ex.rest("s", "buy", 5, type="stop_market", trigger=110)
        events = trade_at(ex, 110)
        assert kinds(events)[:2] == ["OrderAccepted", "OrderFilled"]
        assert kinds(events)[2] == "OrderTriggered"
        stop_fills = [f for f in of(events, OrderFilled) if f.taker_order_id == stop]
        assert [(f.maker_order_id, f.price, f.qty) for f in stop_fills] == [
            (ask, 115, 2)
        ]
        assert [(e.order_id, e.qty, e.reason) for e in of(events, OrderExpired)] == [
            (stop, 3, "ioc")
        ]

    def test_stop_limit_rests_at_its_limit_when_it_cannot_trade(self, ex: Harness):
        """A triggered stop-limit that does not cross joins the book at its price."""
        trade_at(ex, 100)
        stop = ex.rest("s", "buy", 3, 108, type="stop_limit", trigger=110)
        events = trade_at(ex, 110)
        assert [(r.order_id, r.price, r.qty) for r in of(events, OrderRested)] == [
            (stop, 108, 3)
        ]
        assert ex.queue("buy") == [(stop, 108, 3)]

    def test_triggered_stop_limit_can_then_be_amended(self, ex: Harness):
        """Once triggered and resting, a stop-limit is an ordinary resting order."""
        trade_at(ex, 100)
        stop = ex.rest("s", "buy", 3, 108, type="stop_limit", trigger=110)
        trade_at(ex, 110)
        assert rejected_code(ex.amend("s", stop, qty=1)) is None

    def test_take_profit_limit_fills_against_the_book(self, ex: Harness):
        """A triggered take-profit limit trades like a limit order."""
        trade_at(ex, 100)
        bid = ex.rest("mm", "buy", 4, 108)
        tp = ex.rest("s", "sell", 2, 105, type="take_profit_limit", trigger=110)
        events = trade_at(ex, 110)
        tp_fills = [
            (f.maker_order_id, f.price, f.qty)
            for f in of(events, OrderFilled)
            if f.taker_order_id == tp
        ]
        assert tp_fills == [(bid, 108, 2)]

    def test_triggered_fills_update_the_last_price(self, ex: Harness):
        """A fill of a triggered order moves the last price like any fill."""
        trade_at(ex, 100)
        ex.rest("mm", "sell", 2, 115)
        ex.rest("s", "buy", 2, type="stop_market", trigger=110)
        trade_at(ex, 110)
        assert ex.last_price() == 115

    def test_triggered_post_only_that_would_take_expires(self, ex: Harness):
        """A post-only stop-limit that would take on triggering expires as post_only."""
        trade_at(ex, 100)
        ex.rest("mm", "sell", 5, 111)
        stop = ex.rest(
            "s", "buy", 2, 112, type="stop_limit", trigger=110, post_only=True
        )
        events = trade_at(ex, 110)
        assert [(e.order_id, e.qty, e.reason) for e in of(events, OrderExpired)] == [
            (stop, 2, "post_only")
        ]
        assert ex.book()["asks"] == [(111, 5)]

    def test_triggered_fok_that_cannot_fill_expires(self, ex: Harness):
        """A fill-or-kill stop-limit the book cannot fill whole expires as fok."""
        trade_at(ex, 100)
        ex.rest("mm", "sell", 1, 111)
        stop = ex.rest("s", "buy", 2, 112, type="stop_limit", trigger=110, tif="FOK")
        events = trade_at(ex, 110)
        assert [(e.order_id, e.qty, e.reason) for e in of(events, OrderExpired)] == [
            (stop, 2, "fok")
        ]
        assert ex.book()["asks"] == [(111, 1)]

    def test_triggered_fok_that_can_fill_fills_whole(self, ex: Harness):
        """A fill-or-kill stop with enough liquidity fills whole when triggered."""
        trade_at(ex, 100)
        ex.rest("mm", "sell", 3, 111)
        stop = ex.rest("s", "buy", 2, 112, type="stop_limit", trigger=110, tif="FOK")
        events = trade_at(ex, 110)
        assert (
            sum(f.qty for f in of(events, OrderFilled) if f.taker_order_id == stop) == 2
        )

    def test_triggered_order_applies_its_stp_mode(self, ex: Harness):
        """Self-trade prevention applies to a triggered order as a taker."""
        trade_at(ex, 100)
        own = ex.rest("s", "sell", 2, 115)
        stop = ex.rest(
            "s", "buy", 2, type="stop_market", trigger=110, stp="expire_taker"
        )
        events = trade_at(ex, 110)
        assert [(e.order_id, e.reason) for e in of(events, OrderExpired)] == [
            (stop, "stp_taker")
        ]
        assert ex.queue("sell") == [(own, 115, 2)]

    def test_trades_in_one_market_do_not_fire_triggers_of_another(self, ex: Harness):
        """Each market's triggers follow its own last price."""
        trade_at(ex, 100, symbol="Y")
        trade_at(ex, 100)
        stop = ex.rest("s", "buy", 1, type="stop_market", trigger=110, symbol="Y")
        assert of(trade_at(ex, 120), OrderTriggered) == []
        assert ex.pending("Y") == [stop]

    def test_amend_that_trades_can_fire_a_trigger(self, ex: Harness):
        """A fill caused by an amend moves the last price and fires stops."""
        trade_at(ex, 100)
        stop = ex.rest("s", "buy", 1, type="stop_market", trigger=110)
        ex.rest("mm", "sell", 1, 110)
        bid = ex.rest("tt", "buy", 1, 105)
        events = ex.amend("tt", bid, price=110)
        assert [t.order_id for t in of(events, OrderTriggered)] == [stop]


class TestCascades:
    """Triggers firing triggers, in a deterministic order."""

    def test_stops_fire_one_after_another_as_each_moves_the_price(self, ex: Harness):
        """A stop's own fill can trigger the next stop within the same record."""
        trade_at(ex, 100)
        ex.rest("mm", "buy", 1, 95)
        ex.rest("mm", "buy", 1, 94)
        far = ex.rest("s", "sell", 1, type="stop_market", trigger=95)
        near = ex.rest("s", "sell", 1, type="stop_market", trigger=97)
        ex.rest("mm", "buy", 1, 97)
        events = ex.place("tt", "sell", 1, 97)
        taker = of(events, OrderAccepted)[0].order_id
        fired = [(t.order_id, t.last_price) for t in of(events, OrderTriggered)]
        assert fired == [(near, 97), (far, 95)]
        assert [(f.taker_order_id, f.price) for f in of(events, OrderFilled)] == [
            (taker, 97),
            (near, 95),
            (far, 94),
        ]

    def test_cascade_ends_when_a_fill_falls_short_of_the_next_trigger(
        self, ex: Harness
    ):
        """A stop whose fill falls short of the next trigger leaves that one pending."""
        trade_at(ex, 100)
        ex.rest("mm", "buy", 1, 96)
        far = ex.rest("s", "sell", 1, type="stop_market", trigger=95)
        near = ex.rest("s", "sell", 1, type="stop_market", trigger=97)
        ex.rest("mm", "buy", 1, 97)
        events = ex.place("tt", "sell", 1, 97)
        assert [t.order_id for t in of(events, OrderTriggered)] == [near]
        assert ex.pending() == [far]

    def test_stops_at_one_trigger_fire_in_placement_order(self, ex: Harness):
        """Orders sharing a trigger price fire first-in first-out."""
        trade_at(ex, 100)
        ids = [
            ex.rest(acct, "buy", 1, type="stop_market", trigger=110)
            for acct in ("s1", "s2", "s3")
        ]
        events = trade_at(ex, 110)
        assert [t.order_id for t in of(events, OrderTriggered)] == ids

    def test_nearest_reached_trigger_fires_first(self, ex: Harness):
        """Among reached buy stops the lowest trigger fires first, then higher ones."""
        trade_at(ex, 100)
        high = ex.rest("s", "buy", 1, type="stop_market", trigger=108)
        low = ex.rest("s", "buy", 1, type="stop_market", trigger=104)
        events = trade_at(ex, 110)
        assert [t.order_id for t in of(events, OrderTriggered)] == [low, high]

    def test_cascade_replays_identically(self, ex: Harness):
        """Feeding the same records to a fresh core reproduces a cascade exactly."""
        trade_at(ex, 100)
        for trigger in (99, 98, 97, 96):
            ex.rest("s", "sell", 1, type="stop_market", trigger=trigger)
            ex.rest("mm", "buy", 1, trigger)
        ex.place("tt", "sell", 1, 99)
        twin = Harness()
        for record, events in zip(ex.records, ex.history, strict=True):
            assert twin.core.handle(record) == events
        assert len(of(ex.history[-1], OrderTriggered)) == 4


class TestCancelPending:
    """Cancels of untriggered orders."""

    def test_cancel_of_a_pending_stop_removes_it(self, ex: Harness):
        """A pending stop can be canceled; no book level changes."""
        trade_at(ex, 100)
        stop = ex.rest("s", "buy", 2, type="stop_market", trigger=110)
        events = ex.cancel("s", stop)
        assert kinds(events) == ["OrderCanceled"]
        assert of(events, OrderCanceled)[0].qty == 2
        assert of(events, BookDelta) == []
        assert ex.pending() == []

    def test_canceled_stop_does_not_fire_later(self, ex: Harness):
        """A canceled stop stays gone when the price reaches its trigger."""
        trade_at(ex, 100)
        stop = ex.rest("s", "buy", 2, type="stop_market", trigger=110)
        ex.cancel("s", stop)
        assert of(trade_at(ex, 110), OrderTriggered) == []

    def test_cancel_of_another_accounts_stop_is_unknown(self, ex: Harness):
        """A pending stop is invisible to other accounts."""
        stop = ex.rest("s", "buy", 2, type="stop_market", trigger=110)
        assert rejected_code(ex.cancel("x", stop)) == RejectCode.UNKNOWN_ORDER
        assert ex.pending() == [stop]

    def test_triggered_stop_market_is_no_longer_cancelable(self, ex: Harness):
        """After firing, a stop-market is closed and cancel finds nothing."""
        trade_at(ex, 100)
        stop = ex.rest("s", "buy", 2, type="stop_market", trigger=110)
        trade_at(ex, 110)
        assert rejected_code(ex.cancel("s", stop)) == RejectCode.UNKNOWN_ORDER
