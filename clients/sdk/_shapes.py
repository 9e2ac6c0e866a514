r"""ccxt's unified shapes of what the client returns, and the conversions to them.

Results are plain dicts shaped as ccxt's (an order: ``id`` as a string,
``clientOrderId``, ``timestamp`` in ms, ``datetime`` ISO 8601, ``status``
open/closed/canceled/expired/rejected, ...; ``info`` holds the raw message),
typed here as `TypedDict`s. Numbers are `Decimal`, never float. Symbols
may be given as paperx names (``BTC-PERP``) or ccxt's unified ones
(``BTC/USDT:USDT``); results use the form the client was built with.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, TypedDict

import msgspec

from exchange.gateway import answers as out

__all__ = [
    "Balance",
    "Balances",
    "MarkPrice",
    "Order",
    "OrderBook",
    "Position",
    "Trade",
    "as_decimal",
    "ccxt_symbol",
    "paperx_symbol",
]

QUOTE = "USDT"  # every paperx market is a USDT-margined perpetual

OrderStatus = Literal["open", "closed", "canceled", "expired", "rejected"]


class Fee(TypedDict):
    """A fee paid: ``cost`` in ``currency``."""

    cost: Decimal
    currency: str


class Trade(TypedDict):
    """A trade: one of the account's fills, or a public print (no order, no fee)."""

    id: str
    order: str | None
    clientOrderId: str | None
    timestamp: int
    datetime: str
    symbol: str
    side: str
    takerOrMaker: str
    price: Decimal
    amount: Decimal
    cost: Decimal
    fee: Fee | None
    info: dict[str, Any]


class Order(TypedDict):
    """An order as ccxt shapes one; ``average`` and ``cost`` from its fills seen."""

    id: str
    clientOrderId: str | None
    timestamp: int | None
    datetime: str | None
    lastTradeTimestamp: int | None
    symbol: str
    type: str
    side: str
    price: Decimal | None
    triggerPrice: Decimal | None
    amount: Decimal
    filled: Decimal
    remaining: Decimal
    average: Decimal | None
    cost: Decimal
    status: OrderStatus
    fee: Fee
    trades: list[Trade]
    reduceOnly: bool | None
    postOnly: bool | None
    timeInForce: str | None
    info: dict[str, Any]


class Position(TypedDict):
    """A position; fields a position update does not carry are None."""

    symbol: str
    side: str | None
    contracts: Decimal
    contractSize: Decimal
    entryPrice: Decimal | None
    markPrice: Decimal | None
    notional: Decimal | None
    leverage: int
    unrealizedPnl: Decimal | None
    liquidationPrice: Decimal | None
    marginMode: str
    collateral: Decimal
    initialMargin: Decimal | None
    maintenanceMargin: Decimal | None
    marginRatio: Decimal | None
    timestamp: int | None
    info: dict[str, Any]


class Balance(TypedDict):
    """One currency's balance."""

    free: Decimal
    used: Decimal
    total: Decimal


class Balances(TypedDict):
    USDT: Balance
    free: dict[str, Decimal]
    used: dict[str, Decimal]
    total: dict[str, Decimal]
    info: dict[str, Any]


class OrderBook(TypedDict):
    """An L2 book, best first; ``nonce`` is the book's ``book_seq``."""

    symbol: str
    bids: list[list[Decimal]]
    asks: list[list[Decimal]]
    nonce: int
    timestamp: int | None
    datetime: str | None


class MarkPrice(TypedDict):
    """A mark price update (ccxt's watch_mark_price shape)."""

    symbol: str
    markPrice: Decimal
    indexPrice: Decimal | None
    timestamp: int
    datetime: str
    info: dict[str, Any]


# ---------------------------------------------------------------- conversions


def as_decimal(value: Decimal | str | float, name: str) -> Decimal:
    """Return ``value`` as a Decimal; a float is read by its shortest repr.

    Raises:
        TypeError: ``value`` is a bool or not a number.
        ValueError: a string that is not a finite decimal number.
    """
    if isinstance(value, bool) or not isinstance(value, Decimal | str | int | float):
        msg = f"{name} must be a Decimal, str or int, not {type(value).__name__}"
        raise TypeError(msg)
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        number = Decimal("NaN")
    if not number.is_finite():
        msg = f"{name} {value!r} is not a finite decimal number"
        raise ValueError(msg)
    return number


def paperx_symbol(symbol: str) -> str:
    """Return the paperx name of a symbol given either way (``BTC/USDT:USDT``)."""
    if "/" in symbol:
        base = symbol.split("/", 1)[0]
        return f"{base}-PERP"
    return symbol


