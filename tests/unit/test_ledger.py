"""The margin ledger through the public `Exchange` API: vectors, settlement, checks.

Every test trades into positions against a counterparty, sets the mark by the
index (the markets pin the mark to it) and reads `positions` and `balance`,
as a user of the exchange would. Liquidation, the insurance fund's use, ADL
and funding are out of scope here (they are still being written).
"""

from __future__ import annotations

import contextlib
from decimal import Decimal

import msgspec
import pytest
from margin_helpers import (
    CENT,
    FEED,
    FREE,
    adjust,
    assert_refused,
    cents,
    exchange,
    money_sides,
    position,
    trade,
)

from exchange import Exchange, RejectCode, Rejected
from exchange.core import encode_state
from exchange.messages import Event, OrderAmended, OrderCanceled, PlaceOrder
from exchange.units import to_e8

D = Decimal
BTC, ETH = "BTC-PERP", "ETH-PERP"


@pytest.fixture
def ex() -> Exchange:
    """A fee-less margin exchange (BTC-PERP, ETH-PERP) with a rich counterparty."""
    ex = exchange(FREE)
    ex.deposit("bob", 1_000_000)
    ex.deposit("carol", 1_000_000)
    ex.set_index_price(BTC, 60_000)
    ex.set_index_price(ETH, 3_000)
    return ex


@pytest.fixture
def fx() -> Exchange:
    """The same exchange with the default fees (maker 0.02%, taker 0.05%)."""
    ex = exchange(FEED)
    ex.deposit("bob", 1_000_000)
    ex.deposit("carol", 1_000_000)
    ex.set_index_price(BTC, 60_000)
    ex.set_index_price(ETH, 3_000)
    return ex


def isolated(ex: Exchange, account: str, symbol: str, leverage: int) -> None:
    """Put ``account`` in isolated mode at ``leverage`` for ``symbol``."""
    ex.set_margin_mode(account, symbol, "isolated")
    ex.set_leverage(account, symbol, leverage)


class TestMarginVectors:
    """MARGIN.md's isolated vectors, reached by trading (fees 0, 2 dp)."""

    def test_isolated_long_tier_one_has_margin_md_prices_and_margins(self, ex):
        """A 10x isolated long 0.5 @ 60,000 holds 3,000, has MM 120 and LP 54,216.87."""
        ex.deposit("alice", 10_000)
        isolated(ex, "alice", BTC, 10)
        trade(ex, "alice", "bob", BTC, "0.5", "60000")
        p = position(ex, "alice", BTC)
        assert (p["side"], p["contracts"], p["entry_price"]) == (
            "long",
            D("0.5"),
            60_000,
        )
        assert p["collateral"] == p["initial_margin"] == 3_000
        assert p["maintenance_margin"] == 120
        assert cents(p["liquidation_price"]) == D("54216.87")

    def test_isolated_short_tier_one_has_margin_md_liquidation_price(self, ex):
        """A 10x isolated short of 0.5 @ 60,000 holds 3,000 and has LP 65,737.05."""
        ex.deposit("alice", 10_000)
        isolated(ex, "alice", BTC, 10)
        trade(ex, "bob", "alice", BTC, "0.5", "60000", taker="seller")
        p = position(ex, "alice", BTC)
        assert (p["side"], p["contracts"]) == ("short", D("0.5"))
        assert p["collateral"] == 3_000
        assert p["maintenance_margin"] == 120
        assert cents(p["liquidation_price"]) == D("65737.05")

    def test_isolated_long_tier_two_has_margin_md_mm_and_liquidation_price(self, ex):
        """A 20x isolated long 5 @ 60,000 holds 15,000, has MM 1,450, LP 57,276.38."""
        ex.deposit("alice", 20_000)
        isolated(ex, "alice", BTC, 20)
        trade(ex, "alice", "bob", BTC, "5", "60000")
        p = position(ex, "alice", BTC)
        assert p["notional"] == 300_000
        assert p["collateral"] == p["initial_margin"] == 15_000
        assert p["maintenance_margin"] == 1_450
        assert cents(p["liquidation_price"]) == D("57276.38")

    def test_isolated_liquidation_price_ignores_the_rest_of_the_wallet(self, ex):
        """An isolated position's LP is the same whatever the cross wallet holds."""
        ex.deposit("alice", 1_000_000)
        isolated(ex, "alice", BTC, 10)
        trade(ex, "alice", "bob", BTC, "0.5", "60000")
        assert cents(position(ex, "alice", BTC)["liquidation_price"]) == D("54216.87")


class TestCrossLiquidationPrice:
    """Cross LP with two positions: MARGIN.md's formula and its identity."""

    @pytest.fixture
    def hedged(self, ex: Exchange) -> Exchange:
        """Alice (cross, 10x, 10,000): long 0.5 BTC @ 60,000, short 5 ETH @ 3,000.

        ETH then rises to 3,100: that leg loses 500.
        """
        ex.deposit("alice", 10_000)
        ex.set_leverage("alice", BTC, 10)
        ex.set_leverage("alice", ETH, 10)
        trade(ex, "alice", "bob", BTC, "0.5", "60000")
        trade(ex, "carol", "alice", ETH, "5", "3000", taker="seller")
        ex.set_index_price(ETH, 3_100)
        return ex

    def test_cross_long_liquidation_price_counts_the_other_position(self, hedged):
        """BTC's LP counts ETH's MM 62, UPNL -500: (10,000-62-500-30,000)/-0.498."""
        assert cents(position(hedged, "alice", BTC)["liquidation_price"]) == D(
            "41289.16"
        )

    def test_cross_short_liquidation_price_counts_the_other_position(self, hedged):
        """ETH's LP uses BTC's MM (120) and UPNL (0): (10,000-120+15,000)/(0.02+5)."""
        hedged.set_index_price(ETH, 3_000)
        assert cents(position(hedged, "alice", ETH)["liquidation_price"]) == D(
            "4956.18"
        )

    @pytest.mark.parametrize(
        ("symbol", "safe_side"), [(BTC, D("0.001")), (ETH, D("-0.001"))]
    )
    def test_margin_balance_meets_total_mm_at_the_liquidation_price(
        self, hedged, symbol, safe_side
    ):
        """At a leg's LP, wallet + total UPNL equals total MM within a cent.

        The mark sits 0.001 to the safe side of the LP (a long above, a short
        below): the identity holds within a cent there, and the account is not
        yet liquidatable, so the check does not depend on liquidation.
        """
        lp = position(hedged, "alice", symbol)["liquidation_price"]
        hedged.set_index_price(symbol, lp + safe_side)
        views = hedged.positions("alice")
        assert len(views) == 2
        assert position(hedged, "alice", symbol)["mark_price"] == lp + safe_side
        balance = hedged.balance("alice")["wallet"] + sum(
            p["unrealized_pnl"] for p in views
        )
        total_mm = sum(p["maintenance_margin"] for p in views)
        assert D(0) < balance - total_mm <= CENT
        assert balance == hedged.balance("alice")["total"]


