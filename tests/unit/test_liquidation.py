"""Liquidation: detection, the order through the book, the insurance fund and ADL.

Most tests go through the public `Exchange` (its ``submit`` runs the
`Liquidate` system command right after the record that asked for it, so its
events are in ``ex.system_events``); the tests of a liquidation that no longer
applies drive `ExchangeCore` directly, to slip a record in between the
`MarginCall` and its `Liquidate`. Marks are pinned to the index.

The standard position: alice, isolated at 10x, long 0.5 BTC at 60,000 (bucket
3,000; liquidation price 54,216.87; bankruptcy price 54,000), bought from bob.
"""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import TYPE_CHECKING

import msgspec
import pytest
from margin_helpers import FEED, FREE, exchange, money_sides, position, trade

from exchange.core import ExchangeCore
from exchange.journal.payload import Journaled, journaled_events
from exchange.messages import (
    AdvanceTime,
    BalanceChanged,
    Command,
    Deposit,
    Event,
    InsuranceFundChanged,
    Liquidate,
    LiquidationSkipped,
    MarginCall,
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    PlaceOrder,
    PositionChanged,
    PositionDeleveraged,
    PositionLiquidated,
    Record,
    SetIndexPrice,
    SetLeverage,
    SetMarginMode,
)
from exchange.units import SCALE, to_e8

if TYPE_CHECKING:
    from exchange import Exchange

D = Decimal
BTC, ETH = "BTC-PERP", "ETH-PERP"
LP_E8 = to_e8("54216.86746988")  # alice's liquidation price (rounded up, a long)
BANKRUPT_TICKS = 540_000  # 54,000.0 on BTC's 0.1 grid


def _of(kind: type, events: list[Event]) -> list:
    """Return the events of one type, in order."""
    return [e for e in events if isinstance(e, kind)]


def _venue(markets: tuple = FREE, *, mode: str = "isolated", wallet: str = "10000"):
    """Return an exchange where alice is long 0.5 BTC at 60,000 at 10x in ``mode``."""
    ex = exchange(markets)
    ex.deposit("alice", wallet)
    for rich in ("bob", "lp", "carol", "dave"):
        ex.deposit(rich, 1_000_000)
    ex.set_index_price(BTC, 60_000)
    ex.set_index_price(ETH, 3_000)
    ex.set_margin_mode("alice", BTC, mode)
    ex.set_leverage("alice", BTC, 10)
    trade(ex, "alice", "bob", BTC, "0.5", "60000")
    return ex


def _index(ex: Exchange, symbol: str, price: str) -> tuple[int, list[Event]]:
    """Feed an index price through `submit`; return its seq and events."""
    return ex.submit(SetIndexPrice(symbol=symbol, price=to_e8(price)))


def _fund_moves(events: list[Event]) -> list[tuple[int, str]]:
    """Return (amount E8, reason) of every insurance fund change."""
    return [(e.amount, e.reason) for e in _of(InsuranceFundChanged, events)]


def _balanced(ex: Exchange) -> bool:
    """Return True if the money identity holds and every symbol nets to zero."""
    ledger = ex.core.ledger
    deposits, held = money_sides(ledger)
    sizes: dict[str, int] = {}
    for account in ledger.accounts.values():
        for symbol, p in account.positions.items():
            sizes[symbol] = sizes.get(symbol, 0) + p.size
    return deposits == held and not any(sizes.values())


