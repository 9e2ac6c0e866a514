"""The in-process `Exchange` facade: Decimal in and out, typed rejects, the journal."""

from __future__ import annotations

import itertools
from decimal import Decimal

import msgspec
import pytest
from clock import HOUR_NS, ManualClock
from margin_helpers import FREE, trade

import exchange as paperx
from exchange import Exchange, OrderResult, RejectCode, Rejected
from exchange.core import ExchangeCore
from exchange.errors import REJECT_CLASSES, JournalNotEmpty, PaperxError
from exchange.journal.payload import Journaled, journaled_events
from exchange.messages import (
    CheckpointTaken,
    CommandRejected,
    FundingPaid,
    PositionLiquidated,
)

D = Decimal


@pytest.fixture
def ex() -> Exchange:
    """An exchange on the default markets, in-memory journal and a fake clock."""
    ticks = itertools.count(1_000)
    return Exchange(clock=lambda: next(ticks))


def journaled(ex: Exchange) -> list[Journaled]:
    """Return every record the exchange has journaled, decoded."""
    return [msgspec.msgpack.decode(raw, type=Journaled) for _, raw in ex.journal.read()]


class TestPlaceOrder:
    """place_order outcomes."""

    def test_resting_limit_order_is_new_with_nothing_filled(self, ex: Exchange):
        """A limit order that does not cross comes back "new" with its decimals."""
        result = ex.place_order("alice", "BTC-PERP", "buy", "limit", "0.5", "65000.1")
        assert (result.order_id, result.seq, result.status) == (1, 1, "new")
        assert (result.symbol, result.side, result.type) == ("BTC-PERP", "buy", "limit")
        assert (result.price, result.qty) == (D("65000.1"), D("0.5"))
        assert (result.filled, result.remaining) == (D(0), D("0.5"))
        assert result.fills == []
        assert result.average_price is None

    def test_crossing_order_reports_its_fills_as_taker(self, ex: Exchange):
        """A taker's result lists its trades at the makers' prices."""
        maker = ex.place_order("alice", "BTC-PERP", "sell", "limit", "0.3", "65000")
        result = ex.place_order("bob", "BTC-PERP", "buy", "limit", "0.3", "65010")
        assert result.status == "filled"
        assert (result.filled, result.remaining) == (D("0.3"), D(0))
        (trade,) = result.fills
        assert (trade.price, trade.qty, trade.liquidity) == (
            D(65000),
            D("0.3"),
            "taker",
        )
        assert trade.counterparty_order_id == maker.order_id
        assert trade.fee == D(0)
        assert result.average_price == D(65000)

    def test_average_price_weights_fills_by_quantity(self, ex: Exchange):
        """The average price is the quantity-weighted mean of the fills."""
        ex.place_order("alice", "BTC-PERP", "sell", "limit", "1", "100")
        ex.place_order("alice", "BTC-PERP", "sell", "limit", "3", "101")
        result = ex.place_order("bob", "BTC-PERP", "buy", "market", "4")
        assert result.average_price == D("100.75")

    def test_filled_and_average_price_cover_every_call_the_order_traded_in(
        self, ex: Exchange
    ):
        """A resting order filled over two calls reports both fills' average."""
        bid = ex.place_order("alice", "BTC-PERP", "buy", "limit", "5", "101")
        ex.place_order("bob", "BTC-PERP", "sell", "limit", "1", "101")
        ex.amend_order("alice", bid.order_id, price="100")
        ex.place_order("bob", "BTC-PERP", "sell", "market", "3")
        (canceled,) = ex.cancel_all("alice")
        assert (canceled.status, canceled.filled, canceled.fills) == (
            "canceled",
            D(4),
            [],  # no trade in the cancel's own call
        )
        assert canceled.average_price == D("100.25")  # (1 x 101 + 3 x 100) / 4

    def test_partly_filled_taker_rests_as_partially_filled(self, ex: Exchange):
        """A taker larger than the book is "partially_filled" and rests the rest."""
        ex.place_order("alice", "BTC-PERP", "sell", "limit", "0.2", "100")
        result = ex.place_order("bob", "BTC-PERP", "buy", "limit", "0.5", "100")
        assert result.status == "partially_filled"
        assert (result.filled, result.remaining) == (D("0.2"), D("0.3"))
        assert ex.order_book("BTC-PERP")["bids"] == [(D(100), D("0.3"))]

    def test_market_order_remainder_is_expired(self, ex: Exchange):
        """A market order the book cannot fill whole ends "expired" with its fills."""
        ex.place_order("alice", "BTC-PERP", "sell", "limit", "0.2", "100")
        result = ex.place_order("bob", "BTC-PERP", "buy", "market", "0.5")
        assert result.status == "expired"
        assert result.filled == D("0.2")
        assert result.remaining == D(0)

    @pytest.mark.parametrize(
        ("qty", "price"),
        [("0.001", "100.5"), (D("0.001"), D("100.5")), (D("1E-3"), "100.50")],
    )
    def test_decimal_strings_and_decimals_are_accepted(self, ex: Exchange, qty, price):
        """Quantities and prices may be Decimals or decimal strings."""
        result = ex.place_order("alice", "BTC-PERP", "buy", "limit", qty, price)
        assert (result.qty, result.price) == (D("0.001"), D("100.5"))

    def test_ints_are_whole_units(self, ex: Exchange):
        """An int quantity or price means whole units."""
        result = ex.place_order("alice", "ETH-PERP", "buy", "limit", 2, 3000)
        assert (result.qty, result.price) == (D(2), D(3000))

    def test_client_order_id_is_echoed(self, ex: Exchange):
        """The result carries the order's client id."""
        result = ex.place_order(
            "alice", "BTC-PERP", "buy", "limit", "1", "100", client_order_id="my-1"
        )
        assert result.client_order_id == "my-1"

    def test_stop_order_is_new_and_waits_for_its_trigger(self, ex: Exchange):
        """A stop order comes back "new" and is listed as not yet triggered."""
        result = ex.place_order(
            "alice", "BTC-PERP", "buy", "stop_market", "1", trigger_price="70000"
        )
        assert result.status == "new"
        (row,) = ex.open_orders("alice")
        assert (row["type"], row["trigger_price"], row["triggered"]) == (
            "stop_market",
            D(70000),
            False,
        )

    def test_maker_result_reflects_fills_made_by_later_takers(self, ex: Exchange):
        """Cancelling a partly filled maker reports what it had filled."""
        maker = ex.place_order("alice", "BTC-PERP", "sell", "limit", "1", "100")
        ex.place_order("bob", "BTC-PERP", "buy", "limit", "0.4", "100")
        result = ex.cancel_order("alice", maker.order_id)
        assert result.status == "canceled"
        assert (result.filled, result.remaining) == (D("0.4"), D(0))