class TestFees:
    """Trading fees: maker 0.02%, taker 0.05%, rounded up, collected exactly."""

    def test_fees_round_up_and_are_collected_exactly(self, fx):
        """A 3.00001 ETH fill charges 0.00150001 taker and 0.00060001 maker."""
        fx.deposit("alice", 1_000)
        trade(fx, "alice", "bob", ETH, "0.001", "3000.01")
        assert fx.balance("alice")["wallet"] == D("999.99849999")
        assert fx.balance("bob")["wallet"] == D("999999.99939999")
        assert fx.fees_collected() == D("0.00210002")

    def test_fees_collected_is_the_sum_of_every_fee_charged(self, fx):
        """After several fills fees_collected equals the sum of each fill's fees."""
        fx.deposit("alice", 10_000)
        fills = [("0.001", "3000.01"), ("0.003", "2999.99"), ("0.5", "3000.03")]
        expected = D(0)
        for qty, price in fills:
            trade(fx, "alice", "bob", ETH, qty, price)
            value = D(qty) * D(price)
            for rate in (D("0.0005"), D("0.0002")):
                expected += (value * rate).quantize(D("1e-8"), rounding="ROUND_CEILING")
        assert fx.fees_collected() == expected
        deposits = D(10_000) + 2 * D(1_000_000)
        wallets = sum(fx.balance(a)["wallet"] for a in ("alice", "bob", "carol"))
        assert wallets + fx.fees_collected() == deposits  # entry values cancel

    def test_fill_reports_the_fee_it_charged(self, fx):
        """A taker's fill in the order result carries the taker fee it was charged."""
        fx.deposit("alice", 1_000)
        fx.place_order("bob", ETH, "sell", "limit", "0.001", "3000.01")
        result = fx.place_order("alice", ETH, "buy", "limit", "0.001", "3000.01")
        (fill,) = result.fills
        assert fill.fee == D("0.00150001")


class TestRealizedPnl:
    """Settlement of closing fills: realized PnL, entry price, flips."""

    def test_partial_closes_realize_pnl_on_the_closed_part_only(self, ex):
        """Of a long 1 @ 60,000, 0.4 sold at 62,000 realizes 800, 0.6 at 59,000 -600."""
        ex.deposit("alice", 10_000)
        ex.set_leverage("alice", BTC, 10)
        trade(ex, "alice", "bob", BTC, "1", "60000")
        ex.set_index_price(BTC, 62_000)
        trade(ex, "carol", "alice", BTC, "0.4", "62000")
        p = position(ex, "alice", BTC)
        assert (p["contracts"], p["entry_price"]) == (D("0.6"), 60_000)
        assert ex.balance("alice")["wallet"] == 10_800
        ex.set_index_price(BTC, 59_000)
        trade(ex, "carol", "alice", BTC, "0.6", "59000")
        assert ex.positions("alice") == []
        assert ex.balance("alice")["wallet"] == 10_200

    def test_growing_a_position_averages_the_entry_price(self, ex):
        """Buying 1 @ 60,000 then 3 @ 61,000 gives an entry of 60,750."""
        ex.deposit("alice", 100_000)
        trade(ex, "alice", "bob", BTC, "1", "60000")
        trade(ex, "alice", "bob", BTC, "3", "61000")
        p = position(ex, "alice", BTC)
        assert (p["contracts"], p["entry_price"]) == (4, 60_750)
        assert ex.balance("alice")["wallet"] == 100_000

    def test_cross_fill_through_zero_flips_the_position(self, ex):
        """Long 1 @ 60,000 selling 3 @ 61,000 realizes 1,000 and is short 2 @ 61,000."""
        ex.deposit("alice", 20_000)
        ex.set_leverage("alice", BTC, 10)
        trade(ex, "alice", "bob", BTC, "1", "60000")
        trade(ex, "carol", "alice", BTC, "3", "61000")
        p = position(ex, "alice", BTC)
        assert (p["side"], p["contracts"], p["entry_price"]) == ("short", 2, 61_000)
        assert ex.balance("alice")["wallet"] == 21_000

    def test_isolated_fill_through_zero_funds_the_new_side_from_the_wallet(self, ex):
        """Old bucket (6,000 + PnL 1,000) returns; the short 2 @ 61,000 holds 12,200."""
        ex.deposit("alice", 20_000)
        isolated(ex, "alice", BTC, 10)
        trade(ex, "alice", "bob", BTC, "1", "60000")
        trade(ex, "carol", "alice", BTC, "3", "61000")
        p = position(ex, "alice", BTC)
        assert (p["side"], p["contracts"], p["entry_price"]) == ("short", 2, 61_000)
        assert p["collateral"] == 12_200
        assert ex.balance("alice")["wallet"] == 21_000  # cross 8,800 + bucket 12,200
        assert ex.balance("alice")["free"] == 8_800

    def test_isolated_flip_pays_its_opening_fee_from_the_wallet(self, fx):
        """Long 0.001, then sell 2 at 60,000: the bucket of 0.001 answers for its fee.

        The fill's taker fee is 0.05% x 2 x 60,000 = 60: 0.03 for the closed
        0.001 (against its 6 of bucket), 59.97 for the opened 1.999 from the
        wallet. Charging all 60 to the 6 of bucket would leave it short: the
        insurance fund would pay and bad debt appear.
        """
        fx.deposit("alice", 20_000)
        isolated(fx, "alice", BTC, 10)
        trade(fx, "alice", "bob", BTC, "0.001", "60000")
        trade(fx, "carol", "alice", BTC, "2", "60000", taker="seller")
        ledger = fx.core.ledger
        assert (ledger.settlement.insurance_fund, ledger.settlement.bad_debt) == (0, 0)
        p = position(fx, "alice", BTC)
        assert (p["side"], p["contracts"], p["collateral"]) == (
            "short",
            D("1.999"),
            11_994,
        )
        # 20,000 - 0.03 open fee - 0.03 close fee - 59.97 flip-open fee
        assert fx.balance("alice")["wallet"] == D("19939.97")


