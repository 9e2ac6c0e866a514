"""paperx loadtest end to end, small: a few bots for seconds against a real server."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
from services import missing

from clients.loadtest.report import summary_table, write_outputs
from clients.loadtest.runner import LoadtestOptions, check_journal, run_loadtest


@pytest.mark.parametrize("broker", ["embedded", "own-mosquitto"])
def test_a_small_run_reconciles_every_answer_with_the_journal(
    tmp_path: Path, broker: str
) -> None:
    """Every request is answered once and every acceptance is a journaled record."""
    if broker == "own-mosquitto" and shutil.which("mosquitto") is None:
        missing("mosquitto is not installed")
    options = LoadtestOptions(
        schedule="step:40,80",
        duration_s=2.0,
        bots=3,
        processes=2,
        out=tmp_path,
        mosquitto=broker == "own-mosquitto",
        progress=False,
    )
    results = run_loadtest(options, log=io.StringIO())
    totals, journal = results["totals"], results["journal"]
    offered = sum(phase["offered"] for phase in results["phases"])
    assert offered == 40 + 80  # 40/s for 1 s, then 80/s for 1 s
    assert totals["sent"] == offered + 3 * 2  # and each bot's margin mode, leverage
    assert totals["answered"] == totals["sent"]
    assert (totals["unanswered"], totals["duplicates"]) == (0, 0)
    assert totals["answered_once"]
    assert sum(results["rejects"].values()) == totals["rejected"]
    assert journal["accepted_in_journal"] == journal["accepted_answers"]
    assert journal["accepted_answers"] == totals["accepted"]
    assert journal["verify_ok"]
    assert journal["hash_matches"]
    assert journal["ok"]
    assert results["phases"][0]["order"]["count"] > 0
    json_path, png_path = write_outputs(results, tmp_path)
    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert '"answered_once": true' in json_path.read_text(encoding="utf-8")
    assert "verdict: OK" in summary_table(results)


def test_an_acceptance_the_journal_lacks_is_reported_missing(tmp_path: Path) -> None:
    """An accepted answer whose seq is not a journaled record of it fails the check."""
    options = LoadtestOptions(
        schedule="constant:20",
        duration_s=1.0,
        bots=1,
        processes=1,
        out=tmp_path,
        progress=False,
        market_data=False,
    )
    results = run_loadtest(options, log=io.StringIO())
    journal = tmp_path / "venue" / "journal"
    forged = [["lt-0000", "new", results["journal"]["records"] + 5]]
    wrong = [["lt-0001", "new", 1]]
    report = check_journal(journal, forged + wrong, None, verify=False)
    assert report["accepted_missing"] == 1
    assert len(report["mismatched"]) == 1
    assert not report["ok"]
