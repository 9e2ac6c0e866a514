"""Smoke tests of bench.core's margin variant (d): it runs and reports; no timings."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from bench._margin import margin_workload, run_margin
from bench.core import main

if TYPE_CHECKING:
    import pytest


class TestMarginVariant:
    """``paperx bench core --only margin`` on the margin workload of 10,000 commands."""

    def test_json_line_carries_the_margin_figures(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """JSON has (d)'s rate, latency, liquidations, ADL, funding, rejects."""
        code = main(
            [
                "--n",
                "10000",
                "--accounts",
                "1000",
                "--only",
                "margin",
                "--quiet",
                "--json",
            ]
        )
        figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert code == 0
        assert figures["margin_ops_per_s"] > 0
        latency = figures["margin_latency_ns"]
        assert 0 < latency["p50"] <= latency["p99"]
        assert figures["liquidations"] > 0
        assert figures["adl"] > 0
        assert figures["funding_payments"] > 0
        assert figures["reject_share"] < 0.02
        assert figures["margin"]["commands"] == 10_000

    def test_the_timed_run_reproduces_the_build_with_liquidations(self) -> None:
        """Liquidation records fall on the seqs the build left free, same end state."""
        mw = margin_workload(10_000, 42, accounts=1_000, progress=False)
        assert mw.stats.system > 0
        _, samples, state_hash = run_margin(mw)
        assert samples
        assert state_hash == mw.state_hash
