"""Smoke tests of bench.core's margin variant (d): it runs and reports; no timings."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from bench._inputs import flow_workload
from bench._margin import account_settings, build_margin, run_margin
from bench.core import main

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

    def test_json_line_carries_the_margin_figures(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The run exits 0 and its JSON line has margin_ops_per_s and liquidations."""
        code = main(["--n", "3000", "--only", "margin", "--quiet", "--json"])
        figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert code == 0
        assert figures["margin_ops_per_s"] > 0
        assert figures["liquidations"] == 0
        assert figures["margin"]["index_updates"] == 2 * (3000 // 50)

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
