"""What a guide to margin modes says, shown on the same trades under both modes.

Isolated margin caps the loss per position and liquidates sooner; cross margin
shares the wallet, survives longer, and can lose more.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from exchange import Exchange, Market
from exchange.messages import MarginCall, PositionLiquidated

BTC = Market.from_decimals(
    "BTC-PERP",
    tick_size="0.1",
    lot_size="0.001",
    max_price="4529764",
    maker_fee="0",
    taker_fee="0",
    mark_source="index",
)
ETH = Market.from_decimals(
    "ETH-PERP",
    tick_size="0.01",
    lot_size="0.001",
    max_price="306177",
    maker_fee="0",
    taker_fee="0",
    mark_source="index",
)


def _venue(mode: str) -> Exchange:
    """A trader 't' with 10,000 USDT, a counterparty 'mm', and a bid ladder 'lp'."""
    ex = Exchange([BTC, ETH], margin=True)
    ex.deposit("t", "10000")
    ex.deposit("mm", "1000000")
    ex.deposit("lp", "1000000")
    ex.set_index_price("BTC-PERP", "60000")
    ex.set_index_price("ETH-PERP", "3000")
    for symbol in ("BTC-PERP", "ETH-PERP"):
        ex.set_margin_mode("t", symbol, mode)
        ex.set_leverage("t", symbol, 10)
    ex.place_order("mm", "BTC-PERP", "sell", "limit", "0.5", "60000")
    ex.place_order("t", "BTC-PERP", "buy", "market", "0.5")  # long 0.5 BTC @ 60,000
    return ex


def _liquidity_below(ex: Exchange, symbol: str, prices: list[str], qty: str) -> None:
    """Rest bids of ``qty`` at each price, to absorb liquidation orders."""
    for price in prices:
        ex.place_order("lp", symbol, "buy", "limit", qty, price)


def _walk(ex: Exchange, symbol: str, prices: list[str]) -> list[object]:
    """Move the index along ``prices``; return every liquidation event seen."""
    seen: list[object] = []
    for price in prices:
        ex.set_index_price(symbol, price)
        seen += [e for e in ex.system_events if isinstance(e, PositionLiquidated)]
    return seen


def _equity(ex: Exchange) -> Decimal:
    return ex.balance("t")["total"]


class TestOnePosition:
    """The same long, held isolated or cross, as the price dips and keeps falling."""

    def test_isolated_liquidates_in_a_dip_that_cross_survives(self) -> None:
        """At 54,000 the isolated long (LP 54,216.87) is gone, the cross long lives."""
        isolated, cross = _venue("isolated"), _venue("cross")
        for ex in (isolated, cross):
            _liquidity_below(ex, "BTC-PERP", ["53900", "53500"], "1")
        assert isolated.positions("t")[0]["liquidation_price"] == Decimal(
            "54216.86746988"
        )
        assert _walk(isolated, "BTC-PERP", ["57000", "54000", "58000"])
        assert not _walk(cross, "BTC-PERP", ["57000", "54000", "58000"])
        assert isolated.positions("t") == []
        assert cross.positions("t")[0]["contracts"] == Decimal("0.5")
        assert _equity(cross) == Decimal(10000) - Decimal("0.5") * (60000 - 58000)

    def test_isolated_loses_at_most_its_bucket_and_the_wallet_is_untouched(
        self,
    ) -> None:
        """Liquidation takes the 3,000 bucket and nothing of the other 7,000."""
        ex = _venue("isolated")
        _liquidity_below(ex, "BTC-PERP", ["53000"], "1")  # a deep gap below
        _walk(ex, "BTC-PERP", ["54000"])
        assert ex.positions("t") == []
        assert ex.balance("t")["wallet"] == Decimal(7000)
        assert ex.balance("t")["free"] == Decimal(7000)

    def test_cross_loses_more_when_the_dip_continues(self) -> None:
        """A dip to 40,000 liquidates cross too, and it takes the whole wallet."""
        isolated, cross = _venue("isolated"), _venue("cross")
        for ex in (isolated, cross):
            _liquidity_below(ex, "BTC-PERP", ["53900", "40100", "39000"], "1")
        path = ["57000", "54000", "48000", "42000", "40000"]
        _walk(isolated, "BTC-PERP", path)
        liquidated = _walk(cross, "BTC-PERP", path)
        assert liquidated
        assert liquidated[0].mode == "cross"
        iso_loss = Decimal(10000) - _equity(isolated)
        cross_loss = Decimal(10000) - _equity(cross)
        assert iso_loss == Decimal(3000)
        assert cross_loss == Decimal(10000)
        assert cross_loss > iso_loss

    def test_cross_liquidation_price_sits_far_below_the_isolated_one(self) -> None:
        """The shared wallet moves the cross liquidation price to about 40,160."""
        isolated, cross = _venue("isolated"), _venue("cross")
        iso_lp = isolated.positions("t")[0]["liquidation_price"]
        cross_lp = cross.positions("t")[0]["liquidation_price"]
        # (W - q EP) / (q MMR - q) with W 10,000, q 0.5, EP 60,000, MMR 0.4%
        assert cross_lp == pytest.approx(Decimal("40160.64257"), abs=Decimal("0.01"))
        assert cross_lp < iso_lp


class TestHedgedPair:
    """A long and a short in two markets: cross nets them, isolated does not."""

    def _hedged(self, mode: str) -> Exchange:
        """Long 0.5 BTC and short 10 ETH: a move down hurts one leg, helps the other."""
        ex = _venue(mode)
        ex.place_order("mm", "ETH-PERP", "buy", "limit", "10", "3000")
        ex.place_order("t", "ETH-PERP", "sell", "market", "10")
        _liquidity_below(ex, "BTC-PERP", ["53900", "53000"], "1")
        return ex

    def test_cross_hedge_survives_a_move_that_liquidates_the_isolated_leg(self) -> None:
        """BTC -10% and ETH -10%: the isolated BTC leg is liquidated, cross holds."""
        isolated, cross = self._hedged("isolated"), self._hedged("cross")
        for ex in (isolated, cross):
            ex.set_index_price("ETH-PERP", "2700")
            _walk(ex, "BTC-PERP", ["54000"])
        assert [p["symbol"] for p in isolated.positions("t")] == ["ETH-PERP"]
        assert [p["symbol"] for p in cross.positions("t")] == ["BTC-PERP", "ETH-PERP"]
        calls = [e for e in cross.system_events if isinstance(e, MarginCall)]
        assert calls == []