class TestRejects:
    """Rejects raise `Rejected` and change nothing."""

    def test_reject_raises_rejected_with_its_code_reason_and_seq(self, ex: Exchange):
        """A refused order raises `Rejected` carrying the stable code and the seq."""
        with pytest.raises(Rejected) as info:
            ex.place_order("alice", "BTC-PERP", "buy", "limit", "1", "100.05")
        assert info.value.code is RejectCode.OFF_TICK
        assert info.value.seq == 1
        assert "tick" in info.value.reason
        assert str(info.value).startswith("[1008 OFF_TICK] ")

    @pytest.mark.parametrize(
        ("kwargs", "code"),
        [
            ({"symbol": "DOGE-PERP"}, RejectCode.UNKNOWN_SYMBOL),
            ({"qty": "0.0005"}, RejectCode.OFF_LOT),
            ({"qty": "0"}, RejectCode.INVALID_QUANTITY),
            ({"qty": "-1"}, RejectCode.INVALID_QUANTITY),
            ({"qty": "100000"}, RejectCode.QTY_OUT_OF_RANGE),
            ({"price": "99999999"}, RejectCode.PRICE_OUT_OF_RANGE),
            ({"price": None}, RejectCode.PRICE_REQUIRED),
            ({"type": "market"}, RejectCode.PRICE_NOT_ALLOWED),
            ({"trigger_price": "110"}, RejectCode.TRIGGER_NOT_ALLOWED),
            ({"account": ""}, RejectCode.INVALID_ACCOUNT),
            ({"client_order_id": "x" * 37}, RejectCode.INVALID_CLIENT_ORDER_ID),
            ({"post_only": True, "tif": "IOC"}, RejectCode.INVALID_FLAGS),
        ],
    )
    def test_bad_order_raises_is_journaled_and_changes_nothing(
        self, ex: Exchange, kwargs, code
    ):
        """A refused order raises its code, is journaled, and leaves the books alone."""
        ex.place_order("maker", "BTC-PERP", "sell", "limit", "1", "200")
        book = ex.order_book("BTC-PERP")
        order = {
            "account": "alice",
            "symbol": "BTC-PERP",
            "side": "buy",
            "type": "limit",
            "qty": "1",
            "price": "100",
            **kwargs,
        }
        with pytest.raises(Rejected) as info:
            ex.place_order(**order)
        assert info.value.code is code
        (last,) = journaled(ex)[-1:]
        assert isinstance(last.events[0], CommandRejected)
        assert ex.order_book("BTC-PERP")["bids"] == book["bids"]
        assert (
            ex.place_order("alice", "BTC-PERP", "buy", "limit", "1", "100").order_id
            == 2
        )

    @pytest.mark.parametrize("field", ["qty", "price"])
    def test_more_than_eight_decimals_is_too_precise_and_not_journaled(
        self, ex: Exchange, field
    ):
        """A value finer than 1e-8 is refused before it becomes a command."""
        order = {"qty": "1", "price": "100", field: "1.000000001"}
        before = ex.state_hash()
        with pytest.raises(Rejected) as info:
            ex.place_order("alice", "BTC-PERP", "buy", "limit", **order)
        assert info.value.code is RejectCode.TOO_PRECISE
        assert journaled(ex) == []
        assert ex.state_hash() == before

    def test_float_input_is_refused_as_malformed(self, ex: Exchange):
        """A float is the wrong type for an exact value, so it is MALFORMED."""
        with pytest.raises(Rejected) as info:
            ex.place_order("alice", "BTC-PERP", "buy", "limit", 1.5, "100")
        assert info.value.code is RejectCode.MALFORMED

    @pytest.mark.parametrize("field", ["qty", "price"])
    def test_float_input_is_never_journaled(self, ex: Exchange, field):
        """A float never reaches the core or the journal, whatever its code."""
        order = {"qty": "1", "price": "100", field: 0.1}
        before = ex.state_hash()
        with pytest.raises(Rejected):
            ex.place_order("alice", "BTC-PERP", "buy", "limit", **order)
        assert journaled(ex) == []
        assert ex.state_hash() == before

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"side": "long"},
            {"side": "BUY"},
            {"type": "stop"},
            {"tif": "GTD"},
            {"stp": "cancel_both"},
        ],
    )
    def test_unknown_literal_is_malformed_and_not_journaled(self, ex: Exchange, kwargs):
        """A side, type, TIF or STP mode outside the protocol is malformed."""
        order = {"side": "buy", "type": "limit", **kwargs}
        with pytest.raises(Rejected) as info:
            ex.place_order("alice", "BTC-PERP", qty="1", price="100", **order)
        assert info.value.code is RejectCode.MALFORMED
        assert journaled(ex) == []

    @pytest.mark.parametrize(
        ("call", "field"),
        [
            (lambda ex: ex.cancel_order("alice", "1"), "order_id"),
            (lambda ex: ex.advance_time(D("1.5")), "ts_ns"),
            (lambda ex: ex.place_order(7, "BTC-PERP", "buy", "limit", 1, 1), "account"),
            (
                lambda ex: ex.place_order(
                    "alice", "BTC-PERP", "buy", "limit", 1, 1, post_only=1
                ),
                "post_only",
            ),
            (lambda ex: ex.cancel_all("alice", 5), "symbol"),
        ],
        ids=["order_id", "ts_ns", "account", "post_only", "symbol"],
    )
    def test_value_of_the_wrong_type_is_malformed_and_not_journaled(
        self, ex: Exchange, call, field
    ):
        """A value of the wrong type is refused before it reaches the journal."""
        with pytest.raises(paperx.BadRequest) as info:
            call(ex)
        assert info.value.code is RejectCode.MALFORMED
        assert info.value.reason.startswith(f"{field}: Expected")
        assert journaled(ex) == []

    @pytest.mark.parametrize("depth", [-1, "3", True])
    def test_order_book_depth_must_be_a_natural_int(self, ex: Exchange, depth):
        """A book depth that is not an int >= 0 is malformed."""
        with pytest.raises(Rejected) as info:
            ex.order_book("BTC-PERP", depth=depth)
        assert info.value.code is RejectCode.MALFORMED

    def test_duplicate_client_order_id_raises(self, ex: Exchange):
        """A second open order with the same client id is refused."""
        ex.place_order(
            "alice", "BTC-PERP", "buy", "limit", "1", "100", client_order_id="c"
        )
        with pytest.raises(Rejected) as info:
            ex.place_order(
                "alice", "BTC-PERP", "buy", "limit", "1", "99", client_order_id="c"
            )
        assert info.value.code is RejectCode.DUPLICATE_CLIENT_ORDER_ID

    def test_fok_that_cannot_fill_raises(self, ex: Exchange):
        """A fill-or-kill order the book cannot fill raises FOK_NOT_FILLED."""
        ex.place_order("alice", "BTC-PERP", "sell", "limit", "1", "100")
        with pytest.raises(Rejected) as info:
            ex.place_order("bob", "BTC-PERP", "buy", "limit", "2", "100", tif="FOK")
        assert info.value.code is RejectCode.FOK_NOT_FILLED