class TestTrigger:
    """When a margin call comes, and when the liquidation follows."""

    def test_mark_one_unit_above_the_shown_price_calls_margin_at_once(self):
        """At 54,216.86746989 the margin balance equals MM: the call comes at once.

        The price shown rounds the formula; the ledger's rounding makes the
        next E8 mark due as well, and the index now knows it (before, only a
        later unrelated record to alice found the call due).
        """
        ex = _venue()
        assert position(ex, "alice", BTC)["liquidation_price"] == D("54216.86746988")
        _, events = ex.submit(SetIndexPrice(symbol=BTC, price=LP_E8 + 1))
        (call,) = _of(MarginCall, events)
        assert call.margin_balance == call.maintenance_margin

    def test_mark_two_units_above_the_shown_price_calls_no_margin(self):
        """At 54,216.86746990 the position is safe, and a deposit keeps it so."""
        ex = _venue()
        _, events = ex.submit(SetIndexPrice(symbol=BTC, price=LP_E8 + 2))
        assert _of(MarginCall, events) == []
        _, events = ex.submit(Deposit(account="alice", amount=1))
        assert _of(MarginCall, events) == []
        assert ex.system_events == []
        assert position(ex, "alice", BTC)["contracts"] == D("0.5")

    def test_mark_at_the_liquidation_price_calls_margin_then_liquidates_next(self):
        """At the liquidation price: a MarginCall, then the next record liquidates."""
        ex = _venue()
        ex.place_order("lp", BTC, "buy", "limit", "1", "54000")
        seq, events = ex.submit(SetIndexPrice(symbol=BTC, price=LP_E8))
        (call,) = _of(MarginCall, events)
        assert (call.seq, call.account, call.symbol) == (seq, "alice", BTC)
        assert call.margin_balance <= call.maintenance_margin
        assert _of(PositionLiquidated, events) == []
        (done,) = _of(PositionLiquidated, ex.system_events)
        assert done.seq == seq + 1
        assert {e.seq for e in ex.system_events} == {seq + 1}
        assert ex.positions("alice") == []

    def test_the_liquidate_record_follows_its_margin_call_in_the_journal(self):
        """The journal holds the Liquidate system command as the very next record."""
        ex = _venue()
        ex.place_order("lp", BTC, "buy", "limit", "1", "54000")
        seq, _ = _index(ex, BTC, "54200")
        entries = [
            msgspec.msgpack.decode(raw, type=Journaled) for _, raw in ex.journal.read()
        ]
        by_seq = {e.record.seq: e for e in entries}
        assert by_seq[seq + 1].record.command == Liquidate(account="alice", symbol=BTC)
        assert by_seq[seq + 1].events == journaled_events(ex.system_events)

    def test_a_mark_below_the_liquidation_price_liquidates(self):
        """A mark well past the liquidation price liquidates as well."""
        ex = _venue()
        ex.place_order("lp", BTC, "buy", "limit", "1", "54000")
        _, events = _index(ex, BTC, "50000")
        assert len(_of(MarginCall, events)) == 1
        assert len(_of(PositionLiquidated, ex.system_events)) == 1

    def test_cross_account_is_called_as_a_whole_with_an_empty_symbol(self):
        """A cross margin call names the account and symbol "" (all its cross)."""
        ex = _venue(mode="cross", wallet="3100")
        ex.place_order("lp", BTC, "buy", "limit", "1", "53800")
        _, events = _index(ex, BTC, "54000")
        (call,) = _of(MarginCall, events)
        assert (call.account, call.symbol) == ("alice", "")
        (done,) = _of(PositionLiquidated, ex.system_events)
        assert (done.mode, done.symbol, done.bankruptcy_price) == (
            "cross",
            BTC,
            538_000,
        )


class TestThroughTheBook:
    """The liquidation order is an ordinary order that a counterparty fills."""

    def test_counterparty_bid_is_filled_with_the_liquidated_account_as_taker(self):
        """The lp's bid fills by an OrderFilled whose taker is alice's IOC order."""
        ex = _venue(FEED)
        bid = ex.place_order("lp", BTC, "buy", "limit", "1", "54000")
        _index(ex, BTC, "54200")
        (accepted,) = _of(OrderAccepted, ex.system_events)
        assert accepted.liquidation
        assert (accepted.account, accepted.side, accepted.tif) == (
            "alice",
            "sell",
            "IOC",
        )
        assert accepted.reduce_only
        assert (accepted.qty, accepted.price) == (500, BANKRUPT_TICKS)
        (fill,) = _of(OrderFilled, ex.system_events)
        assert (fill.taker_account, fill.taker_order_id) == ("alice", accepted.order_id)
        assert (fill.maker_account, fill.maker_order_id) == ("lp", bid.order_id)
        assert (fill.price, fill.qty, fill.taker_side) == (BANKRUPT_TICKS, 500, "sell")
        assert position(ex, "lp", BTC)["contracts"] == D("0.5")
        (rest,) = ex.open_orders("lp")
        assert (rest["order_id"], rest["remaining"]) == (bid.order_id, D("0.5"))

    def test_liquidation_order_pays_no_taker_fee_and_the_maker_its_maker_fee(self):
        """The taker fee is 0; the lp pays 0.02% of 27,000 = 5.4 like any maker."""
        ex = _venue(FEED)
        ex.place_order("lp", BTC, "buy", "limit", "1", "54000")
        fees_before = ex.fees_collected()
        lp_before = ex.balance("lp")["wallet"]
        _index(ex, BTC, "54200")
        (fill,) = _of(OrderFilled, ex.system_events)
        assert (fill.taker_fee, fill.maker_fee) == (0, to_e8("5.4"))
        assert ex.fees_collected() - fees_before == D("5.4")
        assert lp_before - ex.balance("lp")["wallet"] == D("5.4")
        (change,) = [
            e for e in _of(PositionChanged, ex.system_events) if e.account == "alice"
        ]
        assert change.fee == 0

    def test_order_fills_at_the_better_bid_not_at_the_bankruptcy_price(self):
        """A bid above the bankruptcy price fills at the bid (the maker's price)."""
        ex = _venue()
        ex.place_order("lp", BTC, "buy", "limit", "1", "55000")
        _index(ex, BTC, "54200")
        (fill,) = _of(OrderFilled, ex.system_events)
        assert fill.price == 550_000
        (done,) = _of(PositionLiquidated, ex.system_events)
        assert (done.filled, done.deleveraged, done.bankruptcy_price) == (
            500,
            0,
            BANKRUPT_TICKS,
        )

    def test_bids_below_the_bankruptcy_price_are_not_taken(self):
        """The IOC stops at the bankruptcy price: a lower bid is left resting."""
        ex = _venue()
        ex.place_order("lp", BTC, "buy", "limit", "1", "53000")
        ex.place_order("carol", BTC, "sell", "limit", "0.2", "70000")  # carol: no short
        _index(ex, BTC, "54200")
        assert _of(OrderFilled, ex.system_events) == []
        (expired,) = _of(OrderExpired, ex.system_events)
        assert (expired.account, expired.qty, expired.reason) == ("alice", 500, "ioc")
        assert ex.order_book(BTC)["bids"] == [(D(53000), D(1))]


