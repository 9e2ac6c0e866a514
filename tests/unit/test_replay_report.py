"""Tests of ``paperx replay report``: per-account and per-market statistics of a run."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import msgspec
import pytest
from replay_rig import BTC, record_crash, story_venue

from exchange import Exchange
from exchange.cli.main import main
from exchange.errors import Rejected
from exchange.gateway.stress import RejectSettings, StressSettings
from exchange.markets import Market
from exchange.messages import DeclareStress, InjectReject, PlaceOrder
from replay.fmt import money
from replay.log import ExchangeLog
from replay.plots import plot_run
from replay.whatif import recorded_stats

if TYPE_CHECKING:
    from pathlib import Path

E8 = 10**8
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


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

    def test_an_account_shows_the_modes_and_leverages_of_its_positions(
        self, tmp_path: Path
    ) -> None:
        """Alice's isolated 10x and bob's cross at the default 20x are labelled."""
        record_crash(tmp_path / "j", "isolated", "cross")
        stats = recorded_stats(ExchangeLog(tmp_path / "j"))
        alice, bob = stats.accounts["alice"], stats.accounts["bob"]
        assert (alice.mode_label, alice.leverage_label) == ("isolated", "10x")
        assert (bob.mode_label, bob.leverage_label) == ("cross", "20x")

    def test_the_pnl_is_equity_less_deposits_after_every_fee(
        self, tmp_path: Path
    ) -> None:
        """Alice ends 3,015 down: her 3,000 bucket and the 15 opening fee."""
        record_crash(tmp_path / "j", "isolated", "cross")
        alice = recorded_stats(ExchangeLog(tmp_path / "j")).accounts["alice"]
        assert alice.deposits == 10_000 * E8
        assert alice.pnl == -3_015 * E8
        assert (alice.fees, alice.liquidation_fees) == (15 * E8, 50 * E8)

    def test_the_run_counts_its_fills_and_liquidations_over_its_span(
        self, tmp_path: Path
    ) -> None:
        """Two fills and one liquidation, from the first record to 4 s later."""
        record_crash(tmp_path / "j", "isolated", "cross")
        stats = recorded_stats(ExchangeLog(tmp_path / "j"))
        assert (stats.fills, stats.liquidations) == (2, 1)
        assert stats.last_ts - stats.first_ts == 4 * 10**9


class TestRequests:
    """Each account's requests and their rejects by code: how a client fared."""

    def test_requests_and_rejects_are_counted_per_account(self, tmp_path: Path) -> None:
        """Deposits are the operator's; orders, cancels and settings are requests."""
        ex = story_venue(tmp_path / "j")
        ex.deposit("carol", "100")
        ex.set_index_price(BTC, "60000")
        ex.set_leverage("carol", BTC, 5)
        ex.place_order("carol", BTC, "buy", "limit", "0.001", "59000")
        with pytest.raises(Rejected):  # 1 BTC needs 12,000 of margin at 5x
            ex.place_order("carol", BTC, "buy", "limit", "1", "60000")
        for _ in range(2):
            with pytest.raises(Rejected):
                ex.cancel_order("carol", order_id=999)
        ex.close()
        carol = recorded_stats(ExchangeLog(tmp_path / "j")).accounts["carol"]
        assert carol.requests == 5
        assert carol.rejects == {"UNKNOWN_ORDER": 2, "INSUFFICIENT_MARGIN": 1}

    def test_the_report_lists_the_rejects_by_code(self, tmp_path: Path, capsys) -> None:
        """The text has a requests table; the JSON the counts by code name."""
        ex = story_venue(tmp_path / "j")
        ex.deposit("dave", "100")
        with pytest.raises(Rejected):
            ex.cancel_order("dave", order_id=7)
        ex.close()
        assert main(["report", str(tmp_path / "j")]) == 0  # = paperx replay report
        lines = capsys.readouterr().out.splitlines()
        assert any(
            line.split()[:3] == ["dave", "1", "1"] and "UNKNOWN_ORDER 1" in line
            for line in lines
        )
        assert main(["replay", "report", str(tmp_path / "j"), "--json"]) == 0
        dave = json.loads(capsys.readouterr().out)["accounts"]["dave"]
        assert (dave["requests"], dave["rejects"]) == (1, {"UNKNOWN_ORDER": 1})


