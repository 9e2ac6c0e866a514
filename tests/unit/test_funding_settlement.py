"""Funding through the exchange: boundaries crossed by time, who pays, zero-sum.

Exchange time moves only through records; `advance_time` jumps it, and every
8 h boundary it passes settles once, at the mark of that moment. Marks are
pinned to the index, so with no premium samples the rate is the interest rate
0.01% (10,000 in E8 rate units) and alice's long 0.5 BTC at 60,000 pays
30,000 x 0.01% = 3 USDT an interval to bob's short.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

import pytest
from margin_helpers import FREE, exchange, money_sides, position, trade

from exchange.messages import (
    AdvanceTime,
    BalanceChanged,
    Event,
    FundingPaid,
    InsuranceFundChanged,
    PositionChanged,
)
from exchange.units import SCALE, to_e8

if TYPE_CHECKING:
    from exchange import Exchange

D = Decimal
BTC, ETH = "BTC-PERP", "ETH-PERP"
H8 = 8 * 3600 * 10**9
INTEREST = 10_000  # 0.01% in E8 rate units
THREE = 3 * SCALE  # 30,000 notional x 0.01%


def _of(kind: type, events: list[Event]) -> list:
    """Return the events of one type, in order."""
    return [e for e in events if isinstance(e, kind)]


def _advance(ex: Exchange, ts_ns: int) -> list[Event]:
    """Move exchange time to ``ts_ns``; return the record's events."""
    _, events = ex.submit(AdvanceTime(ts_ns=ts_ns))
    return events


def _paid(events: list[Event]) -> list[tuple[str, int]]:
    """Return (account, amount) of every funding payment, in order."""
    return [(e.account, e.amount) for e in _of(FundingPaid, events)]


def _venue(alice_mode: str = "cross") -> Exchange:
    """Alice long 0.5 BTC at 60,000 (10x, ``alice_mode``) against bob's short."""
    ex = exchange(FREE)
    ex.deposit("alice", 10_000)
    ex.deposit("bob", 100_000)
    ex.deposit("mm", 1_000_000)
    ex.set_index_price(BTC, 60_000)
    ex.set_margin_mode("alice", BTC, alice_mode)
    ex.set_leverage("alice", BTC, 10)
    trade(ex, "alice", "bob", BTC, "0.5", "60000")
    return ex


class TestBoundaries:
    """Each 8 h boundary that time passes settles exactly once."""

    def test_no_funding_before_the_first_boundary(self):
        """Time up to 1 ns before 08:00 settles nothing."""
        ex = _venue()
        assert _of(FundingPaid, _advance(ex, H8 - 1)) == []

    def test_reaching_a_boundary_settles_it_once(self):
        """At 08:00 both positions settle; later times in the interval add nothing."""
        ex = _venue()
        events = _advance(ex, H8)
        assert _paid(events) == [("alice", THREE), ("bob", -THREE)]
        assert {
            (e.rate, e.mark, e.funding_ts_ns) for e in _of(FundingPaid, events)
        } == {(INTEREST, 60_000 * SCALE, H8)}
        assert _of(FundingPaid, _advance(ex, H8 + 1)) == []
        assert _of(FundingPaid, _advance(ex, 2 * H8 - 1)) == []

    def test_a_long_jump_settles_every_boundary_passed_in_order(self):
        """A jump from 0 to 32 h and 5 ns settles 08:00, 16:00, 24:00 and 32:00."""
        ex = _venue()
        events = _advance(ex, 4 * H8 + 5)
        funded = _of(FundingPaid, events)
        assert [(e.funding_ts_ns, e.account) for e in funded] == [
            (ts, who) for ts in (H8, 2 * H8, 3 * H8, 4 * H8) for who in ("alice", "bob")
        ]
        assert ex.balance("alice")["wallet"] == D(10_000 - 4 * 3)
        assert ex.balance("bob")["wallet"] == D(100_000 + 4 * 3)

    def test_a_jump_back_in_time_settles_nothing_again(self):
        """After 16:00 settled, a record stamped earlier repeats no funding."""
        ex = _venue()
        _advance(ex, 2 * H8)
        assert _of(FundingPaid, _advance(ex, H8)) == []
        assert _of(FundingPaid, _advance(ex, 2 * H8)) == []

    def test_funding_is_paid_in_the_records_own_events(self):
        """The FundingPaid events carry the seq of the clock record that moved time."""
        ex = _venue()
        seq, events = ex.submit(AdvanceTime(ts_ns=H8))
        assert {e.seq for e in _of(FundingPaid, events)} == {seq}

    def test_each_interval_pays_at_the_mark_of_its_settlement(self):
        """Moving the index between two boundaries changes the next payment."""
        ex = _venue()
        _advance(ex, H8)
        ex.set_index_price(BTC, 62_000)
        events = _advance(ex, 2 * H8)
        # 0.5 x 62,000 x 0.01% = 3.1
        assert _paid(events) == [("alice", to_e8("3.1")), ("bob", -to_e8("3.1"))]