class TestOrdersCanceledFirst:
    """Orders that hold margin leave the book before the liquidation order."""

    def test_isolated_liquidation_cancels_only_that_symbols_orders(self):
        """Alice's BTC orders go with reason "liquidation"; her ETH order stays."""
        ex = _venue()
        ex.place_order("lp", BTC, "buy", "limit", "1", "54000")
        btc = ex.place_order("alice", BTC, "sell", "limit", "0.1", "70000")
        btc_buy = ex.place_order("alice", BTC, "buy", "limit", "0.1", "50000")
        eth = ex.place_order("alice", ETH, "buy", "limit", "1", "2000")
        _index(ex, BTC, "54200")
        canceled = _of(OrderCanceled, ex.system_events)
        assert [(c.order_id, c.reason) for c in canceled] == [
            (btc.order_id, "liquidation"),
            (btc_buy.order_id, "liquidation"),
        ]
        assert [o["order_id"] for o in ex.open_orders("alice")] == [eth.order_id]
        # the cancels come before the liquidation order
        kinds = [type(e) for e in ex.system_events]
        assert kinds.index(OrderCanceled) < kinds.index(OrderAccepted)
        account = ex.core.ledger.accounts["alice"]
        assert account.order_margin == ex.core.index[eth.order_id].reserved > 0

    def test_cross_liquidation_cancels_every_cross_order_of_the_account(self):
        """A cross liquidation cancels alice's BTC and ETH (cross) orders alike."""
        ex = _venue(mode="cross", wallet="3200")
        ex.set_leverage("alice", ETH, 20)  # ETH is a cross symbol of alice's
        ex.place_order("lp", BTC, "buy", "limit", "1", "53000")
        btc = ex.place_order("alice", BTC, "sell", "limit", "0.1", "70000")
        eth = ex.place_order("alice", ETH, "buy", "limit", "0.1", "2000")
        _index(ex, BTC, "53500")
        canceled = _of(OrderCanceled, ex.system_events)
        assert sorted((c.order_id, c.reason) for c in canceled) == [
            (btc.order_id, "liquidation"),
            (eth.order_id, "liquidation"),
        ]
        assert ex.open_orders("alice") == []
        assert ex.core.ledger.accounts["alice"].order_margin == 0

    def test_cross_liquidation_cancels_an_order_in_a_never_configured_symbol(self):
        """An ETH order of a cross account that never set ETH up is canceled too.

        ETH is cross by default, and the order holds cross margin; left open,
        it would rest on a wallet the liquidation emptied.
        """
        ex = _venue(mode="cross", wallet="3100")
        ex.place_order("lp", BTC, "buy", "limit", "1", "53800")
        eth = ex.place_order("alice", ETH, "buy", "limit", "0.1", "2000")
        _index(ex, BTC, "54000")
        assert _of(PositionLiquidated, ex.system_events)
        canceled = [
            (c.order_id, c.reason) for c in _of(OrderCanceled, ex.system_events)
        ]
        assert canceled == [(eth.order_id, "liquidation")]
        assert ex.open_orders("alice") == []
        assert ex.core.ledger.accounts["alice"].order_margin == 0

    def test_cross_liquidation_takes_the_cash_under_isolated_orders(self):
        """An isolated ETH bid outlives the cross liquidation, not the wallet it took.

        The liquidation itself cancels only cross orders; it then takes the
        cross wallet, which held the bid's margin, so the bid is canceled for
        margin (it would otherwise open a position with an empty bucket).
        """
        ex = _venue(mode="cross", wallet="3500")
        ex.set_margin_mode("alice", ETH, "isolated")
        ex.place_order("lp", BTC, "buy", "limit", "1", "53000")
        eth = ex.place_order("alice", ETH, "buy", "limit", "0.1", "2000")
        _index(ex, BTC, "53200")
        assert _of(PositionLiquidated, ex.system_events)
        canceled = [
            (c.order_id, c.reason) for c in _of(OrderCanceled, ex.system_events)
        ]
        assert canceled == [(eth.order_id, "margin")]
        account = ex.core.ledger.accounts["alice"]
        assert account.order_margin == 0
        assert ex.open_orders("alice") == []