class TestIsolatedBuckets:
    """An isolated position's own wallet: funded on open, returned on close."""

    def test_opening_moves_initial_margin_and_fee_out_of_the_wallet(self, fx):
        """A 10x isolated long of 0.5 @ 60,000 takes 3,000 + 15 taker fee from free."""
        fx.deposit("alice", 10_000)
        isolated(fx, "alice", BTC, 10)
        trade(fx, "alice", "bob", BTC, "0.5", "60000")
        assert position(fx, "alice", BTC)["collateral"] == 3_000
        assert fx.balance("alice") == {
            "wallet": D(9_985),
            "free": D(6_985),
            "used": D(3_000),
            "total": D(9_985),
        }

    def test_partial_close_releases_margin_pro_rata(self, ex):
        """Closing 0.2 of 0.5 at the entry price returns 2/5 of the 3,000 bucket."""
        ex.deposit("alice", 10_000)
        isolated(ex, "alice", BTC, 10)
        trade(ex, "alice", "bob", BTC, "0.5", "60000")
        trade(ex, "carol", "alice", BTC, "0.2", "60000")
        assert position(ex, "alice", BTC)["collateral"] == 1_800
        assert ex.balance("alice")["free"] == 8_200

    def test_partial_close_with_profit_moves_exactly_the_pnl_less_the_fee(self, fx):
        """A profitable half close adds PnL - fee to wallet + bucket; rest keeps IM."""
        fx.deposit("alice", 10_000)
        isolated(fx, "alice", BTC, 10)
        trade(fx, "alice", "bob", BTC, "0.5", "60000")
        fx.set_index_price(BTC, 62_000)
        trade(fx, "carol", "alice", BTC, "0.25", "62000", taker="seller")
        p = position(fx, "alice", BTC)
        assert fx.balance("alice")["wallet"] == D("9985") + 500 - D("7.75")
        assert p["collateral"] >= D("0.25") * 60_000 / 10

    def test_full_close_returns_the_whole_bucket_with_its_pnl(self, fx):
        """Closing everything at 62,000 leaves no bucket: the wallet is 10,969.5."""
        fx.deposit("alice", 10_000)
        isolated(fx, "alice", BTC, 10)
        trade(fx, "alice", "bob", BTC, "0.5", "60000")
        fx.set_index_price(BTC, 62_000)
        trade(fx, "carol", "alice", BTC, "0.25", "62000", taker="seller")
        trade(fx, "carol", "alice", BTC, "0.25", "62000", taker="seller")
        assert fx.positions("alice") == []
        assert fx.balance("alice") == {
            "wallet": D("10969.5"),
            "free": D("10969.5"),
            "used": D(0),
            "total": D("10969.5"),
        }
        assert fx.core.ledger.accounts["alice"].positions[BTC].margin == 0

    def test_a_resting_close_that_now_opens_gets_its_full_initial_margin(self, ex):
        """A close that now opens holds its 3,050 from then on, and its fill gets it.

        alice's sell of 0.5 @ 61,000 rested as a close (no margin held); the
        long closed, so it now opens a short: its initial margin is reserved at
        once (free 10,000 -> 6,950), a bid needing 8,800 is refused, and the
        short is funded in full when bob lifts the sell.
        """
        ex.deposit("alice", 10_000)
        isolated(ex, "alice", BTC, 10)
        trade(ex, "alice", "bob", BTC, "0.5", "60000")
        ex.place_order("alice", BTC, "sell", "limit", "0.5", "61000")
        assert ex.balance("alice")["free"] == 7_000
        trade(ex, "carol", "alice", BTC, "0.5", "60000", taker="seller")
        assert ex.balance("alice")["free"] == 6_950
        assert_refused(
            ex,
            RejectCode.INSUFFICIENT_MARGIN,
            ex.place_order,
            "alice",
            BTC,
            "buy",
            "limit",
            "1.6",
            "55000",
        )
        ex.place_order("bob", BTC, "buy", "limit", "0.5", "61000", tif="IOC")
        p = position(ex, "alice", BTC)
        assert (p["side"], p["collateral"]) == ("short", 3_050)
        assert ex.balance("alice")["free"] == 6_950

    def test_isolated_loss_leaves_the_free_balance_untouched(self, ex):
        """A losing isolated position does not lower the free balance of the wallet."""
        ex.deposit("alice", 10_000)
        isolated(ex, "alice", BTC, 10)
        trade(ex, "alice", "bob", BTC, "0.5", "60000")
        ex.set_index_price(BTC, 57_000)
        assert ex.balance("alice")["free"] == 7_000
        assert ex.balance("alice")["total"] == 8_500


class TestCrossWallet:
    """Cross positions share the cross wallet."""

    def test_cross_positions_draw_initial_margin_from_one_wallet(self, ex):
        """Two cross positions both hold margin out of the same free balance."""
        ex.deposit("alice", 10_000)
        ex.set_leverage("alice", BTC, 10)
        ex.set_leverage("alice", ETH, 10)
        trade(ex, "alice", "bob", BTC, "0.5", "60000")
        trade(ex, "alice", "bob", ETH, "5", "3000")
        assert ex.balance("alice") == {
            "wallet": D(10_000),
            "free": D(5_500),
            "used": D(4_500),
            "total": D(10_000),
        }
        assert {p["collateral"] for p in ex.positions("alice")} == {D(10_000)}

    def test_cross_loss_lowers_the_free_balance_for_every_symbol(self, ex):
        """A 500 BTC loss lowers the shared free balance by 500 less the IM it frees."""
        ex.deposit("alice", 10_000)
        ex.set_leverage("alice", BTC, 10)
        trade(ex, "alice", "bob", BTC, "0.5", "60000")
        ex.set_index_price(BTC, 59_000)
        assert ex.balance("alice")["free"] == 10_000 - 500 - 2_950

    def test_unrealized_profit_does_not_fund_new_orders(self, ex):
        """A cross profit raises the total but not the free balance."""
        ex.deposit("alice", 10_000)
        ex.set_leverage("alice", BTC, 10)
        trade(ex, "alice", "bob", BTC, "0.5", "60000")
        ex.set_index_price(BTC, 62_000)
        assert ex.balance("alice")["total"] == 11_000
        assert ex.balance("alice")["free"] == 10_000 - 3_100

    def test_profit_of_one_cross_position_offsets_the_loss_of_another(self, ex):
        """A hedged pair's BTC loss -500 and ETH profit +500 leave wallet - IM free."""
        ex.deposit("alice", 10_000)
        ex.set_leverage("alice", BTC, 10)
        ex.set_leverage("alice", ETH, 10)
        trade(ex, "alice", "bob", BTC, "0.5", "60000")
        trade(ex, "carol", "alice", ETH, "5", "3000", taker="seller")
        ex.set_index_price(BTC, 59_000)
        ex.set_index_price(ETH, 2_900)
        assert ex.balance("alice")["free"] == 10_000 - 2_950 - 1_450


