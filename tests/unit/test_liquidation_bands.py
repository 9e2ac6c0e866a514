"""Cross accounts holding several markets: safe bands instead of a scan per tick."""

from __future__ import annotations

from decimal import Decimal

import pytest

from exchange import Exchange, Market
from exchange.messages import Command, MarginCall, PositionLiquidated, SetIndexPrice
from exchange.units import to_e8

BTC = Market.from_decimals(
    "BTC-PERP",
    tick_size="0.1",
    lot_size="0.001",
    max_price="4529764",
    mark_source="index",
)
ETH = Market.from_decimals(
    "ETH-PERP",
    tick_size="0.01",
    lot_size="0.001",
    max_price="306177",
    mark_source="index",
)


def _hedged() -> Exchange:
    """Cross trader long 0.5 BTC @ 60,000 and long 5 ETH @ 3,000 with 5,000 USDT."""
    ex = Exchange([BTC, ETH], margin=True)
    ex.deposit("t", "5000")
    ex.deposit("mm", "10000000")
    ex.set_index_price("BTC-PERP", "60000")
    ex.set_index_price("ETH-PERP", "3000")
    ex.place_order("mm", "BTC-PERP", "sell", "limit", "0.5", "60000")
    ex.place_order("t", "BTC-PERP", "buy", "market", "0.5")
    ex.place_order("mm", "ETH-PERP", "sell", "limit", "5", "3000")
    ex.place_order("t", "ETH-PERP", "buy", "market", "5")
    ex.place_order("mm", "BTC-PERP", "buy", "limit", "5", "40000")
    ex.place_order("mm", "ETH-PERP", "buy", "limit", "50", "2000")
    return ex


def _due(ex: Exchange) -> bool:
    """Return True if the trader's cross margin balance is at or below its MM."""
    ledger = ex.core.ledger
    account = ledger.accounts["t"]
    upnl, _, mm = ledger.settlement.cross_totals(account)
    return account.wallet + upnl <= mm


class TestSafeBands:
    """The liquidation index's safe bands never hide a due liquidation."""

    def test_indexed_edges_lie_between_the_mark_and_the_liquidation_price(self) -> None:
        """A two-market cross account is indexed at band edges, not at a price scan."""
        ex = _hedged()
        liquidator = ex.core.liquidator
        assert liquidator is not None
        for symbol, lp_key in (("BTC-PERP", 0), ("ETH-PERP", 1)):
            is_long, edge = liquidator.indexes[symbol].at["t"]
            mark = ex.core.ledger.markets[symbol].mark
            lp = ex.positions("t")[lp_key]["liquidation_price"]
            assert is_long
            assert Decimal(lp) * 10**8 < edge < mark

    @pytest.mark.parametrize("symbol", ["BTC-PERP", "ETH-PERP"])
    def test_liquidation_comes_exactly_when_it_is_due(self, symbol: str) -> None:
        """Walking one market down, the margin call comes at the first due mark."""
        ex = _hedged()
        start = Decimal(60000) if symbol == "BTC-PERP" else Decimal(3000)
        called = False
        for step in range(1, 400):
            price = start * (1 - Decimal(step) / 1000)
            due_before = _due(ex)
            assert not due_before
            _, events = ex.submit(_index(symbol, price))
            called = any(isinstance(e, MarginCall) for e in events)
            if called:
                break
            assert not _due(ex), f"due at {price} without a margin call"
        assert called
        assert any(isinstance(e, PositionLiquidated) for e in ex.system_events)

    def test_alternating_moves_in_both_markets_never_miss_a_liquidation(self) -> None:
        """Both marks drift down in turns; the account is never due uncalled."""
        ex = _hedged()
        btc, eth = Decimal(60000), Decimal(3000)
        for _ in range(300):
            btc *= Decimal("0.997")
            eth *= Decimal("0.996")
            for symbol, price in (("BTC-PERP", btc), ("ETH-PERP", eth)):
                _, events = ex.submit(_index(symbol, price))
                if any(isinstance(e, MarginCall) for e in events):
                    assert not ex.positions("t")
                    return
                assert not _due(ex)
        pytest.fail("the walk never liquidated the account")


def _index(symbol: str, price: Decimal) -> Command:
    """An index command at ``price`` rounded to 8 decimals."""
    return SetIndexPrice(symbol=symbol, price=to_e8(price.quantize(Decimal("1e-8"))))