def _sided_venue(mode: str, side: str) -> Exchange:
    """Return an exchange where alice holds 0.5 BTC at 60,000 at 10x, as given."""
    ex = exchange(FREE)
    ex.deposit("alice", "10000")
    ex.deposit("bob", 1_000_000)
    ex.set_index_price(BTC, 60_000)
    ex.set_margin_mode("alice", BTC, mode)
    ex.set_leverage("alice", BTC, 10)
    buyer, seller = ("alice", "bob") if side == "long" else ("bob", "alice")
    trade(ex, buyer, seller, BTC, "0.5", "60000")
    return ex


def _exactly_due(ex: Exchange, mark: int) -> bool:
    """Return the margin rule for alice's BTC at ``mark``: balance <= MM, as rounded."""
    ledger = ex.core.ledger
    account = ledger.accounts["alice"]
    p = account.positions[BTC]
    lot = ledger.markets[BTC].lot_size
    wallet = p.margin if p.mode == "isolated" else account.wallet
    balance = wallet + p.size * lot * mark // SCALE - p.cost
    mm = ledger.markets[BTC].tiers.maintenance_margin(abs(p.size) * lot * mark // SCALE)
    return balance <= mm


def _exact_edge(ex: Exchange, side: str) -> int:
    """Return the last mark (E8) at which alice's BTC is due, by the rule alone.

    A long is due at and below it, a short at and above it; the search walks
    from the formula's liquidation price, apart from the liquidation index.
    """
    (held,) = ex.positions("alice")
    mark = int(Decimal(held["liquidation_price"]) * SCALE)
    step = -1 if side == "long" else 1  # toward the side where it is due
    while not _exactly_due(ex, mark):
        mark += step
    while _exactly_due(ex, mark - step):
        mark -= step
    return mark


class TestBoundary:
    """The margin call comes exactly where the rule is due, whatever came before."""

    @pytest.mark.parametrize("mode", ["isolated", "cross"])
    @pytest.mark.parametrize("side", ["long", "short"])
    @pytest.mark.parametrize("before", [None, "60500", "57000", "63000"])
    def test_the_call_comes_exactly_where_the_rule_says_it_is_due(
        self, mode, side, before
    ):
        """Around the edge, a mark calls margin at once iff balance <= MM there.

        At each mark from 3e-8 inside to 3e-8 outside the exact edge (found
        from the rule, not read from the index), on a fresh exchange whose
        mark first went to ``before`` (so the index was built at another
        mark): the index record calls margin exactly when the rule is due,
        and where it is not, a later 1e-8 deposit (which only adds margin)
        calls none either, so the outcome never hangs on what record comes
        next.
        """
        edge = _exact_edge(_sided_venue(mode, side), side)
        for mark in range(edge - 3, edge + 4):
            ex = _sided_venue(mode, side)
            if before is not None:
                _index(ex, BTC, before)
            due = _exactly_due(ex, mark)
            assert due == ((mark <= edge) if side == "long" else (mark >= edge))
            _, events = ex.submit(SetIndexPrice(symbol=BTC, price=mark))
            assert bool(_of(MarginCall, events)) == due, mark
            if not due:
                _, events = ex.submit(Deposit(account="alice", amount=1))
                assert _of(MarginCall, events) == [], mark


class TestInsuranceFund:
    """Clearance fee and surplus go to the fund; a bucket is never overdrawn."""

    def test_fill_above_bankruptcy_leaves_fee_and_surplus_to_the_fund(self):
        """At 55,000 the bucket keeps 500: fee 0.5% x 27,000 = 135, surplus 365."""
        ex = _venue()
        ex.place_order("lp", BTC, "buy", "limit", "1", "55000")
        _index(ex, BTC, "54200")
        assert _fund_moves(ex.system_events) == [
            (to_e8("135"), "liquidation_fee"),
            (to_e8("365"), "liquidation_surplus"),
        ]
        funded = _of(InsuranceFundChanged, ex.system_events)
        assert [(f.account, f.balance) for f in funded] == [
            ("alice", to_e8("135")),
            ("alice", to_e8("500")),
        ]
        (done,) = _of(PositionLiquidated, ex.system_events)
        assert (done.fee, done.surplus) == (to_e8("135"), to_e8("365"))
        assert ex.insurance_fund() == D(500)
        assert _balanced(ex)

    def test_isolated_liquidation_leaves_the_wallet_outside_the_bucket_unchanged(self):
        """Alice keeps exactly the 7,000 outside her 3,000 bucket."""
        ex = _venue()
        ex.place_order("lp", BTC, "buy", "limit", "1", "55000")
        assert ex.balance("alice")["wallet"] == D(10000)  # 7,000 + the 3,000 bucket
        _index(ex, BTC, "54200")
        assert ex.positions("alice") == []
        assert ex.balance("alice") == {
            "wallet": D(7000),
            "free": D(7000),
            "used": D(0),
            "total": D(7000),
        }

    def test_clearance_fee_is_capped_at_what_the_bucket_has_left(self):
        """At 54,100 only 50 is left: the fee takes all 50 and there is no surplus."""
        ex = _venue()
        ex.place_order("lp", BTC, "buy", "limit", "1", "54100")
        _index(ex, BTC, "54200")
        assert _fund_moves(ex.system_events) == [(to_e8("50"), "liquidation_fee")]
        (done,) = _of(PositionLiquidated, ex.system_events)
        assert (done.fee, done.surplus) == (to_e8("50"), 0)
        assert ex.insurance_fund() == D(50)
        assert ex.balance("alice")["wallet"] == D(7000)

    def test_fill_at_the_bankruptcy_price_moves_nothing_to_the_fund(self):
        """A fill exactly at the bankruptcy price uses up the bucket: no fee is left."""
        ex = _venue()
        ex.place_order("lp", BTC, "buy", "limit", "1", "54000")
        _index(ex, BTC, "54200")
        assert _fund_moves(ex.system_events) == []
        assert ex.insurance_fund() == 0
        assert ex.balance("alice")["wallet"] == D(7000)

    def test_cross_liquidation_takes_what_is_left_of_the_cross_wallet(self):
        """Cross at 55,000 leaves 600: fee 0.5% x 26,900 = 134.5, surplus 465.5."""
        ex = _venue(mode="cross", wallet="3100")
        ex.place_order("lp", BTC, "buy", "limit", "1", "55000")
        _index(ex, BTC, "54000")
        assert _fund_moves(ex.system_events) == [
            (to_e8("134.5"), "liquidation_fee"),
            (to_e8("465.5"), "liquidation_surplus"),
        ]
        assert ex.balance("alice")["wallet"] == 0
        assert ex.insurance_fund() == D(600)
        assert _balanced(ex)

    def test_partial_book_fill_then_adl_leaves_no_bad_debt(self):
        """0.3 sold at 56,000 and 0.2 deleveraged at 54,000 lose 2,400 of the 3,000.

        The bucket covers both parts, so nothing is short: no bad debt, and the
        fund gets the 600 left (fee 0.5% x 27,000 = 135, surplus 465).
        """
        ex = _venue()
        ex.place_order("lp", BTC, "buy", "limit", "0.3", "56000")
        _index(ex, BTC, "54200")
        (done,) = _of(PositionLiquidated, ex.system_events)
        assert (done.filled, done.deleveraged) == (300, 200)
        ledger = ex.core.ledger
        assert ledger.settlement.bad_debt == 0
        assert [r for _, r in _fund_moves(ex.system_events)] == [
            "liquidation_fee",
            "liquidation_surplus",
        ]
        assert (done.fee, done.surplus) == (to_e8("135"), to_e8("465"))
        assert ex.insurance_fund() == D(600)
        assert ex.balance("alice")["wallet"] == D(7000)

    def test_two_makers_at_the_bankruptcy_price_leave_no_bad_debt(self):
        """Two bids of 0.25 at 54,000 close the position exactly on the bucket.

        Each fill closes half at the bankruptcy price, which together use up
        the 3,000 bucket: nothing is short and nothing is left for the fund.
        """
        ex = _venue()
        ex.place_order("lp", BTC, "buy", "limit", "0.25", "54000")
        ex.place_order("carol", BTC, "buy", "limit", "0.25", "54000")
        _index(ex, BTC, "54200")
        (done,) = _of(PositionLiquidated, ex.system_events)
        assert done.filled == 500
        assert ex.core.ledger.settlement.bad_debt == 0
        assert ex.insurance_fund() == 0
        assert _fund_moves(ex.system_events) == []
        assert ex.balance("alice")["wallet"] == D(7000)

    def test_fund_grows_over_two_liquidations(self):
        """Two liquidations each add their fee and surplus to the same fund."""
        ex = _venue()
        ex.deposit("erin", 10_000)
        ex.set_margin_mode("erin", BTC, "isolated")
        ex.set_leverage("erin", BTC, 10)
        trade(ex, "erin", "bob", BTC, "0.5", "60000")
        ex.place_order("lp", BTC, "buy", "limit", "1", "55000")
        _index(ex, BTC, "54200")
        liquidated = _of(PositionLiquidated, ex.system_events)
        assert sorted(d.account for d in liquidated) == ["alice", "erin"]
        assert ex.insurance_fund() == D(1000)
        assert ex.balance("alice")["wallet"] == ex.balance("erin")["wallet"] == D(7000)


@pytest.fixture
def shorts() -> Exchange:
    """Alice long 0.5 (isolated 10x); carol short 0.3 on a thin wallet, bob 0.4.

    dave is long 0.2 beside alice, so that the shorts outnumber her.
    """
    ex = exchange(FREE)
    ex.deposit("alice", 10_000)
    ex.deposit("carol", 2_000)
    for rich in ("bob", "dave"):
        ex.deposit(rich, 100_000)
    ex.set_index_price(BTC, 60_000)
    ex.set_margin_mode("alice", BTC, "isolated")
    ex.set_leverage("alice", BTC, 10)
    trade(ex, "alice", "bob", BTC, "0.2", "60000")
    trade(ex, "alice", "carol", BTC, "0.3", "60000")
    trade(ex, "dave", "bob", BTC, "0.2", "60000")
    return ex


class TestAutoDeleveraging:
    """What the book cannot absorb is closed against opposing positions."""

    def test_without_bids_the_position_is_closed_against_the_shorts(self, shorts):
        """No bids: the IOC expires and ADL closes alice's 0.5 at 54,000."""
        _index(shorts, BTC, "54200")
        events = shorts.system_events
        (expired,) = _of(OrderExpired, events)
        assert (expired.account, expired.qty) == ("alice", 500)
        (done,) = _of(PositionLiquidated, events)
        assert (done.filled, done.deleveraged, done.bankruptcy_price) == (
            0,
            500,
            BANKRUPT_TICKS,
        )
        assert shorts.positions("alice") == []
        assert _balanced(shorts)

    def test_the_more_leveraged_opponent_is_deleveraged_first(self, shorts):
        """Carol (thin wallet) goes before bob at the same profit; both get notices."""
        _index(shorts, BTC, "54200")
        notices = _of(PositionDeleveraged, shorts.system_events)
        assert [(n.account, n.counterparty, n.qty, n.price) for n in notices] == [
            ("carol", "alice", 300, BANKRUPT_TICKS),
            ("bob", "alice", 200, BANKRUPT_TICKS),
        ]
        assert [p["symbol"] for p in shorts.positions("carol")] == []
        assert position(shorts, "bob", BTC)["contracts"] == D("0.2")
        assert position(shorts, "dave", BTC)["contracts"] == D("0.2")

    def test_deleveraging_against_two_opponents_leaves_no_bad_debt(self, shorts):
        """Closing 0.3 + 0.2 at the bankruptcy price uses exactly the 3,000 bucket."""
        _index(shorts, BTC, "54200")
        assert len(_of(PositionDeleveraged, shorts.system_events)) == 2
        assert shorts.core.ledger.settlement.bad_debt == 0
        assert _fund_moves(shorts.system_events) == []
        assert shorts.insurance_fund() == 0

    def test_the_more_profitable_opponent_is_deleveraged_first(self):
        """Carol short from 61,000 outranks bob short from 60,000 on equal wallets."""
        ex = exchange(FREE)
        for account in ("alice", "bob", "carol", "dave"):
            ex.deposit(account, 10_000)
        ex.set_index_price(BTC, 60_000)
        ex.set_margin_mode("alice", BTC, "isolated")
        ex.set_leverage("alice", BTC, 10)
        trade(ex, "dave", "carol", BTC, "0.5", "61000")
        trade(ex, "alice", "bob", BTC, "0.5", "60000")
        _index(ex, BTC, "54200")
        notices = _of(PositionDeleveraged, ex.system_events)
        assert [(n.account, n.qty) for n in notices] == [("carol", 500)]
        assert ex.positions("carol") == []
        assert position(ex, "bob", BTC)["contracts"] == D("0.5")
        assert _balanced(ex)

    def test_deleveraging_charges_no_fee(self):
        """ADL fills at the bankruptcy price with no fee, even on a fee market."""
        ex = exchange(FEED)
        for account in ("alice", "bob"):
            ex.deposit(account, 10_000)
        ex.set_index_price(BTC, 60_000)
        ex.set_margin_mode("alice", BTC, "isolated")
        ex.set_leverage("alice", BTC, 10)
        trade(ex, "alice", "bob", BTC, "0.5", "60000")
        fees = ex.fees_collected()
        bob_wallet = ex.balance("bob")["wallet"]
        _index(ex, BTC, "54200")
        assert ex.fees_collected() == fees
        changes = _of(PositionChanged, ex.system_events)
        assert {c.fee for c in changes} == {0}
        # bob realizes (60,000 - 54,000) x 0.5 = 3,000 and pays nothing for it
        assert ex.balance("bob")["wallet"] - bob_wallet == D(3000)
        assert ex.positions("bob") == []

    def test_deleveraged_counterparties_realize_at_the_bankruptcy_price(self, shorts):
        """Carol realizes 6,000 x 0.3 = 1,800 and bob 6,000 x 0.2 = 1,200."""
        carol, bob = shorts.balance("carol")["wallet"], shorts.balance("bob")["wallet"]
        _index(shorts, BTC, "54200")
        assert shorts.balance("carol")["wallet"] - carol == D(1800)
        assert shorts.balance("bob")["wallet"] - bob == D(1200)
        assert position(shorts, "bob", BTC)["entry_price"] == D(60000)

    def test_a_partly_absorbed_order_deleverages_only_the_rest(self, shorts):
        """A 0.1 bid takes 0.1; ADL closes the other 0.4, carol first."""
        shorts.place_order("bob", BTC, "buy", "limit", "0.1", "54500")
        _index(shorts, BTC, "54200")
        (done,) = _of(PositionLiquidated, shorts.system_events)
        assert (done.filled, done.deleveraged) == (100, 400)
        notices = _of(PositionDeleveraged, shorts.system_events)
        assert [(n.account, n.qty) for n in notices] == [("carol", 300), ("bob", 100)]
        assert _balanced(shorts)

    def test_cross_position_without_bids_is_deleveraged(self):
        """A cross long with no bids below is closed against bob's short by ADL."""
        ex = _venue(mode="cross", wallet="3100")
        _index(ex, BTC, "54000")
        (done,) = _of(PositionLiquidated, ex.system_events)
        assert (done.mode, done.deleveraged, done.bankruptcy_price) == (
            "cross",
            500,
            538_000,
        )
        (notice,) = _of(PositionDeleveraged, ex.system_events)
        assert (notice.account, notice.qty, notice.price) == ("bob", 500, 538_000)
        assert ex.positions("bob") == []
        assert ex.balance("alice")["wallet"] == 0
        assert _balanced(ex)


def _core() -> tuple[ExchangeCore, callable]:
    """Return a margin core over the fee-less markets and a ``run(command)``."""
    core = ExchangeCore(FREE, margin=True)
    seqs = itertools.count(1)

    def run(command: Command) -> list[Event]:
        return core.handle(Record(next(seqs), 1_000, command))

    return core, run


def _core_with_long(mode: str, wallet: int = 10_000) -> tuple[ExchangeCore, callable]:
    """Return a core where alice is long 0.5 BTC at 60,000 (10x, ``mode``)."""
    core, run = _core()
    for account, amount in (("alice", wallet), ("bob", 1_000_000)):
        run(Deposit(account=account, amount=amount * SCALE))
    run(SetIndexPrice(symbol=BTC, price=60_000 * SCALE))
    run(SetMarginMode(account="alice", symbol=BTC, mode=mode))
    run(SetLeverage(account="alice", symbol=BTC, leverage=10))
    half = SCALE // 2
    run(
        PlaceOrder(
            account="bob",
            symbol=BTC,
            side="sell",
            type="limit",
            qty=half,
            price=60_000 * SCALE,
        )
    )
    run(
        PlaceOrder(
            account="alice",
            symbol=BTC,
            side="buy",
            type="limit",
            qty=half,
            price=60_000 * SCALE,
            tif="IOC",
        )
    )
    assert core.ledger.accounts["alice"].positions[BTC].size == 500
    return core, run


class TestLiquidationSkipped:
    """A Liquidate record that finds the position recovered or gone does nothing."""

    def test_isolated_position_recovered_by_an_index_move_back_is_skipped(self):
        """The mark returns to 60,000 before the Liquidate: skipped as "recovered"."""
        core, run = _core_with_long("isolated")
        events = run(SetIndexPrice(symbol=BTC, price=54_200 * SCALE))
        assert len(_of(MarginCall, events)) == 1
        pending = core.take_system_commands()
        assert pending == [Liquidate(account="alice", symbol=BTC)]
        assert core.take_system_commands() == []
        run(SetIndexPrice(symbol=BTC, price=60_000 * SCALE))
        before = core.ledger.accounts["alice"].positions[BTC].row()
        events = run(pending[0])
        assert events == [
            LiquidationSkipped(
                seq=core.last_seq, account="alice", symbol=BTC, reason="recovered"
            )
        ]
        assert core.ledger.accounts["alice"].positions[BTC].row() == before

    def test_cross_account_recovered_by_a_deposit_is_skipped(self):
        """A deposit between the MarginCall and the Liquidate saves a cross account."""
        core, run = _core_with_long("cross", wallet=3_100)
        events = run(SetIndexPrice(symbol=BTC, price=54_000 * SCALE))
        (call,) = _of(MarginCall, events)
        assert call.symbol == ""
        (pending,) = core.take_system_commands()
        run(Deposit(account="alice", amount=5_000 * SCALE))
        events = run(pending)
        assert events == [
            LiquidationSkipped(
                seq=core.last_seq, account="alice", symbol="", reason="recovered"
            )
        ]
        assert core.ledger.accounts["alice"].positions[BTC].size == 500
        assert core.ledger.accounts["alice"].wallet == 8_100 * SCALE

    def test_position_closed_before_the_liquidate_record_is_skipped_as_flat(self):
        """Alice sells her long to bob's bid first: the Liquidate finds it "flat"."""
        core, run = _core_with_long("isolated")
        run(SetIndexPrice(symbol=BTC, price=54_200 * SCALE))
        (pending,) = core.take_system_commands()
        run(
            PlaceOrder(
                account="bob",
                symbol=BTC,
                side="buy",
                type="limit",
                qty=SCALE // 2,
                price=54_500 * SCALE,
            )
        )
        run(
            PlaceOrder(
                account="alice",
                symbol=BTC,
                side="sell",
                type="limit",
                qty=SCALE // 2,
                price=54_500 * SCALE,
                tif="IOC",
                reduce_only=True,
            )
        )
        assert core.ledger.accounts["alice"].positions[BTC].size == 0
        events = run(pending)
        assert events == [
            LiquidationSkipped(
                seq=core.last_seq, account="alice", symbol=BTC, reason="flat"
            )
        ]

    def test_margin_is_called_once_while_its_liquidation_is_pending(self):
        """A second fall before the Liquidate runs asks for no second liquidation."""
        core, run = _core_with_long("isolated")
        run(SetIndexPrice(symbol=BTC, price=54_200 * SCALE))
        events = run(SetIndexPrice(symbol=BTC, price=54_100 * SCALE))
        assert _of(MarginCall, events) == []
        assert core.take_system_commands() == [Liquidate(account="alice", symbol=BTC)]

    def test_a_skipped_liquidation_can_be_called_again_later(self):
        """After a skip, a new fall calls margin and queues a fresh Liquidate."""
        core, run = _core_with_long("isolated")
        run(SetIndexPrice(symbol=BTC, price=54_200 * SCALE))
        (pending,) = core.take_system_commands()
        run(SetIndexPrice(symbol=BTC, price=60_000 * SCALE))
        run(pending)
        events = run(SetIndexPrice(symbol=BTC, price=54_000 * SCALE))
        assert len(_of(MarginCall, events)) == 1
        assert core.take_system_commands() == [pending]

    def test_time_alone_does_not_liquidate_without_a_margin_change(self):
        """A clock record with no funding due neither calls margin nor liquidates."""
        core, run = _core_with_long("isolated")
        events = run(AdvanceTime(ts_ns=10**9))
        assert _of(MarginCall, events) == []
        assert core.take_system_commands() == []


class TestBalancesAfterLiquidation:
    """Everything still adds up after each kind of liquidation."""

    @pytest.mark.parametrize("mode", ["isolated", "cross"])
    @pytest.mark.parametrize("bid", [None, "53000", "54000", "54100", "56000"])
    def test_money_and_positions_balance_after_a_liquidation(self, mode, bid):
        """Book, partial book or ADL: money is conserved and positions net to zero."""
        ex = _venue(FEED, mode=mode, wallet="3200")
        if bid is not None:
            ex.place_order("lp", BTC, "buy", "limit", "0.3", bid)
        _index(ex, BTC, "53500")
        assert _of(PositionLiquidated, ex.system_events)
        assert ex.positions("alice") == []
        assert _balanced(ex)
        ledger = ex.core.ledger
        assert ledger.settlement.bad_debt == 0
        assert min(a.wallet for a in ledger.accounts.values()) >= 0
        moved = sum(
            e.amount
            for e in _of(BalanceChanged, ex.system_events)
            if e.account == "alice" and e.reason == "liquidation"
        )
        (done,) = _of(PositionLiquidated, ex.system_events)
        assert -moved == done.fee + done.surplus
