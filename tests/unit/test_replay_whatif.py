"""Tests of ``paperx replay whatif``: the flipped run is the run recorded directly."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from replay_rig import margin_stream, record_crash, record_stream, story_venue

from exchange import Exchange
from exchange.cli.main import main
from exchange.journal import open_journal
from exchange.messages import PositionLiquidated
from replay.log import ExchangeLog
from replay.rerun_changed import rerun_header
from replay.settings import parse_settings
from replay.whatif import FLIP, WhatIf, what_if

if TYPE_CHECKING:
    from pathlib import Path

    from clients.margin_flow import MarginStream
    from exchange.journal.payload import Journaled


def _what_if_journal(source: Path, out: Path) -> WhatIf:
    """Run the what-if of ``source``, keeping the flipped run in ``out``."""
    log = ExchangeLog(source)
    settings = parse_settings([FLIP], [m.symbol for m in log.markets])
    header = rerun_header(log, settings.markets(log.markets), settings.texts)
    with open_journal(out, header=header, fsync="off") as journal:
        return what_if(log, journal=journal)


def _entries(path: Path) -> list[Journaled]:
    return list(ExchangeLog(path).entries())


@pytest.fixture(scope="module")
def stream() -> MarginStream:
    """Three thousand flow commands of a thousand accounts (seed 7)."""
    return margin_stream()


class TestTheTruth:
    """A what-if gives exactly the run recorded directly under the other modes."""

    @pytest.mark.parametrize(
        ("recorded", "direct"),
        [
            (("isolated", "cross"), ("cross", "isolated")),
            (("cross", "isolated"), ("isolated", "cross")),
        ],
    )
    def test_crash_what_if_equals_the_run_recorded_in_the_other_modes(
        self, tmp_path: Path, recorded: tuple[str, str], direct: tuple[str, str]
    ) -> None:
        """The flipped journal holds the same records and events as the direct run."""
        record_crash(tmp_path / "recorded", *recorded)
        record_crash(tmp_path / "direct", *direct)
        _what_if_journal(tmp_path / "recorded", tmp_path / "flipped")
        assert _entries(tmp_path / "flipped") == _entries(tmp_path / "direct")

    @pytest.mark.parametrize("flip", [False, True])
    def test_stream_what_if_equals_the_run_recorded_in_the_other_modes(
        self, tmp_path: Path, stream: MarginStream, flip: bool
    ) -> None:
        """On a random margin stream with liquidations, both ways, record for record."""
        record_stream(tmp_path / "recorded", stream, flip=flip)
        record_stream(tmp_path / "direct", stream, flip=not flip)
        result = _what_if_journal(tmp_path / "recorded", tmp_path / "flipped")
        flipped, direct = _entries(tmp_path / "flipped"), _entries(tmp_path / "direct")
        assert flipped == direct
        liquidated = [
            e for x in direct for e in x.events if isinstance(e, PositionLiquidated)
        ]
        assert liquidated
        assert result.summary.liquidations == sum(
            x.record.command.__class__.__name__ == "Liquidate" for x in direct
        )


class TestTheCrash:
    """The README's story: isolated liquidates and keeps the wallet, cross survives."""

    def test_isolated_recording_liquidates_and_its_cross_what_if_survives(
        self, tmp_path: Path
    ) -> None:
        """Alice loses her 3,000 bucket in isolated, nothing is liquidated in cross."""
        record_crash(tmp_path / "j", "isolated", "cross")
        result = what_if(ExchangeLog(tmp_path / "j"))
        rec, alt = result.recorded.account("alice"), result.flipped.account("alice")
        assert [(liq.symbol, liq.mode) for liq in rec.liquidations] == [
            ("BTC-PERP", "isolated")
        ]
        assert not rec.wallet_touched
        assert rec.equity == 10_000 * 10**8 - 3_000 * 10**8 - 15 * 10**8
        assert alt.liquidations == []
        assert alt.equity == rec.equity + 2_000 * 10**8  # long 0.5 marked at 58,000
        assert result.accounts()[0] in {"alice", "bob"}

    def test_cross_recording_shows_the_isolated_liquidation_it_avoided(
        self, tmp_path: Path
    ) -> None:
        """The what-if of the cross run is the isolated run: one liquidation."""
        record_crash(tmp_path / "j", "cross", "isolated")
        result = what_if(ExchangeLog(tmp_path / "j"))
        assert result.recorded.account("alice").liquidations == []
        assert len(result.flipped.account("alice").liquidations) == 1
        assert result.summary.recorded_liquidations == 0
        assert result.summary.liquidations == 1


class TestRefusals:
    """Commands the other mode refuses are reported by account."""

    def test_isolated_margin_adjustment_is_reported_when_cross_refuses_it(
        self, tmp_path: Path
    ) -> None:
        """An AdjustMargin accepted in isolated is refused in cross, and listed."""
        ex = story_venue(tmp_path / "j")
        ex.deposit("alice", "10000")
        ex.deposit("bob", "1000000")
        ex.set_index_price("BTC-PERP", "60000")
        ex.set_margin_mode("alice", "BTC-PERP", "isolated")
        ex.place_order("bob", "BTC-PERP", "sell", "limit", "0.5", "60000")
        ex.place_order("alice", "BTC-PERP", "buy", "market", "0.5")
        ex.adjust_margin("alice", "BTC-PERP", "500")
        ex.close()
        result = what_if(ExchangeLog(tmp_path / "j"))
        refused = result.refused("alice")
        assert [r.command for r in refused] == ["adjust_margin"]
        assert (
            result.to_json()["accounts"]["alice"]["refused"][0]["code"]
            == refused[0].code
        )


class TestCommandLine:
    """``paperx replay whatif`` prints a table, JSON, and a PNG."""

    def test_whatif_prints_both_runs_side_by_side(self, tmp_path: Path, capsys) -> None:
        """The table names both modes and the isolated liquidation."""
        record_crash(tmp_path / "j", "isolated", "cross")
        png = tmp_path / "whatif.png"
        assert main(["replay", "whatif", str(tmp_path / "j"), "--png", str(png)]) == 0
        out = capsys.readouterr().out
        assert "recorded (isolated)" in out
        assert "what-if (cross)" in out
        assert "1 (07:00:02 BTC-PERP @ 54,000.00)" in out
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    def test_whatif_json_keeps_the_flipped_journal_that_verifies(
        self, tmp_path: Path, capsys
    ) -> None:
        """--json is parseable, and the --out journal passes verify."""
        record_crash(tmp_path / "j", "isolated", "cross")
        out_dir = tmp_path / "flipped"
        assert (
            main(
                [
                    "replay",
                    "whatif",
                    str(tmp_path / "j"),
                    "--json",
                    "--out",
                    str(out_dir),
                ]
            )
            == 0
        )
        data = json.loads(capsys.readouterr().out)
        assert (
            data["accounts"]["alice"]["recorded"]["liquidations"][0]["mode"]
            == "isolated"
        )
        assert data["accounts"]["alice"]["what_if"]["liquidations"] == []
        assert main(["replay", "verify", str(out_dir)]) == 0

    def test_whatif_of_a_journal_without_margin_is_refused(
        self, tmp_path: Path, capsys
    ) -> None:
        """A journal without margin has no modes: exit 2 with a reason."""
        Exchange(journal=tmp_path / "j").close()
        assert main(["replay", "whatif", str(tmp_path / "j")]) == 2
        assert "without margin" in capsys.readouterr().err