class TestWhoPays:
    """Positive rates make longs pay shorts; buckets and wallets pay their own."""

    def test_positive_rate_longs_pay_and_shorts_receive_in_the_cross_wallet(self):
        """Alice's cross wallet pays 3, bob's cross wallet receives 3."""
        ex = _venue()
        events = _advance(ex, H8)
        changes = {e.account: (e.amount, e.reason) for e in _of(BalanceChanged, events)}
        assert changes == {"alice": (-THREE, "funding"), "bob": (THREE, "funding")}
        assert ex.balance("alice")["wallet"] == D(9997)
        assert ex.balance("bob")["wallet"] == D(100_003)

    def test_isolated_position_pays_from_its_bucket_not_the_wallet(self):
        """Alice's 3,000 bucket drops to 2,997; her cross wallet of 7,000 stays."""
        ex = _venue("isolated")
        events = _advance(ex, H8)
        assert [e.account for e in _of(BalanceChanged, events)] == ["bob"]
        (change,) = [e for e in _of(PositionChanged, events) if e.account == "alice"]
        assert change.margin == to_e8("2997")
        assert position(ex, "alice", BTC)["collateral"] == D(2997)
        assert ex.core.ledger.accounts["alice"].wallet == 7_000 * SCALE

    def test_isolated_short_receives_into_its_bucket(self):
        """Bob isolated short: his bucket of 3,000 grows by 3, his wallet does not."""
        ex = exchange(FREE)
        ex.deposit("alice", 10_000)
        ex.deposit("bob", 10_000)
        ex.set_index_price(BTC, 60_000)
        ex.set_margin_mode("bob", BTC, "isolated")
        ex.set_leverage("bob", BTC, 10)
        trade(ex, "alice", "bob", BTC, "0.5", "60000")
        wallet = ex.core.ledger.accounts["bob"].wallet
        _advance(ex, H8)
        assert position(ex, "bob", BTC)["collateral"] == D(3003)
        assert ex.core.ledger.accounts["bob"].wallet == wallet

    def test_negative_premium_makes_shorts_pay_longs(self):
        """Asks far below the index give a negative rate: bob's short pays alice."""
        ex = _venue()
        ex.place_order("mm", BTC, "buy", "limit", "1", "59500")
        ex.place_order("mm", BTC, "sell", "limit", "1", "59600")
        ex.set_index_price(BTC, 60_000)  # impact ask 59,600: premium -0.6667%
        events = _advance(ex, H8)
        # samples 0 and -666,666 average -333,333; + clamp(+343,333 to 50,000)
        assert _paid(events) == [("alice", -8_499_990_000), ("bob", 8_499_990_000)]
        assert {e.rate for e in _of(FundingPaid, events)} == {-283_333}

    def test_flat_accounts_pay_nothing(self):
        """Accounts without a position get no FundingPaid."""
        ex = _venue()
        events = _advance(ex, H8)
        assert "mm" not in {e.account for e in _of(FundingPaid, events)}


class TestOrder:
    """Payments follow the order accounts were opened in, not their positions'."""

    def test_payments_come_in_account_order_after_positions_reopen(self):
        """Alice closes and reopens after carol opened: alice, bob, carol still."""
        ex = _venue()
        ex.deposit("carol", 10_000)
        trade(ex, "carol", "bob", BTC, "0.1", "60000")
        trade(ex, "bob", "alice", BTC, "0.5", "60000")  # alice flat
        trade(ex, "alice", "bob", BTC, "0.2", "60000")  # and long again
        paid = [account for account, _ in _paid(_advance(ex, H8))]
        assert paid == ["alice", "bob", "carol"]