class TestCancelAndAmend:
    """cancel_order, amend_order and cancel_all."""

    def test_cancel_by_client_order_id(self, ex: Exchange):
        """An order can be canceled by its client id."""
        placed = ex.place_order(
            "alice", "BTC-PERP", "buy", "limit", "1", "100", client_order_id="c"
        )
        result = ex.cancel_order("alice", client_order_id="c")
        assert (result.order_id, result.status) == (placed.order_id, "canceled")
        assert ex.open_orders("alice") == []

    def test_cancel_of_another_accounts_order_raises_unknown_order(self, ex: Exchange):
        """An account cannot cancel someone else's order."""
        placed = ex.place_order("alice", "BTC-PERP", "buy", "limit", "1", "100")
        with pytest.raises(Rejected) as info:
            ex.cancel_order("bob", placed.order_id)
        assert info.value.code is RejectCode.UNKNOWN_ORDER
        assert len(ex.open_orders("alice")) == 1

    def test_amend_qty_down_keeps_the_order_new(self, ex: Exchange):
        """Lowering the quantity returns the order with its new open quantity."""
        placed = ex.place_order("alice", "BTC-PERP", "buy", "limit", "1", "100")
        result = ex.amend_order("alice", placed.order_id, qty="0.4")
        assert (result.status, result.qty, result.remaining) == (
            "new",
            D("0.4"),
            D("0.4"),
        )

    def test_amend_after_a_fill_sets_the_open_quantity(self, ex: Exchange):
        """The amended quantity is what stays open; the total keeps the filled part."""
        placed = ex.place_order("alice", "BTC-PERP", "sell", "limit", "1", "100")
        ex.place_order("bob", "BTC-PERP", "buy", "limit", "0.3", "100")
        result = ex.amend_order("alice", placed.order_id, qty="0.5")
        assert (result.filled, result.remaining, result.qty) == (
            D("0.3"),
            D("0.5"),
            D("0.8"),
        )

    def test_amend_that_crosses_reports_its_fills(self, ex: Exchange):
        """An amend to a crossing price trades, and the result shows the fills."""
        ex.place_order("alice", "BTC-PERP", "sell", "limit", "1", "101")
        bid = ex.place_order("bob", "BTC-PERP", "buy", "limit", "1", "100")
        result = ex.amend_order("bob", bid.order_id, price="101")
        assert result.status == "filled"
        assert [t.price for t in result.fills] == [D(101)]

    def test_amend_without_change_raises(self, ex: Exchange):
        """An amend to the same price and quantity is refused."""
        placed = ex.place_order("alice", "BTC-PERP", "buy", "limit", "1", "100")
        with pytest.raises(Rejected) as info:
            ex.amend_order("alice", placed.order_id, price="100")
        assert info.value.code is RejectCode.AMEND_NO_CHANGE

    def test_cancel_all_returns_the_canceled_orders_and_spares_others(
        self, ex: Exchange
    ):
        """Cancel-all per account and symbol returns the orders it canceled."""
        btc = ex.place_order("alice", "BTC-PERP", "buy", "limit", "1", "100")
        eth = ex.place_order("alice", "ETH-PERP", "buy", "limit", "1", "100")
        ex.place_order("bob", "BTC-PERP", "buy", "limit", "1", "100")
        (first,) = ex.cancel_all("alice", "BTC-PERP")
        assert (first.order_id, first.status) == (btc.order_id, "canceled")
        assert [r.order_id for r in ex.cancel_all("alice")] == [eth.order_id]
        assert ex.cancel_all("alice") == []
        assert len(ex.open_orders("bob")) == 1

    def test_cancel_all_reports_what_each_order_had_filled(self, ex: Exchange):
        """Each canceled order comes back with its final quantities, oldest first."""
        ask = ex.place_order("alice", "BTC-PERP", "sell", "limit", "1", "100")
        stop = ex.place_order(
            "alice", "BTC-PERP", "sell", "stop_market", "2", trigger_price="90"
        )
        ex.place_order("bob", "BTC-PERP", "buy", "limit", "0.4", "100")
        results = ex.cancel_all("alice")
        assert [(r.order_id, r.status, r.filled, r.qty) for r in results] == [
            (ask.order_id, "canceled", D("0.4"), D(1)),
            (stop.order_id, "canceled", D(0), D(2)),
        ]
        assert all(isinstance(r, OrderResult) and r.remaining == 0 for r in results)


