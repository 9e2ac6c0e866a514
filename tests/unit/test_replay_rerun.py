"""Tests of ``paperx replay rerun --set``: a changed run, written as its own journal."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from clock import FixedClock
from replay_rig import BTC, STORY_MARKET, record_crash, story_venue

from exchange.cli.main import main
from exchange.errors import ConfigError
from exchange.journal import open_journal
from exchange.journal.payload import journaled_events
from exchange.messages import (
    CancelOrder,
    FundingPaid,
    OrderCanceled,
    OrderFilled,
    SetLeverage,
    SetMarginMode,
)
from replay.log import ExchangeLog
from replay.rerun_changed import ChangedRun, RerunSummary, rerun_header
from replay.settings import parse_settings
from replay.verify import verify

if TYPE_CHECKING:
    from pathlib import Path

HOUR_NS = 3600 * 10**9


def _rerun(source: Path, out: Path, texts: list[str]) -> RerunSummary:
    """Rerun ``source`` with ``texts`` into the journal ``out``."""
    log = ExchangeLog(source)
    settings = parse_settings(texts, [m.symbol for m in log.markets])
    run = ChangedRun(log, settings)
    with open_journal(
        out, header=rerun_header(log, run.markets, texts), fsync="off"
    ) as j:
        run.journal = j
        return run.run()


def _commands(path: Path) -> list[object]:
    return [e.record.command for e in ExchangeLog(path).entries()]


class TestSettings:
    """``--set KEY=VALUE`` texts parse into rules and market changes."""

    def test_most_specific_margin_mode_rule_wins(self) -> None:
        """An account-and-symbol rule beats an account rule, which beats any other."""
        s = parse_settings(
            [
                "margin_mode=cross",
                "margin_mode.alice=isolated",
                "margin_mode.alice.ETH-PERP=flip",
            ],
            ["BTC-PERP", "ETH-PERP"],
        )
        assert s.mode("bob", BTC, "isolated") == "cross"
        assert s.mode("alice", BTC, "cross") == "isolated"
        assert s.mode("alice", "ETH-PERP", "isolated") == "cross"

    def test_leverage_per_symbol_and_fee_per_market(self) -> None:
        """``leverage.BTC-PERP`` is every account in one market; fees change markets."""
        s = parse_settings(["leverage.BTC-PERP=5", "taker_fee.BTC-PERP=0.0004"], [BTC])
        assert s.leverage("anyone", BTC, 20) == 5
        assert s.markets([STORY_MARKET])[0].taker_fee_ppm == 400

    @pytest.mark.parametrize(
        "text",
        [
            "margin_mode=both",
            "leverage=0",
            "taker_fee.NOPE=0.1",
            "colour=red",
            "taker_fee",
        ],
    )
    def test_bad_settings_are_refused_with_a_reason(self, text: str) -> None:
        """Unknown keys, symbols and values raise ConfigError naming the text."""
        with pytest.raises(ConfigError, match="--set"):
            parse_settings([text], [BTC])

    def test_tier_file_replaces_the_tiers(self, tmp_path: Path) -> None:
        """``tiers=FILE`` reads ``[[tiers]]`` rows into the market table."""
        (tmp_path / "t.toml").write_text(
            '[[tiers]]\nfloor = "0"\ncap = "1000000"\nmax_leverage = 10\nmmr = "0.05"\n'
        )
        s = parse_settings(["tiers=t.toml"], [BTC], base=tmp_path)
        tiers = s.markets([STORY_MARKET])[0].tier_table()
        assert [t.max_leverage for t in tiers.tiers] == [10]


class TestRerun:
    """The new run is a journal of its own that verifies."""

    def test_rerun_without_settings_reproduces_the_journal_exactly(
        self, tmp_path: Path
    ) -> None:
        """No setting: the same records, the same events, the same hash."""
        record_crash(tmp_path / "a", "isolated", "cross")
        summary = _rerun(tmp_path / "a", tmp_path / "b", [])
        assert list(ExchangeLog(tmp_path / "b").entries()) == list(
            ExchangeLog(tmp_path / "a").entries()
        )
        assert summary.liquidations == summary.recorded_liquidations == 1
        assert verify(ExchangeLog(tmp_path / "b")).ok

    def test_fee_change_is_in_the_header_and_the_fills(self, tmp_path: Path) -> None:
        """A new taker fee is the new journal's config, charged on its fills."""
        record_crash(tmp_path / "a", "cross", "cross")
        _rerun(tmp_path / "a", tmp_path / "b", ["taker_fee=0.001"])
        log = ExchangeLog(tmp_path / "b")
        assert log.markets[0].taker_fee_ppm == 1000
        assert log.header.config["rerun"]["settings"] == ["taker_fee=0.001"]
        fill = next(
            e for x in log.entries() for e in x.events if isinstance(e, OrderFilled)
        )
        assert fill.taker_fee == 30 * 10**8  # 0.1% of 30,000
        assert verify(log).ok

    def test_mode_and_leverage_are_injected_before_the_first_order(
        self, tmp_path: Path
    ) -> None:
        """An account that never set them gets both just before its first order."""
        ex = story_venue(tmp_path / "a")
        ex.deposit("carol", "10000")
        ex.set_index_price(BTC, "60000")
        ex.place_order("carol", BTC, "buy", "limit", "0.1", "59000")
        ex.close()
        summary = _rerun(
            tmp_path / "a", tmp_path / "b", ["margin_mode=isolated", "leverage.carol=5"]
        )
        commands = _commands(tmp_path / "b")
        assert commands[2:4] == [
            SetMarginMode(account="carol", symbol=BTC, mode="isolated"),
            SetLeverage(account="carol", symbol=BTC, leverage=5),
        ]
        assert summary.injected == 2
        assert verify(ExchangeLog(tmp_path / "b")).ok

    def test_cancel_by_order_id_follows_its_order_into_the_new_run(
        self, tmp_path: Path
    ) -> None:
        """When ids shift, a cancel names the new run's id of the same order."""
        ex = story_venue(tmp_path / "a")
        ex.deposit("dan", "1000")
        ex.set_index_price(BTC, "60000")
        ex.place_order("dan", BTC, "buy", "limit", "0.1", "59000")  # refused at 1x
        kept = ex.place_order("dan", BTC, "buy", "limit", "0.01", "59000")
        ex.submit(CancelOrder(account="dan", order_id=kept.order_id))
        ex.close()
        summary = _rerun(tmp_path / "a", tmp_path / "b", ["leverage=1"])
        assert [r.command for r in summary.refused] == ["new"]
        canceled = [
            e
            for x in ExchangeLog(tmp_path / "b").entries()
            for e in x.events
            if isinstance(e, OrderCanceled)
        ]
        assert [c.order_id for c in canceled] == [1]  # the first order never was
        assert kept.order_id == 2

    def test_funding_off_pays_no_funding(self, tmp_path: Path) -> None:
        """``funding=off`` keeps every position's money through a funding time."""
        clock = FixedClock()
        ex = story_venue(tmp_path / "a", clock)
        for name in ("e", "f"):
            ex.deposit(name, "100000")
        ex.set_index_price(BTC, "60000")
        ex.place_order("e", BTC, "sell", "limit", "1", "60100")
        ex.place_order("f", BTC, "buy", "market", "1")
        clock.now += 2 * HOUR_NS  # past 08:00 UTC
        ex.set_index_price(BTC, "60000")
        ex.close()
        paid = [
            e
            for x in ExchangeLog(tmp_path / "a").entries()
            for e in journaled_events(x.events)
            if isinstance(e, FundingPaid)
        ]
        assert paid
        _rerun(tmp_path / "a", tmp_path / "b", ["funding=off"])
        log = ExchangeLog(tmp_path / "b")
        assert not [
            e for x in log.entries() for e in x.events if isinstance(e, FundingPaid)
        ]
        assert verify(log).ok


