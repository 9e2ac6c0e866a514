"""Partial liquidation: a position above the first tier is cut one tier at a time.

alice goes long 1 BTC at 60,000 at 20x (notional 60,000: BTC's second tier,
MMR 0.5%, cum 50). lp bids 1 BTC at 57,000. At the liquidation price the
first step sells only what brings the notional at the mark under the first
tier's cap (50,000); the rest stays open while its margin holds.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from margin_helpers import FREE, exchange, money_sides, position, trade
from msgspec.structs import replace

from exchange import Exchange, Market
from exchange.messages import (
    Event,
    InsuranceFundChanged,
    MarginCall,
    OrderFilled,
    PositionLiquidated,
    SetIndexPrice,
)
from exchange.shell.config import ConfigError, markets_from_toml
from exchange.units import to_e8

D = Decimal
BTC = "BTC-PERP"


def _venue(mode: str, wallet: str, markets: tuple[Market, ...] = FREE) -> Exchange:
    """Alice long 1 BTC at 60,000 at 20x in ``mode``; lp bids 1 BTC at 57,000."""
    ex = exchange(markets)
    ex.deposit("alice", wallet)
    for rich in ("bob", "lp"):
        ex.deposit(rich, 1_000_000)
    ex.set_index_price(BTC, 60_000)
    ex.set_margin_mode("alice", BTC, mode)
    ex.set_leverage("alice", BTC, 20)
    trade(ex, "alice", "bob", BTC, "1", "60000")
    ex.place_order("lp", BTC, "buy", "limit", "1", "57000")
    return ex


def _to_liquidation_price(ex: Exchange) -> list[Event]:
    """Move the index (the mark) to alice's liquidation price; return system events."""
    price = position(ex, "alice", BTC)["liquidation_price"]
    assert isinstance(price, Decimal)
    ex.submit(SetIndexPrice(symbol=BTC, price=to_e8(price)))
    return ex.system_events


def _liquidations(events: list[Event]) -> list[PositionLiquidated]:
    """Return the liquidations among ``events``."""
    return [e for e in events if isinstance(e, PositionLiquidated)]


class TestIsolated:
    """Partial liquidation of an isolated position, one tier at a time."""

    def test_first_step_cuts_to_the_tier_below_and_the_rest_stays_open(self) -> None:
        """0.127 BTC is sold at the bankruptcy price; 0.873 stays, under 50,000."""
        ex = _venue("isolated", "10000")
        events = _to_liquidation_price(ex)
        (step,) = _liquidations(events)
        assert (step.qty, step.filled, step.left) == (127, 127, 873)
        assert step.bankruptcy_price == 570_000  # 57,000.0: the bucket's end
        kept = position(ex, "alice", BTC)
        assert kept["contracts"] == D("0.873")
        assert kept["notional"] < 50_000  # the first tier now
        # the bucket keeps the open lots' share; the mark is above the new
        # liquidation price, so no second step follows
        assert kept["collateral"] == D("2619")  # 3,000 x 0.873
        assert kept["liquidation_price"] < kept["mark_price"]
        assert [e for e in events if isinstance(e, MarginCall)] == []

    def test_the_wallet_outside_the_bucket_is_untouched(self) -> None:
        """The step settles inside the bucket: the free balance stays 7,000."""
        ex = _venue("isolated", "10000")
        _to_liquidation_price(ex)
        assert ex.balance("alice")["free"] == D("7000")
        deposits, held = money_sides(ex.core.ledger)
        assert deposits == held

    def test_a_further_fall_closes_the_rest_in_the_first_tier(self) -> None:
        """At the new liquidation price the remaining 0.873 BTC closes whole."""
        ex = _venue("isolated", "10000")
        _to_liquidation_price(ex)
        (last,) = _liquidations(_to_liquidation_price(ex))
        assert (last.qty, last.left) == (873, 0)
        assert ex.positions("alice") == []

    def test_without_partial_liquidation_the_whole_position_closes(self) -> None:
        """A market with partial_liquidation=False closes the 1 BTC in one step."""
        markets = tuple(replace(m, partial_liquidation=False) for m in FREE)
        ex = _venue("isolated", "10000", markets)
        (whole,) = _liquidations(_to_liquidation_price(ex))
        assert (whole.qty, whole.left) == (1000, 0)
        assert ex.positions("alice") == []


class TestCross:
    """Partial liquidation of a cross position."""

    def test_a_step_keeps_the_wallet_and_pays_the_fee_from_the_fills_surplus(
        self,
    ) -> None:
        """Cross, 3,200 wallet: 0.124 BTC sold at 57,000, 200 above bankruptcy.

        The fills made 0.124 x 200 = 24.8 beyond the bankruptcy price (56,800);
        the clearance fee (0.5% of 0.124 x 56,800 = 35.216) is capped at it.
        """
        ex = _venue("cross", "3200")
        events = _to_liquidation_price(ex)
        (step,) = _liquidations(events)
        assert (step.qty, step.left, step.bankruptcy_price) == (124, 876, 568_000)
        fills = [e for e in events if isinstance(e, OrderFilled)]
        assert [(f.price, f.qty) for f in fills] == [(570_000, 124)]
        assert (step.fee, step.surplus) == (to_e8("24.8"), 0)
        fund = [e for e in events if isinstance(e, InsuranceFundChanged)]
        assert [(e.amount, e.reason) for e in fund] == [
            (to_e8("24.8"), "liquidation_fee")
        ]
        kept = position(ex, "alice", BTC)
        assert kept["contracts"] == D("0.876")
        # 3,200 - 0.124 x 3,000 realized - 24.8 fee
        assert ex.balance("alice")["wallet"] == D("2803.2")


def test_step_keeps_the_most_lots_under_the_lower_cap() -> None:
    """One lot more than kept would reach the lower tier's cap at the mark."""
    ex = _venue("isolated", "10000")
    _to_liquidation_price(ex)
    risk = ex.core.ledger.markets[BTC]
    cap = risk.tiers.tiers[0].cap
    assert risk.value(873, risk.mark) < cap <= risk.value(874, risk.mark)


class TestConfig:
    """The market's partial_liquidation setting, from TOML and from Python."""

    def test_toml_turns_partial_liquidation_off(self) -> None:
        """``partial_liquidation = false`` in a market's table is read as False."""
        (market,) = markets_from_toml(
            '[markets.X]\ntick_size = "1"\nlot_size = "1"\n'
            "partial_liquidation = false\n"
        )
        assert market.partial_liquidation is False
        assert market.as_mapping()["partial_liquidation"] is False

    def test_a_non_boolean_from_python_is_refused(self) -> None:
        """``partial_liquidation="false"`` (truthy) is refused, not taken as on."""
        with pytest.raises(ValueError, match="partial_liquidation"):
            Market.from_decimals(
                "X",
                tick_size="1",
                lot_size="1",
                partial_liquidation="false",  # type: ignore[arg-type]
            )

    def test_a_non_boolean_is_refused(self) -> None:
        """A string where true/false belongs is a config error naming the key."""
        with pytest.raises(ConfigError, match="partial_liquidation"):
            markets_from_toml(
                '[markets.X]\ntick_size = "1"\nlot_size = "1"\n'
                'partial_liquidation = "yes"\n'
            )