def ccxt_symbol(symbol: str) -> str:
    """Return ccxt's unified symbol of a paperx perpetual (``BTC-PERP``)."""
    if symbol.endswith("-PERP"):
        return f"{symbol.removesuffix('-PERP')}/{QUOTE}:{QUOTE}"
    return symbol


def ms(ts_ns: int) -> int:
    """Return exchange time in ms (truncated)."""
    return ts_ns // 1_000_000


def iso(ts_ms: int) -> str:
    """Return ``ts_ms`` as ccxt's ISO 8601 UTC string (``...T12:00:00.000Z``)."""
    seconds, millis = divmod(ts_ms, 1000)
    moment = datetime.fromtimestamp(seconds, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{millis:03d}Z"


def info(message: msgspec.Struct) -> dict[str, Any]:
    """Return a wire message as plain data (decimals as strings)."""
    data = msgspec.to_builtins(message)
    assert isinstance(data, dict)  # every wire message is a struct
    return data


_STATUS: dict[str, OrderStatus] = {
    "new": "open",
    "partially_filled": "open",
    "filled": "closed",
    "canceled": "canceled",
    "expired": "expired",
}


def order_status(status: str) -> OrderStatus:
    """Return ccxt's status of an exchange order status."""
    return _STATUS.get(status, "open")


def fill_shape(fill: out.TradeFill, symbol: str) -> Trade:
    """Return one of the account's fills as a ccxt trade."""
    at = ms(fill.ts_ns)
    return Trade(
        id=str(fill.trade_id),
        order=str(fill.order_id),
        clientOrderId=fill.cid or None,
        timestamp=at,
        datetime=iso(at),
        symbol=symbol,
        side=fill.side,
        takerOrMaker=fill.liquidity,
        price=fill.price,
        amount=fill.qty,
        cost=fill.price * fill.qty,
        fee=Fee(cost=fill.fee, currency=QUOTE),
        info=info(fill),
    )


def public_trade_shape(trade: out.PublicTrade, symbol: str) -> Trade:
    """Return a public print as a ccxt trade (``side`` is the taker's)."""
    at = ms(trade.ts_ns)
    return Trade(
        id=str(trade.trade_id),
        order=None,
        clientOrderId=None,
        timestamp=at,
        datetime=iso(at),
        symbol=symbol,
        side=trade.taker_side,
        takerOrMaker="taker",
        price=trade.price,
        amount=trade.qty,
        cost=trade.price * trade.qty,
        fee=None,
        info=info(trade),
    )


def position_info_shape(p: out.PositionInfo, symbol: str) -> Position:
    """Return a queried position as ccxt's."""
    return Position(
        symbol=symbol,
        side=p.side,
        contracts=p.contracts,
        contractSize=Decimal(1),
        entryPrice=p.entry_price,
        markPrice=p.mark_price,
        notional=p.notional,
        leverage=p.leverage,
        unrealizedPnl=p.unrealized_pnl,
        liquidationPrice=p.liquidation_price,
        marginMode=p.margin_mode,
        collateral=p.collateral,
        initialMargin=p.initial_margin,
        maintenanceMargin=p.maintenance_margin,
        marginRatio=p.margin_ratio,
        timestamp=None,
        info=info(p),
    )


def position_update_shape(p: out.PositionUpdate, symbol: str) -> Position:
    """Return a streamed position change as ccxt's (no mark-dependent fields)."""
    side = "long" if p.size > 0 else "short" if p.size < 0 else None
    return Position(
        symbol=symbol,
        side=side,
        contracts=abs(p.size),
        contractSize=Decimal(1),
        entryPrice=p.entry_price,
        markPrice=None,
        notional=None,
        leverage=p.leverage,
        unrealizedPnl=None,
        liquidationPrice=None,
        marginMode=p.mode,
        collateral=p.margin,
        initialMargin=None,
        maintenanceMargin=None,
        marginRatio=None,
        timestamp=ms(p.ts_ns),
        info=info(p),
    )


def balance_shape(b: out.BalanceInfo) -> Balances:
    """Return a balance answer as ccxt's."""
    return Balances(
        USDT=Balance(free=b.free, used=b.used, total=b.total),
        free={QUOTE: b.free},
        used={QUOTE: b.used},
        total={QUOTE: b.total},
        info=info(b),
    )


def mark_shape(m: out.MarkUpdate, symbol: str) -> MarkPrice:
    """Return a mark update as ccxt's mark price."""
    at = ms(m.ts_ns)
    return MarkPrice(
        symbol=symbol,
        markPrice=m.mark,
        indexPrice=m.index,
        timestamp=at,
        datetime=iso(at),
        info=info(m),
    )