class TestQueries:
    """order_book and open_orders."""

    def test_order_book_lists_decimal_levels_best_first(self, ex: Exchange):
        """The book view gives (price, qty) Decimals, best first, up to the depth."""
        for price in ("100", "99.5", "99", "98"):
            ex.place_order("alice", "BTC-PERP", "buy", "limit", "0.25", price)
        ex.place_order("alice", "BTC-PERP", "buy", "limit", "0.5", "100")
        ex.place_order("bob", "BTC-PERP", "sell", "limit", "1.5", "101")
        book = ex.order_book("BTC-PERP", depth=2)
        assert book["bids"] == [(D(100), D("0.75")), (D("99.5"), D("0.25"))]
        assert book["asks"] == [(D(101), D("1.5"))]
        assert (book["symbol"], book["seq"]) == ("BTC-PERP", 6)

    def test_order_book_of_unknown_symbol_raises(self, ex: Exchange):
        """Asking for a market that does not exist raises UNKNOWN_SYMBOL."""
        with pytest.raises(Rejected) as info:
            ex.order_book("DOGE-PERP")
        assert info.value.code is RejectCode.UNKNOWN_SYMBOL

    def test_open_orders_lists_the_accounts_orders_oldest_first(self, ex: Exchange):
        """Open orders are the account's own, resting or pending, oldest first."""
        first = ex.place_order("alice", "BTC-PERP", "buy", "limit", "1", "100")
        ex.place_order("bob", "BTC-PERP", "buy", "limit", "1", "100")
        second = ex.place_order("alice", "ETH-PERP", "sell", "limit", "2", "3000")
        rows = ex.open_orders("alice")
        assert [r["order_id"] for r in rows] == [first.order_id, second.order_id]
        assert rows[0]["price"] == D(100)
        assert rows[0]["remaining"] == D(1)
        assert [r["order_id"] for r in ex.open_orders("alice", "ETH-PERP")] == [
            second.order_id
        ]

    def test_open_orders_report_the_amended_quantity(self, ex: Exchange):
        """After an amend, open orders show the total quantity the amend reported."""
        placed = ex.place_order("alice", "BTC-PERP", "sell", "limit", "1", "100")
        ex.place_order("bob", "BTC-PERP", "buy", "limit", "0.3", "100")
        amended = ex.amend_order("alice", placed.order_id, qty="0.2")
        (row,) = ex.open_orders("alice")
        assert (row["qty"], row["remaining"]) == (amended.qty, amended.remaining)

    def test_filled_orders_leave_open_orders(self, ex: Exchange):
        """An order filled whole is no longer listed as open."""
        ex.place_order("alice", "BTC-PERP", "sell", "limit", "1", "100")
        ex.place_order("bob", "BTC-PERP", "buy", "limit", "1", "100")
        assert ex.open_orders("alice") == []


