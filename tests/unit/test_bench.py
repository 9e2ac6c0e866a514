"""bench.core's margin variant (d): what it reports is what it ran; no timings."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from bench._margin import build_margin, margin_workload, run_margin
from bench.core import main
from clients.margin_flow import MarginShape, generate, write_margin_stream
from exchange.units import ceil_div

if TYPE_CHECKING:
    from pathlib import Path

    from bench._margin import MarginWorkload


@pytest.fixture(scope="module")
def workload() -> MarginWorkload:
    """The margin workload the tests run: 10,000 commands, 1,000 accounts."""
    return margin_workload(10_000, 42, accounts=1_000, progress=False)


class TestMarginVariant:
    """``paperx bench core --only margin`` on the margin workload of 10,000 commands."""

    def test_json_line_reports_the_margin_build_it_ran(
        self, capsys: pytest.CaptureFixture[str], workload: MarginWorkload
    ) -> None:
        """The JSON line's figures are those of the same build made here.

        Counts, rejects and the fill hash agree with it, the workload has the
        venue's shape (liquidations, ADL, funding, rejects under 2 %), and one
        record in 64 is sampled for latency.
        """
        argv = ["--n", "10000", "--accounts", "1000", "--only", "margin"]
        code = main([*argv, "--quiet", "--json"])
        figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        margin, stats = figures["margin"], workload.stats
        assert code == 0
        assert margin["commands"] == workload.commands == 10_000
        assert (margin["fills"], margin["fill_hash"]) == (
            stats.fills.count,
            stats.fills.value,
        )
        assert margin["rejects"] == dict(stats.rejects)
        assert (
            figures["liquidations"],
            figures["adl"],
            figures["funding_payments"],
            margin["margin_calls"],
            margin["system_records"],
        ) == (
            stats.liquidations,
            stats.adl,
            stats.funding_payments,
            stats.margin_calls,
            stats.system,
        )
        assert min(stats.liquidations, stats.adl, stats.funding_payments) > 0
        assert figures["reject_share"] == round(workload.reject_share, 5) < 0.02
        latency = figures["margin_latency_ns"]
        assert latency["samples"] == ceil_div(len(workload.records), 64)
        assert 0 < latency["p50"] <= latency["p99"] <= latency["p99_9"]
        assert isinstance(figures["margin_ops_per_s"], int)

    def test_the_timed_run_reproduces_the_build_with_liquidations(
        self, workload: MarginWorkload
    ) -> None:
        """Liquidation records fall on the seqs the build left free, same end state."""
        assert workload.stats.system > 0
        _, samples, state_hash = run_margin(workload)
        assert samples
        assert state_hash == workload.state_hash

    def test_a_margin_stream_file_is_run_as_written(
        self, capsys: pytest.CaptureFixture[str], tmp_path: Path
    ) -> None:
        """``--margin-stream`` runs the file's commands, not a generated stream."""
        stream = generate(3_000, 7, MarginShape(accounts=1_000))
        path = tmp_path / "margin.msgpack"
        write_margin_stream(path, stream)
        argv = ["--n", "500", "--only", "margin", "--margin-stream", str(path)]
        code = main([*argv, "--quiet", "--json"])
        margin = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["margin"]
        built = build_margin(stream, progress=False)
        assert code == 0
        assert margin["commands"] == len(stream.flow) == 3_000  # not --n's 500
        assert (margin["fills"], margin["fill_hash"]) == (
            built.stats.fills.count,
            built.stats.fills.value,
        )

    def test_a_missing_margin_stream_file_is_refused_with_a_message(
        self, capsys: pytest.CaptureFixture[str], tmp_path: Path
    ) -> None:
        """A margin stream that is not there exits 2 and says which file."""
        missing = tmp_path / "nope.msgpack"
        code = main(["--only", "margin", "--margin-stream", str(missing), "--quiet"])
        assert code == 2
        assert "nope.msgpack" in capsys.readouterr().err
