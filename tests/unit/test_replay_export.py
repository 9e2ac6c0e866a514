"""Tests of ``paperx replay export``: fills, orders, positions and funding as files."""

from __future__ import annotations

import csv
import sys
from decimal import Decimal
from typing import TYPE_CHECKING

import pytest
from replay_rig import record_crash, story_venue

from exchange import Rejected
from exchange.cli.main import main
from replay.errors import MissingDependency
from replay.export import TABLES, export_tables, write_parquet
from replay.log import ExchangeLog

if TYPE_CHECKING:
    from pathlib import Path


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


class TestCsv:
    """CSV files hold exact decimals, one per table."""

    def test_export_writes_every_table(self, tmp_path: Path, capsys) -> None:
        """Orders keep their ids (the liquidation's too), fills their prices."""
        record_crash(tmp_path / "j", "isolated", "cross")
        out = tmp_path / "csv"
        assert main(["replay", "export", str(tmp_path / "j"), "--out", str(out)]) == 0
        assert "orders" in capsys.readouterr().out
        assert sorted(p.name for p in out.iterdir()) == sorted(
            f"{t}.csv" for t in TABLES
        )
        orders = _rows(out / "orders.csv")
        assert [(o["order_id"], o["account"], o["liquidation"]) for o in orders] == [
            ("1", "bob", "false"),
            ("2", "alice", "false"),
            ("3", "bob", "false"),
            ("4", "alice", "true"),
        ]
        fills = _rows(out / "fills.csv")
        assert [f["price"] for f in fills] == ["60000", "54100"]
        positions = _rows(out / "positions.csv")
        assert positions[-1]["size"] == "0"

    def test_rejected_orders_carry_their_code(self, tmp_path: Path) -> None:
        """A refused order is a row with status rejected and no id."""
        ex = story_venue(tmp_path / "j")
        with pytest.raises(Rejected):
            ex.place_order("nobody", "BTC-PERP", "buy", "limit", "1", "100")
        ex.close()
        (orders,) = [
            t for t in export_tables(ExchangeLog(tmp_path / "j")) if t.name == "orders"
        ]
        (row,) = orders.rows
        names = [name for name, _ in orders.columns]
        assert row[names.index("status")] == "rejected"
        assert row[names.index("order_id")] is None
        assert row[names.index("reject_code")]


class TestParquet:
    """Parquet through pyarrow, or a clear message without it."""

    def test_without_pyarrow_the_message_says_how_to_install_it(
        self, tmp_path: Path, monkeypatch, capsys
    ) -> None:
        """With pyarrow missing, export exits 2 naming ``paperx[parquet]``."""
        monkeypatch.setitem(sys.modules, "pyarrow", None)
        record_crash(tmp_path / "j", "isolated", "cross")
        args = ["replay", "export", str(tmp_path / "j"), "--format", "parquet"]
        assert main([*args, "--out", str(tmp_path / "pq")]) == 2
        assert "pip install 'paperx[parquet]'" in capsys.readouterr().err
        with pytest.raises(MissingDependency):
            write_parquet([], tmp_path / "pq")

    def test_parquet_files_hold_exact_decimals(self, tmp_path: Path) -> None:
        """The fills table reads back with its decimal prices and fees."""
        pq = pytest.importorskip("pyarrow.parquet")
        record_crash(tmp_path / "j", "isolated", "cross")
        assert (
            main(
                [
                    "replay",
                    "export",
                    str(tmp_path / "j"),
                    "--format",
                    "parquet",
                    "--out",
                    str(tmp_path / "pq"),
                ]
            )
            == 0
        )
        fills = pq.read_table(tmp_path / "pq" / "fills.parquet").to_pylist()
        assert [f["price"] for f in fills] == [Decimal(60000), Decimal(54100)]
        assert fills[0]["taker_fee"] == Decimal(15)
