"""Tests of replay.streams: the standard benchmark stream reader and its fill hash."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from shared_workload import import_workload

from exchange.core import ExchangeCore
from exchange.messages import AmendOrder, CancelOrder, PlaceOrder
from replay.streams import (
    FillHash,
    StreamError,
    read_stream,
    standard_market,
    to_command,
    to_commands,
    to_records,
    write_stream,
)

if TYPE_CHECKING:
    from types import ModuleType

TINY = [
    ("N", 1, 1, "B", 100, 5),
    ("N", 2, 2, "S", 101, 3),
    ("M", 3, 3, "S", 0, 2),
    ("A", 1, 1, "B", 100, 1),
    ("C", 2, 2, "S", 101, 0),
]


def _workload() -> ModuleType:
    """Import the shared workload.py, or skip when it cannot be found."""
    return import_workload()


class TestReadStream:
    """read_stream and write_stream."""

    @pytest.mark.parametrize("suffix", [".msgpack", ".jsonl"])
    def test_round_trips_tiny_stream(self, tmp_path: Path, suffix: str) -> None:
        """A stream written in either format reads back as the same tuples."""
        path = tmp_path / f"orders{suffix}"
        write_stream(path, TINY)
        assert read_stream(path) == TINY

    def test_reads_files_written_by_workload(self, tmp_path: Path) -> None:
        """Both files workload.py saves read back as the tuples it generated."""
        workload = _workload()
        cmds = workload.generate(300, 7)
        jsonl, msgpack, _ = workload.save(cmds, str(tmp_path), "t")
        assert read_stream(jsonl) == cmds
        assert read_stream(msgpack) == cmds

    def test_rejects_unknown_suffix(self, tmp_path: Path) -> None:
        """A file neither .msgpack nor .jsonl is refused, naming both formats."""
        path = tmp_path / "orders.csv"
        path.write_text("N,1,1,B,100,5\n")
        with pytest.raises(StreamError, match=r"\.msgpack.*\.jsonl"):
            read_stream(path)

    def test_names_the_bad_jsonl_line(self, tmp_path: Path) -> None:
        """A malformed JSONL line is reported with its line number."""
        path = tmp_path / "orders.jsonl"
        path.write_text(
            '{"op":"N","id":1,"acct":1,"side":"B","px":100,"qty":5}\n'
            '{"op":"X","id":2,"acct":1,"side":"B","px":100,"qty":5}\n'
        )
        with pytest.raises(StreamError, match="line 2"):
            read_stream(path)

    def test_rejects_msgpack_that_is_not_six_arrays(self, tmp_path: Path) -> None:
        """A msgpack file of the wrong shape is refused, not half read."""
        path = tmp_path / "orders.msgpack"
        write_stream(tmp_path / "ok.msgpack", TINY)
        path.write_bytes(b"\x91\x93\xa1N\x01\x01")  # [["N", 1, 1]]
        with pytest.raises(StreamError, match="6-arrays"):
            read_stream(path)


class TestToCommand:
    """Stream tuples as paperx commands."""

    def test_scales_ticks_and_lots_to_e8(self) -> None:
        """Prices become ticks times tick size, quantities lots times lot size."""
        market = standard_market()
        cmd = to_command(("N", 1, 3, "S", 250, 7), market)
        assert cmd == PlaceOrder(
            account="3",
            symbol="X",
            side="sell",
            type="limit",
            qty=7 * market.lot_size,
            price=250 * market.tick_size,
        )

    def test_maps_market_cancel_and_amend(self) -> None:
        """M is a market order, C a cancel by id and A an amend of the open quantity."""
        market = standard_market()
        assert to_command(("M", 4, 1, "B", 0, 9), market) == PlaceOrder(
            account="1", symbol="X", side="buy", type="market", qty=9 * market.lot_size
        )
        assert to_command(("C", 2, 2, "S", 101, 0), market) == CancelOrder(
            account="2", order_id=2
        )
        assert to_command(("A", 1, 1, "B", 100, 1), market) == AmendOrder(
            account="1", order_id=1, qty=market.lot_size
        )


class TestFillHash:
    """The fill hash of workload.py, computed from core events."""

    def test_replay_reproduces_the_shadow_fills(self) -> None:
        """Replaying workload.generate(5000) gives the shadow book's fills and hash."""
        workload = _workload()
        cmds, shadow = workload.generate(5000, with_shadow=True)
        market = standard_market()
        core = ExchangeCore([market])
        fills = FillHash()
        for record in to_records(to_commands(cmds, market)):
            fills.update(core.handle(record))
        assert fills.count == shadow.fills
        assert fills.qty == shadow.fill_qty
        assert fills.value == shadow.fill_hash

    def test_matches_workload_fill_hash(self) -> None:
        """FillHash folds fills exactly as workload.fill_hash does."""
        workload = _workload()
        fills = [(5, 3, 100, 2), (5, 4, 101, 1), (9, 1, 99, 40)]
        h = FillHash()
        for fill in fills:
            h.add(*fill)
        assert h.value == workload.fill_hash(fills)