class TestRunPicture:
    """The demo's one-picture report, and its signed amounts."""

    def test_plot_run_writes_one_png_of_marks_and_equity(self, tmp_path: Path) -> None:
        """plot_run draws the crash into the PNG file it is given."""
        record_crash(tmp_path / "j", "isolated", "cross")
        stats = recorded_stats(ExchangeLog(tmp_path / "j"))
        path = plot_run(stats, tmp_path / "run.png", "the crash")
        assert path == tmp_path / "run.png"
        assert path.read_bytes().startswith(PNG_SIGNATURE)

    def test_money_signs_a_gain_only_when_asked(self) -> None:
        """A gain reads +1,234.50 when signed, a loss keeps its minus either way."""
        assert money(123_450 * E8 // 100, signed=True) == "+1,234.50"
        assert money(123_450 * E8 // 100) == "1,234.50"
        assert money(-5 * E8, signed=True) == "-5.00"


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
        """--json is parseable and names the liquidation and the leverage."""
        record_crash(tmp_path / "j", "isolated", "cross")
        assert main(["replay", "report", str(tmp_path / "j"), "--json"]) == 0
        data = json.loads(capsys.readouterr().out)
        assert data["markets"]["BTC-PERP"]["liquidations"] == 1
        assert data["accounts"]["alice"]["liquidations"][0]["mark"] == "54000"
        assert data["accounts"]["alice"]["leverages"] == [10]


class TestStressedRun:
    """A run under stress settings: the report shows them and how clients coped."""

    def _record(self, journal: Path) -> None:
        """Journal a declared stress, an injected reject and an open-order limit."""
        market = Market.from_decimals(
            "BTC-PERP", tick_size="0.1", lot_size="0.001", max_open_orders=1
        )
        order = PlaceOrder(
            account="alice",
            symbol="BTC-PERP",
            side="buy",
            type="limit",
            qty=E8 // 100,
            price=100 * E8,
            client_order_id="c1",
        )
        settings = StressSettings(reject=RejectSettings(accounts={"alice": 0.5}))
        with Exchange([market], journal=journal, margin=True) as venue:
            venue.deposit("alice", "1000")
            venue.submit(DeclareStress(settings=settings.as_json()))
            venue.submit(InjectReject(command=order))
            venue.submit(order)
            venue.submit(msgspec.structs.replace(order, client_order_id="c2"))

    def test_the_report_counts_rejects_by_code_and_shows_the_settings(
        self, tmp_path: Path, capsys
    ) -> None:
        """JSON and text name INJECTED_REJECT and MAX_OPEN_ORDERS, and the stress."""
        self._record(tmp_path / "j")
        assert main(["replay", "report", str(tmp_path / "j"), "--json"]) == 0
        data = json.loads(capsys.readouterr().out)
        alice = data["accounts"]["alice"]
        assert alice["rejects"] == {"INJECTED_REJECT": 1, "MAX_OPEN_ORDERS": 1}
        assert alice["requests"] == 3  # the injected reject is a request refused
        (stress,) = data["stress"]
        assert (stress["seq"], stress["settings"]["reject"]["accounts"]) == (
            2,
            {"alice": 0.5},
        )
        assert main(["replay", "report", str(tmp_path / "j")]) == 0
        out = capsys.readouterr().out
        assert "INJECTED_REJECT" in out
        assert "stress from record 2" in out

    def test_a_stressed_journal_verifies(self, tmp_path: Path, capsys) -> None:
        """Live, rebuild and rerun hashes agree over the stress records."""
        self._record(tmp_path / "j")
        assert main(["replay", "verify", str(tmp_path / "j")]) == 0
        assert "rerun hash" in capsys.readouterr().out
