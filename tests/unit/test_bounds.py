"""Amounts the journal could not hold are refused, not stored."""

from __future__ import annotations

import pytest

from exchange import Exchange, RejectCode, Rejected
from exchange.margin.ledger import MAX_BALANCE
from exchange.units import from_e8


class TestBounds:
    """Numbers past what a market or a balance can hold are refused, never stored."""

    def test_an_index_outside_the_market_limits_is_refused(self) -> None:
        """An index above the market's max price is PRICE_OUT_OF_RANGE."""
        ex = Exchange(margin=True)
        with pytest.raises(Rejected) as info:
            ex.set_index_price("BTC-PERP", "18445821782")
        assert info.value.code == RejectCode.PRICE_OUT_OF_RANGE

    def test_a_number_no_command_can_carry_is_malformed(self) -> None:
        """A value past 64 bits is refused at the edge, before the journal."""
        ex = Exchange(margin=True)
        with pytest.raises(Rejected) as info:
            ex.set_index_price("BTC-PERP", "184458217826204206")
        assert info.value.code == RejectCode.MALFORMED
        ex.close()

    def test_a_wallet_never_grows_past_the_largest_balance(self) -> None:
        """Deposits that would pass MAX_BALANCE are refused; up to it they land."""
        ex = Exchange(margin=True)
        ex.deposit("a", from_e8(MAX_BALANCE - 1))
        with pytest.raises(Rejected) as info:
            ex.deposit("a", "0.00000002")
        assert info.value.code == RejectCode.INVALID_AMOUNT
        assert ex.balance("a")["wallet"] == from_e8(MAX_BALANCE - 1)
        ex.close()  # the journal can encode the largest balance

    def test_a_daily_loss_limit_past_the_largest_balance_is_refused(self) -> None:
        """A loss limit the journal could not hold is refused."""
        ex = Exchange(margin=True)
        with pytest.raises(Rejected) as info:
            ex.set_risk_limits("a", daily_loss_limit=from_e8(MAX_BALANCE + 1))
        assert info.value.code == RejectCode.INVALID_AMOUNT