class TestJournal:
    """What the facade journals."""

    def test_every_command_is_journaled_with_its_events(self, ex: Exchange):
        """Accepted and rejected commands alike are journaled in seq order."""
        ex.place_order("alice", "BTC-PERP", "sell", "limit", "1", "100")
        with pytest.raises(Rejected):
            ex.cancel_order("alice", 99)
        ex.place_order("bob", "BTC-PERP", "buy", "limit", "1", "100")
        entries = journaled(ex)
        assert [e.record.seq for e in entries] == [1, 2, 3]
        assert all(ev.seq == e.record.seq for e in entries for ev in e.events)

    def test_records_are_stamped_by_the_clock_and_never_go_back(self):
        """Record timestamps come from the clock and stay monotonic if it steps back."""
        times = iter([500, 300, 900])
        ex = Exchange(clock=lambda: next(times))
        for price in ("100", "101", "102"):
            ex.place_order("alice", "BTC-PERP", "sell", "limit", "1", price)
        assert [e.record.ts_ns for e in journaled(ex)] == [500, 500, 900]

    def test_rerunning_the_journal_reproduces_events_and_hash(self, ex: Exchange):
        """The journaled records rerun in a fresh core give their events and hash."""
        ex.place_order("alice", "BTC-PERP", "sell", "limit", "1", "100")
        ex.place_order("bob", "BTC-PERP", "buy", "limit", "2", "100.5")
        ex.place_order(
            "carol", "BTC-PERP", "sell", "stop_market", "1", trigger_price="99"
        )
        ex.amend_order("bob", 2, qty="0.5")
        core = ExchangeCore(ex.markets.values())
        for entry in journaled(ex):
            assert journaled_events(core.handle(entry.record)) == entry.events
        assert core.state_hash() == ex.state_hash()

    def test_close_journals_a_checkpoint_of_the_final_hash(self, ex: Exchange):
        """Closing the exchange journals its final state hash."""
        ex.place_order("alice", "BTC-PERP", "sell", "limit", "1", "100")
        ex.close()
        last = journaled(ex)[-1]
        (taken,) = last.events
        assert isinstance(taken, CheckpointTaken)
        assert taken.state_hash == ex.state_hash()


@pytest.fixture
def clock() -> ManualClock:
    """A clock at 07:00 UTC that moves only when the test advances it."""
    return ManualClock()