class TestPreTradeCheck:
    """An order is accepted only if its margin fits the free balance."""

    def test_order_beyond_the_free_balance_is_refused_and_changes_nothing(self, ex):
        """A 10x buy of 0.5 @ 60,000 with 2,999.99999999 free is INSUFFICIENT_MARGIN."""
        ex.deposit("alice", "2999.99999999")
        ex.set_leverage("alice", BTC, 10)
        ex.place_order("bob", BTC, "sell", "limit", "0.5", "60000")
        assert_refused(
            ex,
            RejectCode.INSUFFICIENT_MARGIN,
            ex.place_order,
            "alice",
            BTC,
            "buy",
            "limit",
            "0.5",
            "60000",
        )

    def test_order_using_exactly_the_free_balance_is_accepted(self, ex):
        """A 10x buy of 0.5 @ 60,000 with exactly 3,000 free fills and leaves 0 free."""
        ex.deposit("alice", 3_000)
        ex.set_leverage("alice", BTC, 10)
        trade(ex, "alice", "bob", BTC, "0.5", "60000")
        assert ex.balance("alice")["free"] == 0

    def test_account_without_deposit_cannot_open(self, ex):
        """An account that never deposited is refused with INSUFFICIENT_MARGIN."""
        assert_refused(
            ex,
            RejectCode.INSUFFICIENT_MARGIN,
            ex.place_order,
            "nobody",
            BTC,
            "buy",
            "limit",
            "0.001",
            "59000",
        )

    def test_price_worse_than_mark_adds_its_loss_to_the_margin(self, ex):
        """A 10x buy of 0.5 @ 61,000 with mark 60,000 needs 3,050 + 500 = 3,550."""
        ex.deposit("alice", "3549.99999999")
        ex.set_leverage("alice", BTC, 10)
        assert_refused(
            ex,
            RejectCode.INSUFFICIENT_MARGIN,
            ex.place_order,
            "alice",
            BTC,
            "buy",
            "limit",
            "0.5",
            "61000",
        )
        ex.deposit("alice", "0.00000001")
        ex.place_order("alice", BTC, "buy", "limit", "0.5", "61000")
        assert ex.balance("alice")["used"] == 3_550

    def test_taker_fee_is_part_of_the_margin_an_order_needs(self, fx):
        """With fees, a 10x buy of 0.5 @ 60,000 needs 3,000 + 15 taker fee."""
        fx.deposit("alice", "3014.99999999")
        fx.set_leverage("alice", BTC, 10)
        assert_refused(
            fx,
            RejectCode.INSUFFICIENT_MARGIN,
            fx.place_order,
            "alice",
            BTC,
            "buy",
            "limit",
            "0.5",
            "60000",
        )
        fx.deposit("alice", "0.00000001")
        fx.place_order("alice", BTC, "buy", "limit", "0.5", "60000")
        assert fx.balance("alice")["used"] == 3_015

    def test_closing_order_needs_no_initial_margin(self, ex):
        """With 0 free, selling the whole long at the mark is accepted and closes it."""
        ex.deposit("alice", 3_000)
        ex.set_leverage("alice", BTC, 10)
        trade(ex, "alice", "bob", BTC, "0.5", "60000")
        trade(ex, "bob", "alice", BTC, "0.5", "60000", taker="seller")
        assert ex.positions("alice") == []
        assert ex.balance("alice")["free"] == 3_000

    def test_flip_needs_initial_margin_only_for_the_opened_part(self, ex):
        """Selling 0.8 against a 0.5 long needs the IM of the 0.3 short only."""
        ex.deposit("alice", 4_800)
        ex.set_leverage("alice", BTC, 10)
        trade(ex, "alice", "bob", BTC, "0.5", "60000")
        # free 1,800 = the IM of 0.3 @ 60,000 at 10x
        trade(ex, "bob", "alice", BTC, "0.8", "60000", taker="seller")
        assert position(ex, "alice", BTC)["contracts"] == D("0.3")

    def test_closing_order_is_accepted_while_a_loss_makes_free_negative(self, ex):
        """A losing, not liquidatable long can be closed by a plain order."""
        ex.deposit("alice", 3_000)
        ex.set_leverage("alice", BTC, 10)
        trade(ex, "alice", "bob", BTC, "0.5", "60000")
        ex.set_index_price(BTC, 59_000)  # UPNL -500, IM 2,950: free is -450
        trade(ex, "bob", "alice", BTC, "0.5", "59000", taker="seller")
        assert ex.positions("alice") == []
        assert ex.balance("alice")["wallet"] == 2_500

    def test_reduce_only_order_that_would_open_is_refused(self, ex):
        """Reduce-only with no position is REDUCE_ONLY_REJECTED."""
        ex.deposit("alice", 10_000)
        assert_refused(
            ex,
            RejectCode.REDUCE_ONLY_REJECTED,
            ex.place_order,
            "alice",
            BTC,
            "sell",
            "limit",
            "0.1",
            "60000",
            reduce_only=True,
        )

    @pytest.mark.parametrize(("side", "qty"), [("buy", "0.1"), ("sell", "0.6")])
    def test_reduce_only_order_that_would_grow_or_flip_is_refused(self, ex, side, qty):
        """Reduce-only growing or overshooting the position is REDUCE_ONLY_REJECTED."""
        ex.deposit("alice", 10_000)
        trade(ex, "alice", "bob", BTC, "0.5", "60000")
        assert_refused(
            ex,
            RejectCode.REDUCE_ONLY_REJECTED,
            ex.place_order,
            "alice",
            BTC,
            side,
            "limit",
            qty,
            "60000",
            reduce_only=True,
        )

    def test_reduce_only_order_that_reduces_is_accepted(self, ex):
        """Reduce-only selling the whole long closes it."""
        ex.deposit("alice", 10_000)
        trade(ex, "alice", "bob", BTC, "0.5", "60000")
        ex.place_order("bob", BTC, "buy", "limit", "0.5", "60000")
        result = ex.place_order(
            "alice", BTC, "sell", "limit", "0.5", "60000", reduce_only=True
        )
        assert result.status == "filled"
        assert ex.positions("alice") == []

    def test_leverage_above_the_tier_of_the_resulting_position_is_refused(self, ex):
        """At 125x, buying 1 BTC @ 60,000 (tier 2, max 100x) is POSITION_LIMIT."""
        ex.deposit("alice", 10_000)
        ex.set_leverage("alice", BTC, 125)
        ex.place_order("bob", BTC, "sell", "limit", "1", "60000")
        assert_refused(
            ex,
            RejectCode.POSITION_LIMIT,
            ex.place_order,
            "alice",
            BTC,
            "buy",
            "limit",
            "1",
            "60000",
        )
        result = ex.place_order("alice", BTC, "buy", "limit", "0.8", "60000")
        assert result.status == "filled"  # 48,000 stays in tier 1

    def test_growing_into_a_higher_tier_is_checked_on_the_whole_position(self, ex):
        """A 0.8 long at 125x cannot add 0.1 (54,000 is tier 2)."""
        ex.deposit("alice", 10_000)
        ex.set_leverage("alice", BTC, 125)
        trade(ex, "alice", "bob", BTC, "0.8", "60000")
        ex.place_order("bob", BTC, "sell", "limit", "0.1", "60000")
        assert_refused(
            ex,
            RejectCode.POSITION_LIMIT,
            ex.place_order,
            "alice",
            BTC,
            "buy",
            "limit",
            "0.1",
            "60000",
        )

    def test_position_beyond_the_last_tier_cap_is_refused(self, ex):
        """A position past the last tier's cap (70M notional) is POSITION_LIMIT."""
        ex.set_index_price(BTC, 100_000)
        for account in ("whale", "bob", "carol"):
            ex.deposit(account, 100_000_000)
            ex.set_leverage(account, BTC, 1)
        ex.place_order("bob", BTC, "sell", "limit", "400", "100000")  # 40M each
        ex.place_order("carol", BTC, "sell", "limit", "400", "100000")
        trade(ex, "whale", "bob", BTC, "1", "100000")  # 0.1M is fine
        assert_refused(
            ex,
            RejectCode.POSITION_LIMIT,
            ex.place_order,
            "whale",
            BTC,
            "buy",
            "limit",
            "800",
            "100000",
        )


