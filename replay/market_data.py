"""Recorded public market data as exchange commands: index prices and a taker flow.

`market_flow` reads one CSV file of public market data and yields
``(ts_ns, command)`` pairs in time order, for the server's replay task
(`exchange.shell.replay_feed`) to pace and submit. Three formats are read,
told apart by their header (or, for Binance's header-less files, by their
column count):

* **Binance klines** (``open_time,open,high,low,close,volume,close_time,...``,
  12 columns): four index prices per candle, on the conventional path through
  it: the open at ``open_time``, then the low and the high (a rising candle,
  ``close >= open``) or the high and the low (a falling one) at a third and two
  thirds of the candle, and the close at ``close_time``. Volume is not traded:
  a candle does not say who took it.
* **Binance aggTrades** (``agg_trade_id,price,quantity,first_trade_id,
  last_trade_id,transact_time,is_buyer_maker[,is_best_match]``, 7 or 8
  columns): each trade is an index price at ``transact_time`` and then a taker
  order of the recorded size and side: a market IOC order of the flow account
  (`FLOW_ACCOUNT`), a sell when the buyer was the maker, else a buy. Its size
  is rounded down to the market's lot and capped at its ``max_qty``; a trade
  smaller than ``min_qty`` moves only the index. The flow account gets a
  deposit of `FLOW_DEPOSIT` first, so margin never stops it short of the
  market's position limits (an order beyond them is rejected and counted like
  any other).
* **Plain** ``timestamp,price`` (2 columns): one index price per row; the
  timestamp is ms since the epoch or ISO-8601 (UTC unless it says).

Binance timestamps are ms since the epoch; its newer spot files use µs, told
apart by size (a value of 10**14 or more is µs). Rows must be in time order.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from exchange.errors import ConfigError
from exchange.messages import Deposit, Event, PlaceOrder, SetIndexPrice
from exchange.units import to_e8
from replay.flow import RECORDED_PREFIX, FlowCounts, TimedCommand
from replay.fmt import parse_iso_utc

if TYPE_CHECKING:
    from exchange.markets import Market

__all__ = [
    "FLOW_ACCOUNT",
    "FLOW_DEPOSIT",
    "MarketFlow",
    "MarketFormat",
    "detect_format",
    "market_flow",
    "market_for",
]

FLOW_ACCOUNT = RECORDED_PREFIX + "flow"
"""The account whose orders are a market file's recorded taker flow."""
FLOW_DEPOSIT = 10**9 * 10**8  # 1e9 USDT in E8: large, and a signed 64-bit int

MarketFormat = Literal["klines", "aggtrades", "prices"]

_MS = 1_000_000  # ns per ms
_US_FROM = 10**14  # a timestamp this large is in µs, not ms (year 5138 in ms)
_COLUMNS: dict[int, MarketFormat] = {12: "klines", 7: "aggtrades", 8: "aggtrades"}
_HEADERS: dict[str, MarketFormat] = {
    "open_time": "klines",
    "agg_trade_id": "aggtrades",
    "timestamp": "prices",
}


def market_for(spec: str, markets: list[Market]) -> tuple[Market, Path]:
    """Return the market and the file of a ``[SYMBOL=]FILE`` argument.

    Without ``SYMBOL=``, the file's name up to its first ``-`` names the
    market when the config has one by that name (``BTCUSDT-aggTrades-...``),
    else the config's only market is meant.

    Raises:
        ConfigError: if the symbol is not a market of the config, or several
            markets could be meant.
    """
    by_symbol = {m.symbol: m for m in markets}
    symbol, sep, name = spec.partition("=")
    path = Path(name if sep else spec)
    if not sep:
        symbol = path.name.split("-", 1)[0]
        if symbol not in by_symbol and len(markets) == 1:
            symbol = markets[0].symbol
    if symbol not in by_symbol:
        msg = (
            f"{spec}: which market? name it as SYMBOL=FILE "
            f"(markets: {', '.join(sorted(by_symbol))})"
        )
        raise ConfigError(msg)
    return by_symbol[symbol], path


class MarketFlow:
    """A market data file's commands as a `replay.flow.Flow`."""

    def __init__(self, commands: list[TimedCommand], rows: int) -> None:
        """Hold the commands of a file of ``rows`` data rows."""
        self.commands = commands
        self.counts = FlowCounts(read=rows)

    def __iter__(self) -> Iterator[TimedCommand]:
        """Yield every command in time order."""
        return iter(self.commands)

    def took(self, events: list[Event]) -> None:
        """Count the outcome (nothing depends on it: market data names no ids)."""
        self.counts.took(events)