@pytest.fixture
def funded(clock: ManualClock) -> Exchange:
    """A margin exchange with alice long and bob short 0.1 BTC, 9 hours on."""
    ex = Exchange(FREE, margin=True, clock=clock)
    for account in ("alice", "bob"):
        ex.deposit(account, "10000")
    ex.set_index_price("BTC-PERP", "60000")
    ex.place_order("alice", "BTC-PERP", "buy", "limit", "0.01", "59000")  # order 1
    trade(ex, "alice", "bob", "BTC-PERP", "0.1", "60000")
    clock.advance(9 * HOUR_NS)  # past 08:00 UTC: the next record settles funding
    return ex


def _starts_with_funding(ex: Exchange) -> bool:
    """Return True if the last record's first event is a funding payment."""
    return isinstance(journaled(ex)[-1].events[0], FundingPaid)


class TestOverRealTime:
    """Calls whose records first settle the funding of a funding time passed."""

    def test_order_placed_after_a_funding_time_returns_its_result(
        self, funded: Exchange
    ):
        """A valid order in a record that starts with funding returns its result."""
        result = funded.place_order(
            "alice", "BTC-PERP", "buy", "limit", "0.01", "58000"
        )
        assert (result.status, result.price, result.seq) == ("new", D(58000), 7)
        assert _starts_with_funding(funded)

    def test_bad_order_after_a_funding_time_raises_its_reject(self, funded: Exchange):
        """A refused order in a record that starts with funding raises `Rejected`."""
        with pytest.raises(Rejected) as info:
            funded.place_order("alice", "BTC-PERP", "buy", "limit", "1", "100.05")
        assert info.value.code is RejectCode.OFF_TICK
        assert _starts_with_funding(funded)

    def test_refused_account_call_after_a_funding_time_raises(self, funded: Exchange):
        """A withdrawal beyond the balance, refused after the funding, raises."""
        with pytest.raises(paperx.InsufficientFunds):
            funded.withdraw("alice", "1000000")
        assert _starts_with_funding(funded)

    @pytest.mark.parametrize(
        ("call", "expected"),
        [
            (lambda ex: ex.amend_order("alice", 1, price="58000").price, D(58000)),
            (lambda ex: ex.cancel_order("alice", 1).status, "canceled"),
            (lambda ex: [r.order_id for r in ex.cancel_all("alice")], [1]),
            (lambda ex: ex.withdraw("alice", "1"), None),
            (lambda ex: len(ex.checkpoint()), 64),
        ],
        ids=["amend", "cancel", "cancel_all", "withdraw", "checkpoint"],
    )
    def test_every_call_after_a_funding_time_returns_its_outcome(
        self, funded: Exchange, call, expected
    ):
        """Amend, cancel, cancel-all, account calls and checkpoints skip the funding."""
        assert call(funded) == expected
        assert _starts_with_funding(funded)

    def test_close_after_a_funding_time_journals_the_final_hash(self, funded: Exchange):
        """Closing after a funding time journals its checkpoint after the funding."""
        funded.close()
        last = journaled(funded)[-1]
        assert isinstance(last.events[0], FundingPaid)
        assert last.events[-1] == CheckpointTaken(
            seq=last.record.seq, state_hash=funded.state_hash()
        )


@pytest.fixture
def stale_bid() -> Exchange:
    """Issue 7 (C): alice's isolated 10x bid 0.05 @ 60,000 rests; index 54,200."""
    ex = Exchange(FREE, margin=True, clock=ManualClock())
    for account in ("alice", "bob"):
        ex.deposit(account, "10000")
    ex.set_index_price("BTC-PERP", "60000")
    ex.set_margin_mode("alice", "BTC-PERP", "isolated")
    ex.set_leverage("alice", "BTC-PERP", 10)
    ex.place_order("alice", "BTC-PERP", "buy", "limit", "0.05", "60000")
    ex.set_index_price("BTC-PERP", "54200")  # below the long's liquidation price
    return ex


