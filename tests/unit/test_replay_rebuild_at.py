"""Tests of ``paperx replay rebuild --at``: the state of a run at any point."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from replay_rig import record_crash

from exchange.cli.main import main
from replay.fmt import iso_utc, parse_iso_utc
from replay.log import ExchangeLog
from replay.state_at import rebuild_until, state_view

if TYPE_CHECKING:
    from pathlib import Path


class TestStateAt:
    """The rebuilt state after a seq or at a time."""

    def test_state_after_the_trade_shows_the_isolated_long(
        self, tmp_path: Path
    ) -> None:
        """After record 9 alice is long 0.5 at 60,000 with her liquidation price."""
        record_crash(tmp_path / "j", "isolated", "cross")
        view = state_view(rebuild_until(ExchangeLog(tmp_path / "j"), seq=9))
        assert view["seq"] == 9
        (position,) = view["accounts"]["alice"]["positions"]
        assert position["entry_price"] == "60000"
        assert position["liquidation_price"] == "54216.86746988"
        assert position["margin_mode"] == "isolated"
        assert view["books"]["BTC-PERP"]["bids"] == [["54100", "0.5"]]
        assert view["insurance_fund"] == "0"

    def test_state_at_a_time_includes_every_record_stamped_by_then(
        self, tmp_path: Path
    ) -> None:
        """At 07:00:02 the liquidation (stamped then) has happened; at 07:00:01 not."""
        record_crash(tmp_path / "j", "isolated", "cross")
        log = ExchangeLog(tmp_path / "j")
        before = state_view(
            rebuild_until(log, ts_ns=parse_iso_utc("2024-03-01T07:00:01Z"))
        )
        after = state_view(
            rebuild_until(
                ExchangeLog(tmp_path / "j"), ts_ns=parse_iso_utc("2024-03-01T07:00:02Z")
            )
        )
        assert before["accounts"]["alice"]["positions"]
        assert after["accounts"]["alice"]["positions"] == []
        assert after["insurance_fund"] == "50"

    def test_iso_times_round_trip(self) -> None:
        """An exchange time prints as ISO-8601 UTC and parses back to the ms."""
        ts = 1_709_276_400_123_000_000
        assert iso_utc(ts) == "2024-03-01T07:00:00.123Z"
        assert parse_iso_utc(iso_utc(ts)) == ts


class TestCommandLine:
    """``paperx replay rebuild`` prints tables or JSON."""

    def test_rebuild_prints_books_balances_and_positions(
        self, tmp_path: Path, capsys
    ) -> None:
        """The table shows the book, the balances and alice's liquidation price."""
        record_crash(tmp_path / "j", "isolated", "cross")
        assert main(["replay", "rebuild", str(tmp_path / "j"), "--at", "9"]) == 0
        out = capsys.readouterr().out
        assert "state after seq 9" in out
        assert "54216.86746988" in out
        assert "insurance fund  0" in out

    def test_rebuild_json_at_a_time_for_one_account(
        self, tmp_path: Path, capsys
    ) -> None:
        """--json with --account gives that account only, at the end of the run."""
        record_crash(tmp_path / "j", "isolated", "cross")
        args = ["replay", "rebuild", str(tmp_path / "j"), "--json", "--account", "bob"]
        assert main([*args, "--at", "2024-03-01T08:00:00Z"]) == 0
        data = json.loads(capsys.readouterr().out)
        assert list(data["accounts"]) == ["bob"]
        assert data["time"] == "2024-03-01T07:00:04.000Z"

    def test_rebuild_of_a_missing_journal_or_a_bad_time_exits_2(
        self, tmp_path: Path, capsys
    ) -> None:
        """A directory that is not there, or a time that is not one, is refused."""
        assert main(["replay", "rebuild", str(tmp_path / "none")]) == 2
        record_crash(tmp_path / "j", "isolated", "cross")
        assert (
            main(["replay", "rebuild", str(tmp_path / "j"), "--at", "yesterday"]) == 2
        )
        assert "paperx:" in capsys.readouterr().err
