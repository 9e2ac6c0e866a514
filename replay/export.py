"""Export a run for analysis elsewhere: fills, orders, positions and funding as tables.

`export_tables` reads a journal once and returns four `Table`s; every price,
quantity and amount is a `Decimal` in the market's own units (USDT, base
units), every time ISO-8601 UTC beside its seq:

* ``fills``: every trade, with both sides, their order ids and fees;
* ``orders``: every `PlaceOrder` (accepted with its order id, or rejected
  with its code and reason) and every liquidation order the exchange placed;
* ``positions``: every change of a position (size, entry price, isolated
  margin, mode, leverage, and what the change realized and paid);
* ``funding``: every funding payment (positive: paid).

`write_csv` writes ``NAME.csv`` files; `write_parquet` ``NAME.parquet``
files through pyarrow, the optional extra ``paperx[parquet]``
(`MissingDependency` says how to install it).
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from exchange.messages import (
    CommandRejected,
    Event,
    FundingPaid,
    OrderAccepted,
    OrderFilled,
    PlaceOrder,
    PositionChanged,
    Record,
)
from exchange.shell.account_views import entry_price
from exchange.units import from_e8
from replay.errors import MissingDependency
from replay.fmt import iso_utc
from replay.order_ids import RecordedOrderIds

if TYPE_CHECKING:
    from exchange.markets import Market
    from replay.log import ExchangeLog

__all__ = ["TABLES", "Table", "export_tables", "write_csv", "write_parquet"]

Kind = Literal["int", "decimal", "str", "bool"]
Cell = int | Decimal | str | bool | None

_COMMON: list[tuple[str, Kind]] = [("seq", "int"), ("time", "str")]
TABLES: dict[str, list[tuple[str, Kind]]] = {
    "fills": [
        *_COMMON,
        ("symbol", "str"),
        ("trade_id", "int"),
        ("price", "decimal"),
        ("qty", "decimal"),
        ("taker_side", "str"),
        ("taker_account", "str"),
        ("taker_order_id", "int"),
        ("maker_account", "str"),
        ("maker_order_id", "int"),
        ("taker_fee", "decimal"),
        ("maker_fee", "decimal"),
    ],
    "orders": [
        *_COMMON,
        ("order_id", "int"),
        ("account", "str"),
        ("symbol", "str"),
        ("side", "str"),
        ("type", "str"),
        ("qty", "decimal"),
        ("price", "decimal"),
        ("trigger_price", "decimal"),
        ("tif", "str"),
        ("post_only", "bool"),
        ("reduce_only", "bool"),
        ("client_order_id", "str"),
        ("liquidation", "bool"),
        ("status", "str"),
        ("reject_code", "int"),
        ("reason", "str"),
    ],
    "positions": [
        *_COMMON,
        ("account", "str"),
        ("symbol", "str"),
        ("size", "decimal"),
        ("entry_price", "decimal"),
        ("margin", "decimal"),
        ("mode", "str"),
        ("leverage", "int"),
        ("realized", "decimal"),
        ("fee", "decimal"),
    ],
    "funding": [
        *_COMMON,
        ("funding_time", "str"),
        ("symbol", "str"),
        ("account", "str"),
        ("amount", "decimal"),
        ("rate", "decimal"),
        ("mark", "decimal"),
    ],
}
"""Every table's columns, in order, with their kinds."""


@dataclass
class Table:
    """One exported table: its name, columns and rows (cells in column order)."""

    name: str
    columns: list[tuple[str, Kind]]
    rows: list[list[Cell]] = field(default_factory=list)