class TestLiquidationInsideACall:
    """Calls whose record makes an account liquidatable report their own order."""

    def test_taker_that_fills_a_stale_bid_gets_its_result(self, stale_bid: Exchange):
        """Bob's sell opens alice's long, which is liquidated at once; bob's filled."""
        result = stale_bid.place_order("bob", "BTC-PERP", "sell", "market", "0.05")
        assert (result.status, result.filled, result.average_price) == (
            "filled",
            D("0.05"),
            D(60000),
        )
        (liquidated,) = (
            e for e in stale_bid.system_events if isinstance(e, PositionLiquidated)
        )
        assert (liquidated.account, liquidated.seq) == ("alice", result.seq + 1)
        assert stale_bid.positions("alice") == []

    def test_order_whose_own_fill_liquidates_its_account_gets_its_result(
        self, stale_bid: Exchange
    ):
        """An order filled whole into a position due at once still reports its fill."""
        stale_bid.cancel_all("alice")
        stale_bid.place_order("bob", "BTC-PERP", "sell", "limit", "0.05", "60000")
        result = stale_bid.place_order(
            "alice", "BTC-PERP", "buy", "limit", "0.05", "60000"
        )
        assert (result.status, result.filled) == ("filled", D("0.05"))
        assert any(isinstance(e, PositionLiquidated) for e in stale_bid.system_events)
        assert stale_bid.positions("alice") == []

    def test_order_resting_when_its_account_is_liquidated_reports_the_cancel(
        self, stale_bid: Exchange
    ):
        """A partly filled order is canceled by its own liquidation in the call."""
        stale_bid.cancel_all("alice")
        stale_bid.place_order("bob", "BTC-PERP", "sell", "limit", "0.05", "60000")
        result = stale_bid.place_order(
            "alice", "BTC-PERP", "buy", "limit", "0.08", "60000"
        )
        assert (result.status, result.filled, result.remaining) == (
            "canceled",
            D("0.05"),
            D(0),
        )
        assert [t.qty for t in result.fills] == [D("0.05")]
        assert stale_bid.positions("alice") == []
        assert stale_bid.open_orders("alice") == []

    def test_the_next_call_no_longer_knows_the_closed_orders(self, stale_bid: Exchange):
        """Views of orders closed in a call are gone one call later."""
        result = stale_bid.place_order("bob", "BTC-PERP", "sell", "market", "0.05")
        stale_bid.deposit("bob", "1")
        with pytest.raises(Rejected) as info:
            stale_bid.cancel_order("bob", result.order_id)
        assert info.value.code is RejectCode.UNKNOWN_ORDER


class TestFacadeState:
    """What the facade holds between calls."""

    def test_system_events_are_empty_before_the_first_command(self):
        """A new exchange has no system events rather than no attribute."""
        assert Exchange(margin=True).system_events == []

    def test_average_price_is_rounded_half_even_to_1e_8(self, ex: Exchange):
        """A repeating average comes back rounded to the exchange's 1e-8 unit."""
        ex.place_order("alice", "BTC-PERP", "sell", "limit", "0.1", "60000")
        ex.place_order("alice", "BTC-PERP", "sell", "limit", "0.05", "60000.2")
        result = ex.place_order("bob", "BTC-PERP", "buy", "market", "0.15")
        assert str(result.average_price) == "60000.06666667"

    def test_existing_journal_is_refused_under_the_exception_root(self, tmp_path):
        """A journal holding records raises a `PaperxError` that is a ValueError."""
        with Exchange(journal=tmp_path / "j", fsync="off") as first:
            first.place_order("alice", "BTC-PERP", "buy", "limit", "1", "100")
        with pytest.raises(JournalNotEmpty) as info:
            Exchange(journal=tmp_path / "j", fsync="off")
        assert isinstance(info.value, PaperxError)
        assert isinstance(info.value, ValueError)


class TestOpenOrderRows:
    """What `open_orders` shows of each order."""

    def test_row_shows_status_quantities_flags_and_no_trigger(self, ex: Exchange):
        """A partly filled plain limit shows its status, fill, flags, no trigger."""
        placed = ex.place_order(
            "alice", "BTC-PERP", "sell", "limit", "1", "100", post_only=True
        )
        ex.place_order("bob", "BTC-PERP", "buy", "limit", "0.4", "100")
        (row,) = ex.open_orders("alice")
        assert row == {
            "order_id": placed.order_id,
            "client_order_id": "",
            "symbol": "BTC-PERP",
            "side": "sell",
            "type": "limit",
            "status": "partially_filled",
            "price": D(100),
            "qty": D(1),
            "filled": D("0.4"),
            "remaining": D("0.6"),
            "tif": "GTC",
            "post_only": True,
            "reduce_only": False,
            "trigger_price": None,
            "trigger_by": None,
            "triggered": None,
        }

    def test_fired_stop_limit_resting_is_triggered(self, ex: Exchange):
        """A stop-limit that fired and rests is listed as triggered."""
        ex.place_order("bob", "BTC-PERP", "sell", "limit", "1", "100")
        ex.place_order("carol", "BTC-PERP", "buy", "limit", "1", "100")  # last 100
        stop = ex.place_order(
            "alice",
            "BTC-PERP",
            "sell",
            "stop_limit",
            "1",
            "150",
            trigger_price="99",
        )
        ex.place_order("bob", "BTC-PERP", "sell", "limit", "1", "99")
        ex.place_order("carol", "BTC-PERP", "buy", "limit", "1", "99")  # last 99
        (row,) = ex.open_orders("alice")
        assert (row["order_id"], row["triggered"], row["trigger_by"]) == (
            stop.order_id,
            True,
            "last",
        )

    def test_untriggered_mark_price_stop_is_not_triggered(self):
        """A stop on the mark price waiting for its trigger is not triggered."""
        ex = Exchange(FREE, margin=True, clock=ManualClock())
        ex.deposit("bob", "10000")
        ex.set_index_price("BTC-PERP", "60000")
        ex.place_order(
            "bob",
            "BTC-PERP",
            "buy",
            "stop_market",
            "0.01",
            trigger_price="70000",
            trigger_by="mark",
        )
        (row,) = ex.open_orders("bob")
        assert (row["trigger_price"], row["trigger_by"], row["triggered"]) == (
            D(70000),
            "mark",
            False,
        )