def market_flow(path: Path, market: Market) -> MarketFlow:
    """Yield a market data file's commands for ``market`` (see the module doc).

    The whole file is read and checked before the first command is yielded.

    Raises:
        ConfigError: if the file cannot be read, its format is not one of the
            three, a row is malformed or a time goes back.
    """
    try:
        with path.open(encoding="utf-8", newline="") as file:
            rows = [row for row in csv.reader(file) if row]
    except OSError as exc:
        msg = f"{path}: cannot read the market data: {exc.strerror}"
        raise ConfigError(msg) from exc
    if not rows:
        return MarketFlow([], 0)
    fmt, has_header = detect_format(rows[0])
    if fmt is None:
        msg = f"{path}: not a Binance kline or aggTrades file, nor timestamp,price"
        raise ConfigError(msg)
    start = 2 if has_header else 1
    convert = {"klines": _kline, "aggtrades": _agg_trade, "prices": _price}[fmt]
    commands: list[TimedCommand] = []
    last = 0
    for line, row in enumerate(rows[1:] if has_header else rows, start=start):
        try:
            converted = convert(row, market)
        except (IndexError, ValueError, ArithmeticError) as exc:
            msg = f"{path}:{line}: a malformed {fmt} row ({exc})"
            raise ConfigError(msg) from exc
        if converted[0][0] < last:
            msg = f"{path}:{line}: the time goes back"
            raise ConfigError(msg)
        last = converted[-1][0]
        commands += converted
    if fmt == "aggtrades" and commands:  # the flow account pays in first
        deposit = Deposit(account=FLOW_ACCOUNT, amount=FLOW_DEPOSIT)
        commands.insert(0, (commands[0][0], deposit))
    return MarketFlow(commands, len(rows) - has_header)


def detect_format(first: list[str]) -> tuple[MarketFormat | None, bool]:
    """Return a file's format from its first row, and whether that is a header."""
    head = first[0].strip().lower()
    if head in _HEADERS:
        return _HEADERS[head], True
    if len(first) == 2:  # timestamp,price
        return "prices", not _is_time(head)
    return _COLUMNS.get(len(first)), False


def _is_time(text: str) -> bool:
    """Return True if ``text`` reads as a timestamp (a header's name does not)."""
    try:
        _ts_ns(text)
    except ValueError:
        return False
    return True


def _ts_ns(text: str) -> int:
    """Return a recorded time in ns: ms or µs since the epoch, or ISO-8601."""
    text = text.strip()
    if text.isdigit():
        value = int(text)
        return value * 1000 if value >= _US_FROM else value * _MS
    return parse_iso_utc(text)


def _e8(text: str) -> int:
    """Return a decimal text as E8 units, rounded down past the 8th decimal."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation as exc:
        msg = f"{text!r} is not a decimal number"
        raise ValueError(msg) from exc
    return to_e8(value.quantize(Decimal("1e-8"), rounding="ROUND_DOWN"))


def _index(ts_ns: int, market: Market, price: int) -> TimedCommand:
    """Return an index price command at ``ts_ns``."""
    return ts_ns, SetIndexPrice(symbol=market.symbol, price=price)


def _price(row: list[str], market: Market) -> list[TimedCommand]:
    """Return a ``timestamp,price`` row as one index price."""
    return [_index(_ts_ns(row[0]), market, _e8(row[1]))]


def _kline(row: list[str], market: Market) -> list[TimedCommand]:
    """Return a candle as four index prices along its path (module docstring)."""
    opened, closed = _ts_ns(row[0]), _ts_ns(row[6])
    o, h, low, c = (_e8(cell) for cell in row[1:5])
    middle = (low, h) if c >= o else (h, low)
    third = (closed - opened) // 3  # toward the open: never past the close
    times = (opened, opened + third, opened + 2 * third, closed)
    prices = (o, *middle, c)
    return [_index(t, market, p) for t, p in zip(times, prices, strict=True)]


def _agg_trade(row: list[str], market: Market) -> list[TimedCommand]:
    """Return a trade as an index price and, if big enough, the taker's order."""
    ts_ns, price = _ts_ns(row[5]), _e8(row[1])
    flag = row[6].strip().lower()
    if flag not in {"true", "false"}:
        msg = f"is_buyer_maker is {row[6]!r}, not true or false"
        raise ValueError(msg)
    qty = min(_e8(row[2]), market.max_qty)
    qty -= qty % market.lot_size  # down to the lot: never more than recorded
    commands = [_index(ts_ns, market, price)]
    if qty >= market.min_qty:
        side: Literal["buy", "sell"] = "sell" if flag == "true" else "buy"
        order = PlaceOrder(
            account=FLOW_ACCOUNT,
            symbol=market.symbol,
            side=side,
            type="market",
            qty=qty,
            tif="IOC",
        )
        commands.append((ts_ns, order))
    return commands