class TestLeverage:
    """set_leverage bounds: 1..the max of the tier the position is in."""

    @pytest.mark.parametrize("leverage", [0, -1, 126])
    def test_leverage_outside_the_flat_tier_bounds_is_refused(self, ex, leverage):
        """With no position, leverage must be 1..125 (BTC tier 1)."""
        assert_refused(
            ex, RejectCode.INVALID_LEVERAGE, ex.set_leverage, "alice", BTC, leverage
        )

    @pytest.mark.parametrize("leverage", [1, 125])
    def test_leverage_at_the_flat_tier_bounds_is_accepted(self, ex, leverage):
        """1x and 125x are both valid with no position."""
        ex.set_leverage("alice", BTC, leverage)
        ex.deposit("alice", 100_000)
        trade(ex, "alice", "bob", BTC, "0.1", "60000")
        assert position(ex, "alice", BTC)["leverage"] == leverage

    def test_leverage_is_capped_by_the_tier_of_the_open_position(self, ex):
        """With a 60,000 notional (tier 2) 101x is refused and 100x accepted."""
        ex.deposit("alice", 100_000)
        trade(ex, "alice", "bob", BTC, "1", "60000")
        assert_refused(
            ex, RejectCode.INVALID_LEVERAGE, ex.set_leverage, "alice", BTC, 101
        )
        ex.set_leverage("alice", BTC, 100)
        assert position(ex, "alice", BTC)["initial_margin"] == 600

    def test_non_integer_leverage_is_malformed(self, ex):
        """A leverage that is not an int is refused as MALFORMED."""
        with pytest.raises(Rejected) as info:
            ex.set_leverage("alice", BTC, "10")  # type: ignore[arg-type]
        assert info.value.code == RejectCode.MALFORMED

    def test_lowering_isolated_leverage_needs_the_new_initial_margin(self, ex):
        """A 10x bucket of 3,000 cannot go to 5x (needs 6,000): MARGIN_BELOW_INITIAL."""
        ex.deposit("alice", 10_000)
        isolated(ex, "alice", BTC, 10)
        trade(ex, "alice", "bob", BTC, "0.5", "60000")
        assert_refused(
            ex, RejectCode.MARGIN_BELOW_INITIAL, ex.set_leverage, "alice", BTC, 5
        )
        ex.set_leverage("alice", BTC, 20)
        assert position(ex, "alice", BTC)["initial_margin"] == 1_500

    def test_lowering_leverage_under_open_orders_never_overdraws_the_wallet(self, ex):
        """A resting isolated order at 10x cannot fill at 1x on margin it never held."""
        ex.deposit("alice", 3_000)
        isolated(ex, "alice", BTC, 10)
        ex.place_order("alice", BTC, "buy", "limit", "0.5", "60000")  # holds 3,000
        with contextlib.suppress(Rejected):
            ex.set_leverage("alice", BTC, 1)  # 1x would need 30,000
        ex.place_order("bob", BTC, "sell", "limit", "0.5", "60000")
        ledger = ex.core.ledger
        assert (ledger.settlement.bad_debt, ex.insurance_fund()) == (0, 0)
        assert ex.balance("alice")["wallet"] == 3_000


class TestMarginMode:
    """set_margin_mode only while the symbol is flat and has no open orders."""

    def test_mode_change_with_a_position_is_refused(self, ex):
        """A symbol with a position cannot change mode (MODE_CHANGE_WITH_POSITION)."""
        ex.deposit("alice", 10_000)
        trade(ex, "alice", "bob", BTC, "0.1", "60000")
        assert_refused(
            ex,
            RejectCode.MODE_CHANGE_WITH_POSITION,
            ex.set_margin_mode,
            "alice",
            BTC,
            "isolated",
        )

    def test_mode_change_with_open_orders_is_refused(self, ex):
        """A symbol with a resting order cannot change mode: MODE_CHANGE_WITH_ORDERS."""
        ex.deposit("alice", 10_000)
        ex.place_order("alice", BTC, "buy", "limit", "0.1", "50000")
        assert_refused(
            ex,
            RejectCode.MODE_CHANGE_WITH_ORDERS,
            ex.set_margin_mode,
            "alice",
            BTC,
            "isolated",
        )

    def test_mode_changes_once_flat_and_without_orders(self, ex):
        """Flat and orderless, the mode changes; the next position uses it."""
        ex.deposit("alice", 10_000)
        trade(ex, "alice", "bob", BTC, "0.1", "60000")
        trade(ex, "bob", "alice", BTC, "0.1", "60000", taker="seller")
        order = ex.place_order("alice", ETH, "buy", "limit", "1", "2000")
        ex.set_margin_mode("alice", BTC, "isolated")  # ETH's order does not matter
        ex.cancel_order("alice", order.order_id)
        ex.set_margin_mode("alice", ETH, "isolated")
        trade(ex, "alice", "bob", BTC, "0.1", "60000")
        assert position(ex, "alice", BTC)["margin_mode"] == "isolated"

    def test_unknown_mode_is_malformed(self, ex):
        """A mode other than isolated or cross is refused as MALFORMED."""
        with pytest.raises(Rejected) as info:
            ex.set_margin_mode("alice", BTC, "portfolio")
        assert info.value.code == RejectCode.MALFORMED


class TestDepositAndWithdraw:
    """Paper deposits and withdrawals of the free balance."""

    @pytest.mark.parametrize("amount", [0, -5])
    def test_non_positive_amounts_are_refused(self, ex, amount):
        """Depositing or withdrawing zero or less is INVALID_AMOUNT."""
        ex.deposit("alice", 100)
        assert_refused(ex, RejectCode.INVALID_AMOUNT, ex.deposit, "alice", amount)
        assert_refused(ex, RejectCode.INVALID_AMOUNT, ex.withdraw, "alice", amount)

    def test_withdraw_beyond_the_free_balance_is_refused(self, ex):
        """With 7,000 free, withdrawing 7,000.00000001 is INSUFFICIENT_BALANCE."""
        ex.deposit("alice", 10_000)
        ex.set_leverage("alice", BTC, 10)
        trade(ex, "alice", "bob", BTC, "0.5", "60000")
        assert_refused(
            ex, RejectCode.INSUFFICIENT_BALANCE, ex.withdraw, "alice", "7000.00000001"
        )
        ex.withdraw("alice", 7_000)
        assert ex.balance("alice") == {
            "wallet": D(3_000),
            "free": D(0),
            "used": D(3_000),
            "total": D(3_000),
        }

    def test_withdraw_cannot_take_unrealized_profit_or_order_margin(self, ex):
        """A 1,000 profit and a resting order's margin are not withdrawable."""
        ex.deposit("alice", 10_000)
        ex.set_leverage("alice", BTC, 10)
        trade(ex, "alice", "bob", BTC, "0.5", "60000")
        ex.set_index_price(BTC, 62_000)
        ex.place_order("alice", ETH, "buy", "limit", "1", "2000")  # holds 100
        assert ex.balance("alice")["free"] == 10_000 - 3_100 - 100
        assert_refused(
            ex, RejectCode.INSUFFICIENT_BALANCE, ex.withdraw, "alice", "6800.00000001"
        )

    def test_withdraw_from_an_unknown_account_is_refused(self, ex):
        """An account that never deposited has nothing to withdraw."""
        assert_refused(ex, RejectCode.INSUFFICIENT_BALANCE, ex.withdraw, "nobody", 1)