class _Exporter:
    """Turns records into table rows."""

    def __init__(self, markets: list[Market]) -> None:
        self.specs = {m.symbol: m for m in markets}
        self.tables = {name: Table(name, cols) for name, cols in TABLES.items()}
        self.ids = RecordedOrderIds()

    def take(self, record: Record, events: list[Event]) -> None:
        head: list[Cell] = [record.seq, iso_utc(record.ts_ns)]
        cmd = record.command
        order_id = self.ids.follow(cmd, events)
        if isinstance(cmd, PlaceOrder):
            self._order(head, cmd, order_id, events)
        for event in events:
            match event:
                case OrderFilled():
                    m = self.specs[event.symbol]
                    self.tables["fills"].rows.append([
                        *head, event.symbol, event.trade_id,
                        m.price_decimal(event.price), m.qty_decimal(event.qty),
                        event.taker_side, event.taker_account, event.taker_order_id,
                        event.maker_account, event.maker_order_id,
                        from_e8(event.taker_fee), from_e8(event.maker_fee),
                    ])  # fmt: skip
                case OrderAccepted() if event.liquidation:
                    m = self.specs[event.symbol]
                    self.tables["orders"].rows.append([
                        *head, event.order_id, event.account, event.symbol,
                        event.side, event.type, m.qty_decimal(event.qty),
                        m.price_decimal(event.price), None, event.tif,
                        event.post_only, event.reduce_only, event.client_order_id,
                        True, "accepted", None, "",
                    ])  # fmt: skip
                case PositionChanged():
                    self._position(head, event)
                case FundingPaid():
                    self.tables["funding"].rows.append([
                        *head, iso_utc(event.funding_ts_ns), event.symbol,
                        event.account, from_e8(event.amount), from_e8(event.rate),
                        from_e8(event.mark),
                    ])  # fmt: skip
                case _:
                    pass

    def _order(
        self,
        head: list[Cell],
        cmd: PlaceOrder,
        order_id: int | None,
        events: list[Event],
    ) -> None:
        reject = next((e for e in events if type(e) is CommandRejected), None)
        self.tables["orders"].rows.append([
            *head, order_id, cmd.account, cmd.symbol, cmd.side, cmd.type,
            from_e8(cmd.qty), from_e8(cmd.price) if cmd.price else None,
            from_e8(cmd.trigger_price) if cmd.trigger_price else None, cmd.tif,
            cmd.post_only, cmd.reduce_only, cmd.client_order_id, False,
            "rejected" if reject else "accepted",
            reject.code if reject else None, reject.reason if reject else "",
        ])  # fmt: skip

    def _position(self, head: list[Cell], event: PositionChanged) -> None:
        m = self.specs[event.symbol]
        size_e8 = event.size * m.lot_size
        self.tables["positions"].rows.append([
            *head, event.account, event.symbol, from_e8(size_e8),
            entry_price(event.cost, size_e8) if size_e8 else None,
            from_e8(event.margin), event.mode, event.leverage,
            from_e8(event.realized), from_e8(event.fee),
        ])  # fmt: skip


def export_tables(
    log: ExchangeLog, progress: Callable[[int], None] | None = None
) -> list[Table]:
    """Read the journal once; return its fills, orders, positions and funding."""
    exporter = _Exporter(log.markets)
    for n, entry in enumerate(log.entries(), start=1):
        exporter.take(entry.record, entry.events)
        if progress is not None and not n % 1024:
            progress(n)
    return list(exporter.tables.values())


def _csv_cell(cell: Cell) -> str:
    """Return a cell as CSV text: decimals plain, booleans true/false, None empty."""
    if cell is None:
        return ""
    if isinstance(cell, bool):
        return "true" if cell else "false"
    if isinstance(cell, Decimal):
        return f"{cell:f}"
    return str(cell)


def write_csv(tables: list[Table], out: Path) -> list[Path]:
    """Write ``NAME.csv`` per table into ``out`` (created); return the files."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for t in tables:
        path = out / f"{t.name}.csv"
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow([name for name, _ in t.columns])
            writer.writerows([_csv_cell(c) for c in row] for row in t.rows)
        paths.append(path)
    return paths


def write_parquet(tables: list[Table], out: Path) -> list[Path]:
    """Write ``NAME.parquet`` per table into ``out`` (created); return the files.

    Decimals are ``decimal128(38, 8)`` (exact), ints ``int64``.

    Raises:
        MissingDependency: if pyarrow is not installed (``paperx[parquet]``).
    """
    try:
        import pyarrow as pa  # noqa: PLC0415 -- an optional extra
        import pyarrow.parquet as pq  # noqa: PLC0415
    except ImportError as exc:
        missing = MissingDependency("pyarrow", "parquet", "export to parquet")
        raise missing from exc
    types = {
        "int": pa.int64(),
        "decimal": pa.decimal128(38, 8),
        "str": pa.string(),
        "bool": pa.bool_(),
    }
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for t in tables:
        schema = pa.schema([(name, types[kind]) for name, kind in t.columns])
        columns = list(zip(*t.rows, strict=True)) if t.rows else [()] * len(t.columns)
        arrays = [
            pa.array(list(col), type=types[kind])
            for col, (_, kind) in zip(columns, t.columns, strict=True)
        ]
        path = out / f"{t.name}.parquet"
        pq.write_table(pa.Table.from_arrays(arrays, schema=schema), path)
        paths.append(path)
    return paths
