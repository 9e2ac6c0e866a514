"""bench.core's margin variant (d): what it reports is what it ran; no timings."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from bench._inputs import flow_workload
from bench._margin import account_settings, build_margin, run_margin
from bench.core import main
from exchange.units import ceil_div

if TYPE_CHECKING:
    import pytest


class TestMarginVariant:
    """``paperx bench core --only margin`` on a few thousand commands."""

    def test_accounts_cover_every_leverage_in_both_modes(self) -> None:
        """Eight accounts get the four leverages once isolated and once cross."""
        settings = {account_settings(i) for i in range(8)}
        assert settings == {
            (lev, mode) for lev in (5, 10, 20, 50) for mode in ("isolated", "cross")
        }

    def test_json_line_reports_the_margin_build_it_ran(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The JSON line's margin figures are those of the same build made here.

        Counts, rejects and the fill hash agree with it, every stream command is
        either sent or counted as not sent, and one record in 64 is sampled.
        """
        argv = ["--n", "3000", "--only", "margin", "--deposit", "1000"]
        code = main([*argv, "--quiet", "--json"])
        figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        margin = figures["margin"]
        mw = build_margin(
            flow_workload(3000, 42, progress=False), deposit=1000, progress=False
        )
        stats = mw.stats
        assert code == 0
        assert figures["n"] == margin["commands"] + margin["not_sent"] == 3000
        assert (margin["commands"], margin["not_sent"]) == (mw.commands, stats.dropped)
        assert margin["index_updates"] == mw.index_updates == 2 * (3000 // 50)
        assert (margin["fills"], margin["fill_hash"]) == (
            stats.fills.count,
            stats.fills.value,
        )
        assert margin["rejects"] == dict(stats.rejects)
        assert sum(margin["rejects"].values()) > 0  # 1,000 USDT each is thin
        assert (
            figures["liquidations"],
            margin["margin_calls"],
            margin["adl"],
            margin["liquidations_skipped"],
            margin["system_records"],
        ) == (
            stats.liquidations,
            stats.margin_calls,
            stats.adl,
            stats.skipped,
            stats.system,
        )
        latency = margin["latency_ns"]
        assert latency["samples"] == ceil_div(len(mw.records), 64)
        assert latency["p50"] <= latency["p99"] <= latency["p99_9"]
        assert isinstance(figures["margin_ops_per_s"], int)

    def test_thin_funding_refuses_and_the_timed_run_reproduces_the_build(
        self,
    ) -> None:
        """With little collateral, orders are refused and the replay still matches.

        Refused orders take no id, so later cancels are translated or not sent;
        the timed run must end in the build pass's state all the same.
        """
        mw = build_margin(
            flow_workload(4000, 42, progress=False), deposit=500, progress=False
        )
        assert mw.stats.rejects
        assert mw.stats.dropped > 0
        _, samples, state_hash = run_margin(mw)
        assert samples
        assert state_hash == mw.state_hash