class TestAdjustMargin:
    """Adding to and removing from an isolated position's bucket."""

    @pytest.fixture
    def bucket(self, ex: Exchange) -> Exchange:
        """Alice: 10x isolated long 0.5 @ 60,000 (bucket 3,000, cross wallet 7,000)."""
        ex.deposit("alice", 10_000)
        isolated(ex, "alice", BTC, 10)
        trade(ex, "alice", "bob", BTC, "0.5", "60000")
        return ex

    def test_facade_adjusts_isolated_margin(self, bucket):
        """Exchange.adjust_margin adds to the bucket."""
        bucket.adjust_margin("alice", BTC, 500)
        assert position(bucket, "alice", BTC)["collateral"] == 3_500

    def test_adding_margin_moves_it_from_free_and_the_liquidation_price_away(
        self, bucket
    ):
        """Adding 500 makes the bucket 3,500, free 6,500, and lowers the long's LP."""
        before = position(bucket, "alice", BTC)["liquidation_price"]
        adjust(bucket, "alice", BTC, "500")
        p = position(bucket, "alice", BTC)
        assert p["collateral"] == 3_500
        assert p["liquidation_price"] < before
        assert cents(p["liquidation_price"]) == D("53212.85")  # 26,500 / 0.498
        assert bucket.balance("alice") == {
            "wallet": D(10_000),
            "free": D(6_500),
            "used": D(3_500),
            "total": D(10_000),
        }

    def test_removing_margin_stops_at_the_initial_margin(self, bucket):
        """After adding 500, removing 500.00000001 is refused and 500 is accepted."""
        adjust(bucket, "alice", BTC, "500")
        assert_refused(
            bucket,
            RejectCode.MARGIN_BELOW_INITIAL,
            adjust,
            bucket,
            "alice",
            BTC,
            "-500.00000001",
        )
        adjust(bucket, "alice", BTC, "-500")
        assert position(bucket, "alice", BTC)["collateral"] == 3_000
        assert bucket.balance("alice")["free"] == 7_000

    def test_removable_margin_is_reduced_by_an_unrealized_loss(self, bucket):
        """With a 250 loss, only 250 of 500 added can come out again."""
        adjust(bucket, "alice", BTC, "500")
        bucket.set_index_price(BTC, 59_500)  # UPNL -250, IM 2,975
        assert_refused(
            bucket,
            RejectCode.MARGIN_BELOW_INITIAL,
            adjust,
            bucket,
            "alice",
            BTC,
            "-275.00000001",
        )
        adjust(bucket, "alice", BTC, "-275")

    def test_adding_more_than_the_free_balance_is_refused(self, bucket):
        """Adding 7,000.00000001 with 7,000 free is INSUFFICIENT_BALANCE."""
        assert_refused(
            bucket,
            RejectCode.INSUFFICIENT_BALANCE,
            adjust,
            bucket,
            "alice",
            BTC,
            "7000.00000001",
        )

    def test_zero_adjustment_is_refused(self, bucket):
        """An adjustment of 0 is INVALID_AMOUNT."""
        assert_refused(
            bucket, RejectCode.INVALID_AMOUNT, adjust, bucket, "alice", BTC, "0"
        )

    def test_cross_or_flat_position_has_no_bucket_to_adjust(self, bucket):
        """A cross position or a flat isolated symbol is NO_ISOLATED_POSITION."""
        trade(bucket, "alice", "bob", ETH, "1", "3000")  # cross
        assert_refused(
            bucket, RejectCode.NO_ISOLATED_POSITION, adjust, bucket, "alice", ETH, "10"
        )
        bucket.set_margin_mode("carol", BTC, "isolated")
        assert_refused(
            bucket, RejectCode.NO_ISOLATED_POSITION, adjust, bucket, "carol", BTC, "10"
        )
        assert_refused(
            bucket, RejectCode.NO_ISOLATED_POSITION, adjust, bucket, "nobody", BTC, "10"
        )


class TestMarginDisabled:
    """Account commands on an exchange created without the margin ledger."""

    @pytest.mark.parametrize(
        ("method", "args"),
        [
            ("deposit", ("alice", 100)),
            ("withdraw", ("alice", 100)),
            ("set_margin_mode", ("alice", BTC, "isolated")),
            ("set_leverage", ("alice", BTC, 10)),
            ("set_index_price", (BTC, 60_000)),
            ("balance", ("alice",)),
            ("positions", ("alice",)),
            ("insurance_fund", ()),
            ("fees_collected", ()),
        ],
    )
    def test_account_command_is_refused_without_margin(self, method, args):
        """Each margin command or query raises MARGIN_DISABLED and changes nothing."""
        plain = Exchange(clock=iter(range(1_000, 2_000)).__next__)
        assert_refused(plain, RejectCode.MARGIN_DISABLED, getattr(plain, method), *args)


