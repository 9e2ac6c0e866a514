"""Tests of ``paperx replay report``: per-account and per-market statistics of a run."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from replay_rig import record_crash

from exchange.cli.main import main
from replay.log import ExchangeLog
from replay.whatif import recorded_stats

if TYPE_CHECKING:
    from pathlib import Path

E8 = 10**8


class TestStats:
    """The statistics of the README's crash under isolated margin."""

    def test_accounts_and_market_add_up(self, tmp_path: Path) -> None:
        """Two fills of 0.5, fees, alice's realized loss, one liquidation."""
        record_crash(tmp_path / "j", "isolated", "cross")
        stats = recorded_stats(ExchangeLog(tmp_path / "j"))
        market = stats.markets["BTC-PERP"]
        assert (market.fills, market.volume, market.liquidations) == (2, 1 * E8, 1)
        alice = stats.accounts["alice"]
        assert alice.realized == -2_950 * E8  # sold at 54,100
        assert alice.max_position == {"BTC-PERP": E8 // 2}
        assert alice.largest_loss == -3_015 * E8  # the loss, the fee, the clearance fee
        assert alice.max_drawdown == 3_015 * E8
        assert stats.accounts["bob"].funding == 0


class TestCommandLine:
    """``paperx replay report`` prints tables, JSON, and plots."""

    def test_report_prints_markets_and_accounts(self, tmp_path: Path, capsys) -> None:
        """The table lists the market and both accounts, the busiest first."""
        record_crash(tmp_path / "j", "isolated", "cross")
        plots = tmp_path / "plots"
        assert main(["replay", "report", str(tmp_path / "j"), "--png", str(plots)]) == 0
        out = capsys.readouterr().out
        assert "BTC-PERP" in out
        assert "alice" in out
        assert "bob" in out
        assert sorted(p.name for p in plots.iterdir()) == ["equity.png", "marks.png"]

    def test_report_json_holds_every_account(self, tmp_path: Path, capsys) -> None:
        """--json is parseable and names the liquidation."""
        record_crash(tmp_path / "j", "isolated", "cross")
        assert main(["replay", "report", str(tmp_path / "j"), "--json"]) == 0
        data = json.loads(capsys.readouterr().out)
        assert data["markets"]["BTC-PERP"]["liquidations"] == 1
        assert data["accounts"]["alice"]["liquidations"][0]["mark"] == "54000"