class TestCommandLine:
    """``paperx replay rerun`` writes the journal and summarises it."""

    def test_rerun_prints_its_summary_and_the_new_journal_verifies(
        self, tmp_path: Path, capsys
    ) -> None:
        """The summary names the settings and liquidations; verify passes."""
        record_crash(tmp_path / "a", "isolated", "cross")
        out = tmp_path / "b"
        assert (
            main(
                [
                    "replay",
                    "rerun",
                    str(tmp_path / "a"),
                    "--set",
                    "margin_mode=cross",
                    "--out",
                    str(out),
                ]
            )
            == 0
        )
        text = capsys.readouterr().out
        assert "margin_mode=cross" in text
        assert "recorded 1 (not replayed), this run 0" in text
        assert main(["replay", "verify", str(out)]) == 0

    def test_rerun_json_and_a_bad_setting(self, tmp_path: Path, capsys) -> None:
        """--json prints the summary; an unknown key exits 2 with a reason."""
        record_crash(tmp_path / "a", "isolated", "cross")
        assert (
            main(
                [
                    "replay",
                    "rerun",
                    str(tmp_path / "a"),
                    "--json",
                    "--out",
                    str(tmp_path / "b"),
                ]
            )
            == 0
        )
        assert json.loads(capsys.readouterr().out)["records_read"] > 0
        assert (
            main(
                [
                    "replay",
                    "rerun",
                    str(tmp_path / "a"),
                    "--set",
                    "x=1",
                    "--out",
                    str(tmp_path / "c"),
                ]
            )
            == 2
        )
        assert "unknown key" in capsys.readouterr().err

    def test_rerun_refuses_an_out_that_holds_a_journal(
        self, tmp_path: Path, capsys
    ) -> None:
        """A journal is never appended to: exit 2."""
        record_crash(tmp_path / "a", "isolated", "cross")
        assert (
            main(["replay", "rerun", str(tmp_path / "a"), "--out", str(tmp_path / "a")])
            == 2
        )
        assert "already holds" in capsys.readouterr().err


class TestEveryReplayCommand:
    """Each replay command teaches by example and shows its progress."""

    @pytest.mark.parametrize(
        "command", ["rebuild", "rerun", "whatif", "report", "export"]
    )
    def test_help_shows_examples(self, command: str, capsys) -> None:
        """``--help`` ends with examples of the command itself."""
        with pytest.raises(SystemExit) as stop:
            main(["replay", command, "--help"])
        assert stop.value.code == 0
        out = capsys.readouterr().out
        assert "examples:" in out
        assert f"paperx replay {command} runs/demo" in out

    def test_progress_bar_ends_on_stderr(self, tmp_path: Path, capsys) -> None:
        """Off a terminal the bar prints one final line on stderr, not stdout."""
        record_crash(tmp_path / "a", "isolated", "cross")
        assert main(["replay", "report", str(tmp_path / "a")]) == 0
        captured = capsys.readouterr()
        assert "reporting [##############################] 100% 15/15" in captured.err
        assert "reporting" not in captured.out