class TestZeroSum:
    """Payments and the rounding remainder to the fund sum to exactly zero."""

    def _odd(self) -> Exchange:
        """Three positions at a mark with 8 decimals, so payments round."""
        ex = exchange(FREE)
        for account in ("alice", "bob", "carol"):
            ex.deposit(account, 100_000)
        ex.set_index_price(BTC, 60_000)
        trade(ex, "alice", "bob", BTC, "0.001", "60000")
        trade(ex, "alice", "carol", BTC, "0.002", "60000")
        ex.set_index_price(BTC, "60000.12345678")
        return ex

    def test_rounding_remainder_goes_to_the_insurance_fund(self):
        """Payers round up, receivers down: the 1e-8 left over goes to the fund."""
        ex = self._odd()
        events = _advance(ex, H8)
        # 0.003 x 60,000.12345678 x 0.01% = 0.018000037037... -> 0.01800004
        assert _paid(events) == [
            ("alice", 1_800_004),
            ("bob", -600_001),
            ("carol", -1_200_002),
        ]
        (fund,) = _of(InsuranceFundChanged, events)
        assert (fund.amount, fund.reason) == (1, "funding_remainder")
        assert ex.core.ledger.settlement.insurance_fund == 1

    def test_payments_sum_to_the_remainder_credited(self):
        """Over 5 intervals the payments sum to exactly what the fund was credited."""
        ex = self._odd()
        events = _advance(ex, 5 * H8)
        paid = sum(amount for _, amount in _paid(events))
        credited = sum(e.amount for e in _of(InsuranceFundChanged, events))
        assert paid == credited == ex.core.ledger.settlement.insurance_fund == 5

    def test_exact_payments_credit_nothing_to_the_fund(self):
        """When no payment rounds, the fund sees no funding_remainder event."""
        ex = _venue()
        events = _advance(ex, H8)
        assert _of(InsuranceFundChanged, events) == []
        assert sum(amount for _, amount in _paid(events)) == 0

    @pytest.mark.parametrize("mode", ["isolated", "cross"])
    def test_money_identity_holds_across_funding(self, mode):
        """Deposits equal wallets, buckets, costs and the fund after funding."""
        ex = self._odd()
        ex.set_margin_mode("bob", ETH, mode)
        ex.set_index_price(ETH, 3_000)
        trade(ex, "bob", "carol", ETH, "0.7", "3000")
        _advance(ex, 3 * H8)
        deposits, held = money_sides(ex.core.ledger)
        assert deposits == held


class TestNoMark:
    """Without a mark there is nothing to value, so nothing is paid."""

    def test_no_funding_without_a_mark_and_the_missed_interval_is_not_repaid(self):
        """08:00 passes with no price; only 16:00 settles once a mark exists."""
        ex = exchange(FREE)
        ex.deposit("alice", 10_000)
        ex.deposit("bob", 10_000)
        events = _advance(ex, H8)
        assert _of(FundingPaid, events) == []
        assert _of(InsuranceFundChanged, events) == []
        ex.set_index_price(BTC, 60_000)
        trade(ex, "alice", "bob", BTC, "0.5", "60000")
        funded = _of(FundingPaid, _advance(ex, 2 * H8))
        assert [(e.funding_ts_ns, e.account) for e in funded] == [
            (2 * H8, "alice"),
            (2 * H8, "bob"),
        ]

    def test_a_market_without_a_mark_pays_while_another_market_settles(self):
        """ETH has no price at 08:00: only BTC positions pay."""
        ex = _venue()
        events = _advance(ex, H8)
        assert {e.symbol for e in _of(FundingPaid, events)} == {BTC}


class TestPremium:
    """A skewed book moves the rate away from the interest rate."""

    def test_bids_above_the_index_raise_the_rate(self):
        """Impact bid 60,300 over index 60,000: premium 0.5%, rate 0.45%, 135 paid."""
        ex = _venue()
        ex.place_order("mm", BTC, "buy", "limit", "1", "60300")
        ex.place_order("mm", BTC, "sell", "limit", "1", "60400")
        ex.set_index_price(BTC, 60_000)
        # one sample of 500,000 beside the first (empty book) sample of 0
        window = ex.core.ledger.markets[BTC].funding
        assert (window.premium_sum, window.premium_count) == (500_000, 2)
        events = _advance(ex, H8)
        # average 250,000: rate = 250,000 + clamp(10,000 - 250,000) = 200,000
        by = {e.account: e for e in _of(FundingPaid, events)}
        assert by["alice"].rate == 200_000
        assert by["alice"].amount == 60 * SCALE  # 30,000 x 0.2%
        assert by["bob"].amount == -60 * SCALE
        assert "mm" not in by

    def test_the_window_restarts_after_each_boundary(self):
        """The skew sampled before 08:00 no longer counts for the 16:00 funding."""
        ex = _venue()
        ex.place_order("mm", BTC, "buy", "limit", "1", "60300")
        ex.place_order("mm", BTC, "sell", "limit", "1", "60400")
        ex.set_index_price(BTC, 60_000)
        _advance(ex, H8)
        events = _advance(ex, 2 * H8)
        assert {e.rate for e in _of(FundingPaid, events)} == {INTEREST}

    def test_a_thin_book_samples_no_premium(self):
        """Levels worth less than the 25,000 impact notional leave the rate at 0.01%."""
        ex = _venue()
        ex.place_order("mm", BTC, "buy", "limit", "0.1", "60300")
        ex.place_order("mm", BTC, "sell", "limit", "0.1", "60400")
        ex.set_index_price(BTC, 60_000)
        events = _advance(ex, H8)
        assert {e.rate for e in _of(FundingPaid, events)} == {INTEREST}