class TestOrderMargin:
    """Margin held by open orders, and its release."""

    def test_resting_order_holds_its_margin_until_canceled(self, fx):
        """A 10x buy of 0.5 @ 59,000 holds 2,950 + 14.75 fee; canceling frees it."""
        fx.deposit("alice", 10_000)
        fx.set_leverage("alice", BTC, 10)
        order = fx.place_order("alice", BTC, "buy", "limit", "0.5", "59000")
        assert fx.balance("alice") == {
            "wallet": D(10_000),
            "free": D("7035.25"),
            "used": D("2964.75"),
            "total": D(10_000),
        }
        fx.cancel_order("alice", order.order_id)
        assert fx.balance("alice")["used"] == 0
        assert fx.balance("alice")["free"] == 10_000

    def test_cancel_all_releases_every_order_margin(self, fx):
        """cancel_all leaves no order margin on any symbol."""
        fx.deposit("alice", 10_000)
        fx.place_order("alice", BTC, "buy", "limit", "0.1", "59000")
        fx.place_order("alice", ETH, "sell", "limit", "1", "3100")
        assert fx.balance("alice")["used"] > 0
        assert len(fx.cancel_all("alice")) == 2
        assert fx.balance("alice")["used"] == 0
        assert fx.core.ledger.accounts["alice"].order_margin == 0

    def test_filled_order_releases_its_margin_to_the_position(self, fx):
        """Once filled, used is only the position's IM at the mark (3,000)."""
        fx.deposit("alice", 10_000)
        fx.set_leverage("alice", BTC, 10)
        fx.place_order("alice", BTC, "buy", "limit", "0.5", "59000")
        trade_fee = D("5.9")  # maker, 0.02% of 29,500
        fx.place_order("bob", BTC, "sell", "limit", "0.5", "59000")
        assert fx.balance("alice") == {
            "wallet": 10_000 - trade_fee,
            "free": 10_000 - trade_fee - 3_000,
            "used": D(3_000),
            "total": 10_500 - trade_fee,
        }

    def test_partial_fill_releases_margin_pro_rata(self, fx):
        """Filling 0.2 of 0.5 releases 2/5 of the order's 2,964.75."""
        fx.deposit("alice", 10_000)
        fx.set_leverage("alice", BTC, 10)
        fx.place_order("alice", BTC, "buy", "limit", "0.5", "59000")
        fx.place_order("bob", BTC, "sell", "limit", "0.2", "59000")
        assert fx.core.ledger.accounts["alice"].order_margin == D("1778.85") * 10**8
        assert fx.balance("alice")["used"] == D("1778.85") + 1_200

    def test_market_order_leftover_releases_its_margin(self, ex):
        """A market order the book fills only in part holds nothing afterwards."""
        ex.deposit("alice", 10_000)
        ex.place_order("bob", BTC, "sell", "limit", "0.1", "60000")
        result = ex.place_order("alice", BTC, "buy", "market", "0.3")
        assert (result.status, result.filled) == ("expired", D("0.1"))
        assert ex.core.ledger.accounts["alice"].order_margin == 0
        assert (
            ex.balance("alice")["used"] == position(ex, "alice", BTC)["initial_margin"]
        )


class TestOrderMarginFundsTheFill:
    """What an order reserved is what funds its fill (issue 7, section 1b)."""

    def test_isolated_bid_is_funded_by_its_reservation_after_a_cross_loss(self, ex):
        """A bid holding 59 fills into a bucket of 59 although ETH's loss ate free.

        alice's cross ETH long 3 @ 3,000 at 10x uses 900 of her 1,000; her
        isolated BTC bid 0.01 @ 59,000 at 10x reserves 59 (used 900 -> 959).
        ETH falls to 2,980: free is 0. When bob hits the bid, its 59 moves into
        the bucket (it was 0, with a liquidation price of 59,296 above entry).
        """
        ex.deposit("alice", 1_000)
        ex.set_leverage("alice", ETH, 10)
        trade(ex, "alice", "bob", ETH, "3", "3000")
        assert ex.balance("alice")["used"] == 900
        isolated(ex, "alice", BTC, 10)
        ex.place_order("alice", BTC, "buy", "limit", "0.01", "59000")
        assert ex.balance("alice")["used"] == 959
        ex.set_index_price(ETH, 2_980)
        assert ex.balance("alice")["free"] == 0
        ex.place_order("bob", BTC, "sell", "limit", "0.01", "59000", tif="IOC")
        p = position(ex, "alice", BTC)
        assert (p["side"], p["collateral"]) == ("long", 59)
        assert p["liquidation_price"] < 59_000
        assert ex.balance("alice")["wallet"] == 1_000

    def _close_short_under_a_bid(
        self, ex: Exchange, close_at: str, deposit: int = 1_000
    ) -> tuple[int, list[Event]]:
        """Open alice's isolated short 0.05, rest a bid that closes it, close it.

        Returns the bid's order id and the events of the record that closes
        the short at ``close_at`` (alice lifts carol's offer).
        """
        ex.deposit("alice", deposit)
        isolated(ex, "alice", BTC, 10)
        trade(ex, "bob", "alice", BTC, "0.05", "60000")
        bid = ex.place_order("alice", BTC, "buy", "limit", "0.05", "59000")
        assert ex.balance("alice")["used"] == 300  # the short's bucket only
        ex.place_order("carol", BTC, "sell", "limit", "0.05", close_at)
        _, events = ex.submit(
            PlaceOrder(
                account="alice",
                symbol=BTC,
                side="buy",
                type="limit",
                qty=to_e8("0.05"),
                price=to_e8(close_at),
                tif="IOC",
            )
        )
        assert position(ex, "bob", BTC)["side"] == "long"
        return bid.order_id, events

    def test_a_bid_that_closed_a_short_holds_its_margin_once_the_short_is_gone(
        self, ex
    ):
        """The bid held nothing as a close; once flat it holds 0.05 x 59,000 / 10."""
        bid, events = self._close_short_under_a_bid(ex, "60000")
        (amended,) = [e for e in events if isinstance(e, OrderAmended)]
        assert (amended.order_id, amended.margin) == (bid, 295 * 10**8)
        assert [o["order_id"] for o in ex.open_orders("alice")] == [bid]
        assert ex.core.index[bid].reserved == 295 * 10**8
        assert ex.balance("alice")["free"] == 705

    def test_withdrawal_leaves_the_margin_of_a_bid_that_now_opens(self, ex):
        """Under the bid 1,000 cannot be withdrawn, 705 can; the bid fills in full."""
        self._close_short_under_a_bid(ex, "60000")
        assert_refused(ex, RejectCode.INSUFFICIENT_BALANCE, ex.withdraw, "alice", 1_000)
        ex.withdraw("alice", 705)
        ex.place_order("bob", BTC, "sell", "limit", "0.05", "59000", tif="IOC")
        p = position(ex, "alice", BTC)
        assert (p["side"], p["contracts"], p["collateral"]) == ("long", D("0.05"), 295)
        assert ex.balance("alice")["free"] == 0

    def test_a_bid_that_now_opens_without_the_margin_for_it_is_canceled(self, ex):
        """Of 500, the short's bucket (300) is lost at 66,000; 200 cannot hold 295."""
        bid, events = self._close_short_under_a_bid(ex, "66000", deposit=500)
        assert ex.balance("alice")["wallet"] == 200
        assert ex.open_orders("alice") == []
        canceled = [e for e in events if isinstance(e, OrderCanceled)]
        assert [(c.order_id, c.reason) for c in canceled] == [(bid, "margin")]
        assert ex.core.ledger.accounts["alice"].order_margin == 0

    def test_orders_the_wallet_no_longer_holds_are_canceled_newest_first(self, ex):
        """A realized cross loss leaves 300 of cash under 590 + 59 of bids: both go.

        alice's isolated BTC bids of 0.01 @ 59,000 (59) and 0.1 @ 59,000 (590)
        sit beside a cross ETH long 1 @ 3,000; she closes ETH at 2,300, a loss
        of 700. Her wallet of 300 cannot hold 649: the newer bid (590) goes,
        and the older (59) stays.
        """
        ex.deposit("alice", 1_000)
        trade(ex, "alice", "bob", ETH, "1", "3000")
        isolated(ex, "alice", BTC, 10)
        small = ex.place_order("alice", BTC, "buy", "limit", "0.01", "59000")
        big = ex.place_order("alice", BTC, "buy", "limit", "0.1", "59000")
        ex.set_index_price(ETH, 2_300)
        ex.place_order("bob", ETH, "buy", "limit", "1", "2300")
        _, events = ex.submit(
            PlaceOrder(
                account="alice",
                symbol=ETH,
                side="sell",
                type="limit",
                qty=to_e8("1"),
                price=to_e8("2300"),
                tif="IOC",
            )
        )
        assert ex.balance("alice")["wallet"] == 300
        assert [o["order_id"] for o in ex.open_orders("alice")] == [small.order_id]
        canceled = [e for e in events if isinstance(e, OrderCanceled)]
        assert [(c.order_id, c.reason) for c in canceled] == [(big.order_id, "margin")]
        assert ex.core.ledger.accounts["alice"].order_margin == 59 * 10**8