class TestTypedRejects:
    """Rejects raise the ccxt-named family of their code."""

    @pytest.mark.parametrize("code", list(RejectCode), ids=lambda c: c.name)
    def test_every_code_builds_its_family_class(self, code: RejectCode):
        """`Rejected(code, ...)` is an instance of the code's family and of Rejected."""
        error = Rejected(code, "why", 7)
        assert type(error) is REJECT_CLASSES[code]
        assert isinstance(error, Rejected)
        assert (error.code, error.reason, error.seq) == (code, "why", 7)

    def test_table_covers_every_code_with_an_exported_class(self):
        """Every reject code has a family, and every family is exported by name."""
        assert set(REJECT_CLASSES) == set(RejectCode)
        for family in set(REJECT_CLASSES.values()):
            assert getattr(paperx, family.__name__) is family

    @pytest.mark.parametrize(
        ("call", "family"),
        [
            (
                lambda ex: ex.place_order(
                    "alice", "BTC-PERP", "buy", "limit", "100", "60000"
                ),
                paperx.InsufficientFunds,
            ),
            (lambda ex: ex.withdraw("alice", "20000"), paperx.InsufficientFunds),
            (lambda ex: ex.cancel_order("alice", 99), paperx.OrderNotFound),
            (lambda ex: ex.set_index_price("DOGE-PERP", "1"), paperx.BadSymbol),
            (
                lambda ex: ex.place_order(
                    "alice", "BTC-PERP", "buy", "limit", "1", "1.05"
                ),
                paperx.InvalidOrder,
            ),
            (
                lambda ex: ex.place_order(
                    "alice", "BTC-PERP", "buy", "limit", "0.1", "100", tif="FOK"
                ),
                paperx.OrderNotFillable,
            ),
            (
                lambda ex: ex.place_order(
                    "alice",
                    "BTC-PERP",
                    "buy",
                    "limit",
                    "0.001",
                    "70000",
                    post_only=True,
                ),
                paperx.OrderImmediatelyFillable,
            ),
            (lambda ex: ex.set_leverage("alice", "BTC-PERP", 1000), paperx.BadRequest),
            (
                lambda ex: ex.place_order("alice", "BTC", "buy", "market", 1),
                paperx.BadSymbol,
            ),
        ],
        ids=[
            "margin",
            "withdraw",
            "unknown-order",
            "symbol",
            "off-tick",
            "fok",
            "post-only",
            "leverage",
            "order-symbol",
        ],
    )
    def test_facade_raises_the_family_of_the_code(self, call, family):
        """A refused call raises its family, caught by that name and by Rejected."""
        ex = Exchange(FREE, margin=True, clock=ManualClock())
        ex.deposit("alice", "10000")
        ex.deposit("bob", "10000")
        ex.set_index_price("BTC-PERP", "60000")
        ex.place_order("bob", "BTC-PERP", "sell", "limit", "0.01", "60000")
        with pytest.raises(family) as info:
            call(ex)
        assert type(info.value) is REJECT_CLASSES[info.value.code]

    def test_duplicate_client_order_id_is_caught_as_duplicate_order_id(
        self, ex: Exchange
    ):
        """A second open order with the same client id raises DuplicateOrderId."""
        ex.place_order("a", "BTC-PERP", "buy", "limit", "1", "100", client_order_id="c")
        with pytest.raises(paperx.DuplicateOrderId):
            ex.place_order(
                "a", "BTC-PERP", "buy", "limit", "1", "99", client_order_id="c"
            )

    @pytest.mark.parametrize("name", ["ConfigError", "Precision"])
    def test_value_errors_sit_under_the_exception_root(self, name: str):
        """ConfigError and Precision are `PaperxError`s and still `ValueError`s."""
        cls = getattr(paperx, name)
        assert issubclass(cls, PaperxError)
        assert issubclass(cls, ValueError)
