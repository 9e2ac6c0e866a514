"""Tests of stop and take-profit orders that trigger on the mark price."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from exchange import Exchange, Market, RejectCode, Rejected
from exchange.messages import OrderTriggered, SetIndexPrice
from exchange.units import to_e8
from replay.log import ExchangeLog
from replay.verify import verify

BTC = Market.from_decimals(
    "BTC-PERP",
    tick_size="0.1",
    lot_size="0.001",
    max_price="4529764",
    mark_source="index",
)


def _venue(journal: Path | None = None) -> Exchange:
    """Funded accounts, mark 60,000, a resting bid at 59,000 and ask at 61,000."""
    ex = Exchange([BTC], margin=True, journal=journal, fsync="off")
    for account in ("mm", "t"):
        ex.deposit(account, "100000")
    ex.set_index_price("BTC-PERP", "60000")
    ex.place_order("mm", "BTC-PERP", "buy", "limit", "1", "59000")
    ex.place_order("mm", "BTC-PERP", "sell", "limit", "1", "61000")
    return ex


class TestMarkTriggers:
    """Stop and take-profit orders triggered by the mark price."""

    def test_sell_stop_fires_when_the_mark_falls_to_it_without_any_trade(self) -> None:
        """A mark move alone fires the stop; it then trades in the book."""
        ex = _venue()
        stop = ex.place_order(
            "t",
            "BTC-PERP",
            "sell",
            "stop_market",
            "0.5",
            trigger_price="59500",
            trigger_by="mark",
        )
        assert stop.status == "new"
        ex.set_index_price("BTC-PERP", "59600")
        assert ex.positions("t") == []
        ex.set_index_price("BTC-PERP", "59500")
        position = ex.positions("t")[0]
        assert (position["side"], position["contracts"]) == ("short", Decimal("0.5"))
        assert position["entry_price"] == Decimal(59000)

    def test_a_last_price_stop_ignores_the_mark(self) -> None:
        """The same stop on the last trade price does not fire on a mark move."""
        ex = _venue()
        ex.place_order(
            "t", "BTC-PERP", "sell", "stop_market", "0.5", trigger_price="59500"
        )
        ex.set_index_price("BTC-PERP", "59000")
        assert ex.positions("t") == []
        assert len(ex.open_orders("t")) == 1

    def test_buy_take_profit_on_mark_reports_the_mark_in_ticks(self) -> None:
        """A take-profit buy fires when the mark falls to it; the event says why."""
        ex = _venue()
        ex.place_order(
            "t",
            "BTC-PERP",
            "buy",
            "take_profit_market",
            "0.2",
            trigger_price="59800",
            trigger_by="mark",
        )
        _, events = ex.submit(SetIndexPrice(symbol="BTC-PERP", price=to_e8("59750.05")))
        triggered = [e for e in events if isinstance(e, OrderTriggered)]
        assert [e.last_price for e in triggered] == [597500]
        assert ex.positions("t")[0]["side"] == "long"

    def test_a_mark_stop_already_past_its_trigger_is_refused(self) -> None:
        """A mark stop the mark has already reached is WOULD_TRIGGER_IMMEDIATELY."""
        ex = _venue()
        with pytest.raises(Rejected) as info:
            ex.place_order(
                "t",
                "BTC-PERP",
                "sell",
                "stop_market",
                "0.5",
                trigger_price="60000",
                trigger_by="mark",
            )
        assert info.value.code == RejectCode.WOULD_TRIGGER_IMMEDIATELY

    def test_mark_triggers_need_the_margin_ledger(self) -> None:
        """Without margin there is no mark, so a mark trigger is refused."""
        ex = Exchange([BTC])
        with pytest.raises(Rejected) as info:
            ex.place_order(
                "t",
                "BTC-PERP",
                "sell",
                "stop_market",
                "0.5",
                trigger_price="59000",
                trigger_by="mark",
            )
        assert info.value.code == RejectCode.MARGIN_DISABLED

    def test_canceled_mark_stop_never_fires_and_the_log_replays(
        self, tmp_path: Path
    ) -> None:
        """Cancel removes a parked mark stop; the journal verifies both ways."""
        ex = _venue(tmp_path / "j")
        keep = ex.place_order(
            "t",
            "BTC-PERP",
            "sell",
            "stop_market",
            "0.1",
            trigger_price="59500",
            trigger_by="mark",
        )
        gone = ex.place_order(
            "t",
            "BTC-PERP",
            "sell",
            "stop_limit",
            "0.1",
            "59400",
            trigger_price="59600",
            trigger_by="mark",
        )
        ex.cancel_order("t", gone.order_id)
        ex.set_index_price("BTC-PERP", "59400")
        assert keep.order_id not in [o["order_id"] for o in ex.open_orders("t")]
        assert ex.positions("t")[0]["contracts"] == Decimal("0.1")
        ex.close()
        assert verify(ExchangeLog(tmp_path / "j")).ok

    def test_an_unknown_trigger_source_is_malformed(self) -> None:
        """A trigger_by other than "last" or "mark" never reaches the journal."""
        ex = _venue()
        seq = ex.core.last_seq
        with pytest.raises(Rejected) as info:
            ex.place_order(
                "t",
                "BTC-PERP",
                "sell",
                "stop_market",
                "0.5",
                trigger_price="59000",
                trigger_by="index",
            )
        assert info.value.code == RejectCode.MALFORMED
        assert ex.core.last_seq == seq