class TestCrossLeverageCut:
    """Lowering cross leverage needs the extra initial margin free (Binance -2028)."""

    @pytest.fixture
    def long_eth(self, ex):
        """Alice (10,650) holds a cross ETH long 5 @ 3,289.6 at 10x: IM 1,644.8."""
        ex.deposit("alice", 10_650)
        ex.set_index_price(ETH, "3289.6")
        ex.set_leverage("alice", ETH, 10)
        trade(ex, "alice", "bob", ETH, "5", "3289.6")
        return ex

    def test_a_cut_whose_initial_margin_exceeds_the_balance_is_refused(self, long_eth):
        """10x -> 1x needs an IM of 16,448 against a balance of 10,650: 3005."""
        assert_refused(
            long_eth,
            RejectCode.MARGIN_BELOW_INITIAL,
            long_eth.set_leverage,
            "alice",
            ETH,
            1,
        )
        assert position(long_eth, "alice", ETH)["leverage"] == 10

    def test_a_cut_that_fits_the_free_balance_is_accepted(self, long_eth):
        """10x -> 2x needs 8,224 (6,579.2 more, 9,005.2 free): accepted."""
        long_eth.set_leverage("alice", ETH, 2)
        p = position(long_eth, "alice", ETH)
        assert (p["leverage"], p["initial_margin"]) == (2, 8_224)
        assert long_eth.balance("alice")["free"] == D("2426")


class TestStateHash:
    """The state hash holds any int state (msgpack stops at 64 bits)."""

    def test_two_hundred_accounts_of_a_billion_hash_deterministically(self):
        """Deposits of 2e11 USDT in total hash, equally for equal states."""
        first, second = exchange(FREE), exchange(FREE)
        for n in range(200):
            first.deposit(f"a{n}", 1_000_000_000)
            second.deposit(f"a{n}", 1_000_000_000)
        assert first.core.ledger.settlement.deposits > 2**64
        assert first.core.state_hash() == second.core.state_hash()
        second.deposit("a0", 1)
        assert first.core.state_hash() != second.core.state_hash()

    @pytest.mark.parametrize("big", [2**64, -(2**63) - 1, 2**200, -(2**200)])
    def test_ints_beyond_msgpack_get_their_own_canonical_form(self, big):
        """An int beyond msgpack encodes apart from its neighbours, every time alike."""
        encoded = encode_state([1, [big]])
        assert encoded == encode_state([1, [big]])
        assert encoded not in {
            encode_state([1, [big + 1]]),
            encode_state([1, [big - 1]]),
        }

    def test_state_within_msgpack_encodes_as_plain_msgpack(self):
        """Ints msgpack holds (up to 2**64 - 1) keep the plain msgpack encoding."""
        state = [2**64 - 1, -(2**63), "x"]
        assert encode_state(state) == msgspec.msgpack.encode(state)


class TestViews:
    """balance() and positions() fields on a worked example."""

    def test_cross_long_with_fees_and_a_rising_mark(self, fx):
        """Every field of a cross 10x long 0.5 @ 60,000 (fee 15) at mark 61,000."""
        fx.deposit("alice", 10_000)
        fx.set_leverage("alice", BTC, 10)
        trade(fx, "alice", "bob", BTC, "0.5", "60000")
        fx.set_index_price(BTC, 61_000)
        assert fx.balance("alice") == {
            "wallet": D(9_985),
            "free": D(6_935),
            "used": D(3_050),
            "total": D(10_485),
        }
        (p,) = fx.positions("alice")
        lp = p.pop("liquidation_price")
        assert p == {
            "symbol": BTC,
            "side": "long",
            "contracts": D("0.5"),
            "entry_price": D(60_000),
            "mark_price": D(61_000),
            "notional": D(30_500),
            "leverage": 10,
            "unrealized_pnl": D(500),
            "margin_mode": "cross",
            "collateral": D(9_985),
            "initial_margin": D(3_050),
            "maintenance_margin": D(122),
            "margin_ratio": D("0.011636"),  # 122 / 10,485
        }
        assert cents(lp) == D("40190.76")  # (9,985 - 30,000) / (0.002 - 0.5)
        assert (fx.fees_collected(), fx.insurance_fund()) == (D(21), D(0))

    def test_isolated_short_margin_ratio_uses_its_own_bucket(self, ex):
        """An isolated short's ratio is MM / (bucket + UPNL): 118 / 3,500 at 59,000."""
        ex.deposit("alice", 10_000)
        isolated(ex, "alice", BTC, 10)
        trade(ex, "bob", "alice", BTC, "0.5", "60000", taker="seller")
        ex.set_index_price(BTC, 59_000)
        p = position(ex, "alice", BTC)
        assert (p["unrealized_pnl"], p["maintenance_margin"]) == (500, 118)
        assert p["margin_ratio"] == (D(118) / D(3_500)).quantize(D("1e-6"))
        assert ex.balance("alice") == {
            "wallet": D(10_000),
            "free": D(7_000),
            "used": D(3_000),
            "total": D(10_500),
        }

    def test_unknown_account_has_zero_balance_and_no_positions(self, ex):
        """An account never seen reads as all zeros and no positions."""
        assert set(ex.balance("nobody").values()) == {D(0)}
        assert ex.positions("nobody") == []

    def test_money_identity_holds_after_mixed_isolated_and_cross_trades(self, fx):
        """Deposits equal wallets + buckets - costs + fund + fees after mixed trades."""
        fx.deposit("alice", 10_000)
        isolated(fx, "alice", ETH, 7)
        trade(fx, "alice", "bob", BTC, "0.3", "60000.1")
        trade(fx, "carol", "alice", ETH, "2.345", "3000.03", taker="seller")
        fx.set_index_price(ETH, "2950.55")
        trade(fx, "alice", "carol", ETH, "1.001", "2950.51")
        deposits, held = money_sides(fx.core.ledger)
        assert deposits == held
