"""The run report read from a journal: equity, fees, liquidations, settings."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from exchange.cli.margin_demo import _BTC
from exchange.shell.inprocess import Exchange
from replay.log import ExchangeLog
from replay.report import run_report

D = Decimal


def test_the_report_of_an_isolated_liquidation_counts_its_loss_fees_and_settings(
    tmp_path: Path,
) -> None:
    """A 10x isolated long liquidated at 54,000 loses its bucket and the fee."""
    with Exchange([_BTC], margin=True, journal=tmp_path / "j", fsync="off") as ex:
        ex.deposit("trader", "10000")
        ex.deposit("maker", "10000000")
        ex.set_index_price("BTC-PERP", "60000")
        ex.set_margin_mode("trader", "BTC-PERP", "isolated")
        ex.set_leverage("trader", "BTC-PERP", 10)
        ex.place_order("maker", "BTC-PERP", "sell", "limit", "0.5", "60000")
        ex.place_order("trader", "BTC-PERP", "buy", "market", "0.5")
        ex.place_order("maker", "BTC-PERP", "buy", "limit", "0.5", "53900")
        for price in ("57000", "54000", "58000"):
            ex.set_index_price("BTC-PERP", price)
    report = run_report(ExchangeLog(tmp_path / "j"))
    trader = report.accounts["trader"]
    assert (trader.mode, trader.leverage_label, trader.deposits) == (
        "isolated",
        "10x",
        D(10000),
    )
    assert trader.pnl == D(-3015)  # the 3,000 bucket and the 15 opening fee
    assert trader.fees == D(15)
    assert trader.worst_drawdown == D(3015)
    assert trader.liquidations == 1
    (hit,) = report.liquidations
    assert (hit.account, hit.symbol, hit.mode, hit.mark) == (
        "trader",
        "BTC-PERP",
        "isolated",
        D(54000),
    )
    assert report.accounts["maker"].mode == "cross"
    assert report.fills == 1  # the bid under the bankruptcy price: no book fill
    assert [price for _, price in report.marks["BTC-PERP"]][-1] == D(58000)
