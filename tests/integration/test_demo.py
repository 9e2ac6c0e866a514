"""``paperx demo`` end to end: server, embedded broker, bots, report, replay."""

from __future__ import annotations

from pathlib import Path

from exchange.cli import main
from replay.log import ExchangeLog
from replay.verify import verify

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_the_demo_runs_the_bots_over_mqtt_and_leaves_a_report_and_a_journal(
    tmp_path: Path, capsys
) -> None:
    """A short demo prints the summary, writes a PNG and a journal that verifies."""
    out = tmp_path / "run"
    code = main(
        ["demo", "--duration", "3", "--bots", "2", "--seed", "7", "--out", str(out)]
    )
    printed = capsys.readouterr()
    assert code == 0, printed.err
    for account in ("maker-btc", "trend-isolated", "trend-cross", "lottery", "hedger"):
        assert f"  {account} " in printed.out
    assert "noise-2" in printed.out
    assert "noise-3" not in printed.out
    for fragment in (
        "embedded broker",
        "PnL USDT",
        "worst drawdown",
        "OK: live == rebuild == rerun",
        "isolated vs cross",
        f"paperx replay verify {out / 'journal'}",
    ):
        assert fragment in printed.out
    assert "liquidations" in printed.err  # the live view's status line
    png = (out / "report.png").read_bytes()
    assert png.startswith(PNG_SIGNATURE)
    assert len(png) > 10_000
    report = verify(ExchangeLog(out / "journal"))
    assert report.ok, report
    assert report.checkpoints >= 1
    assert (out / "bots.log").read_text(encoding="utf-8")
