"""What the exchange publishes: answers to requests, account updates, market data.

On ``paperx/v1/ack/{acct}``: `Accepted` / `Rejected` (one per request), the
query answers, and `OrderUpdate` / `TradeFill`. On ``paperx/v1/acct/{acct}``:
balances, positions, margin calls, liquidations, ADL and funding. On
``paperx/v1/md/{symbol}/...``: trades, book deltas and snapshots, marks and
funding rates. Every message is tagged by ``kind``; money, prices and
quantities are decimal strings, exchange times ``ts_ns``, and ``seq`` is the
journal record that decided it. Schema rules as in `exchange.gateway.wire`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

import msgspec

from exchange.messages import MarginMode, OrderType, Side, TimeInForce, TriggerSource

__all__ = [
    "Accepted",
    "AdlNotice",
    "Answer",
    "BalanceInfo",
    "BalanceUpdate",
    "BookSnapshot",
    "BookUpdate",
    "FundingNotice",
    "FundingRate",
    "LiquidationNotice",
    "MarginCallNotice",
    "MarkUpdate",
    "OpenOrder",
    "OpenOrdersInfo",
    "OrderUpdate",
    "PositionInfo",
    "PositionUpdate",
    "PositionsInfo",
    "PublicTrade",
    "Rejected",
    "TradeFill",
]

Level = tuple[Decimal, Decimal]  # (price, quantity)


# ---------------------------------------------------------------- answers


class _Answer(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind"):
    """Base of every message the exchange publishes, tagged by ``kind``."""


class Accepted(_Answer, tag="accepted"):
    """A command passed every check and took effect in record ``seq``.

    ``order_id`` names the order it placed, canceled or amended (0 for none).
    ``duplicate``: this answers a redelivery or retry with the original outcome.
    """

    id: str
    op: str
    seq: int
    order_id: int = 0
    cid: str = ""
    duplicate: bool = False


class Rejected(_Answer, tag="rejected"):
    """A request was refused and changed nothing.

    ``code`` and ``name`` are a stable `exchange.codes.RejectCode`; ``seq`` is
    the journal record of a reject the core decided (0: refused before it).
    ``id`` is "" when the request was too malformed to read its id.
    ``retry_after_ms``: for RATE_LIMITED, how long to wait before the account
    may send again (0 otherwise).
    """

    id: str
    op: str
    code: int
    name: str
    message: str
    seq: int = 0
    order_id: int = 0
    cid: str = ""
    duplicate: bool = False
    retry_after_ms: int = 0


class OrderUpdate(_Answer, tag="order"):
    """An order's state after record ``seq`` (one per order the record touched).

    ``status``: new, partially_filled, filled, canceled, expired. ``qty`` is
    the total, ``remaining`` the open part; ``reason`` says why a canceled or
    expired order ended (see `exchange.messages.OrderExpired`).
    """

    seq: int
    ts_ns: int
    order_id: int
    cid: str
    symbol: str
    side: Side
    type: OrderType
    status: str
    price: Decimal | None
    qty: Decimal
    filled: Decimal
    remaining: Decimal
    reason: str = ""


class TradeFill(_Answer, tag="fill"):
    """One fill of the account's order, at the maker's price; ``fee`` in USDT."""

    seq: int
    ts_ns: int
    trade_id: int
    order_id: int
    cid: str
    symbol: str
    side: Side
    price: Decimal
    qty: Decimal
    liquidity: Literal["maker", "taker"]
    fee: Decimal


class BalanceUpdate(_Answer, tag="balance"):
    """The cross wallet moved by ``change`` to ``wallet`` (USDT) for ``reason``."""

    seq: int
    ts_ns: int
    change: Decimal
    wallet: Decimal
    reason: str


class PositionUpdate(_Answer, tag="position"):
    """A position after a change: ``size`` signed contracts, money in USDT.

    ``entry_price`` is None when flat; ``margin`` is the isolated wallet (0 in
    cross); ``realized`` and ``fee`` are what this change realized and paid.
    """

    seq: int
    ts_ns: int
    symbol: str
    size: Decimal
    entry_price: Decimal | None
    margin: Decimal
    mode: MarginMode
    leverage: int
    realized: Decimal
    fee: Decimal


class MarginCallNotice(_Answer, tag="margin_call"):
    """A margin balance fell to its maintenance margin; liquidation follows.

    ``symbol`` "" is the whole cross account.
    """

    seq: int
    ts_ns: int
    symbol: str
    margin_balance: Decimal
    maintenance_margin: Decimal


class LiquidationNotice(_Answer, tag="liquidation"):
    """A position was liquidated: ``qty`` contracts at or better than bankruptcy.

    ``filled`` in the book by ``order_id``, ``deleveraged`` by ADL, ``left``
    still open after a partial liquidation; ``fee`` went to the insurance fund.
    """

    seq: int
    ts_ns: int
    symbol: str
    mode: MarginMode
    qty: Decimal
    bankruptcy_price: Decimal
    order_id: int
    filled: Decimal
    deleveraged: Decimal
    fee: Decimal
    left: Decimal


class AdlNotice(_Answer, tag="adl"):
    """Auto-deleveraging closed ``qty`` contracts of the account at ``price``."""

    seq: int
    ts_ns: int
    symbol: str
    qty: Decimal
    price: Decimal


class FundingNotice(_Answer, tag="funding"):
    """The account paid (``amount`` > 0) or received (< 0) funding, USDT."""

    seq: int
    ts_ns: int
    symbol: str
    amount: Decimal
    rate: Decimal
    mark: Decimal
    funding_ts_ns: int


class BalanceInfo(_Answer, tag="balance_info"):
    """The answer to `GetBalance` (see `exchange.shell.account_views.balance_view`)."""

    id: str
    seq: int
    wallet: Decimal
    free: Decimal
    used: Decimal
    total: Decimal


class PositionInfo(msgspec.Struct, frozen=True, kw_only=True):
    """One open position (see `exchange.shell.account_views.position_views`)."""

    symbol: str
    side: Literal["long", "short"]
    contracts: Decimal
    entry_price: Decimal
    mark_price: Decimal | None
    notional: Decimal
    leverage: int
    unrealized_pnl: Decimal
    liquidation_price: Decimal | None
    margin_mode: MarginMode
    collateral: Decimal
    initial_margin: Decimal
    maintenance_margin: Decimal
    margin_ratio: Decimal | None


class PositionsInfo(_Answer, tag="positions_info"):
    """The answer to `GetPositions`."""

    id: str
    seq: int
    positions: list[PositionInfo]


class OpenOrder(msgspec.Struct, frozen=True, kw_only=True):
    """One open order (see `exchange.shell.order_views.OrderTracker.row`)."""

    order_id: int
    client_order_id: str
    symbol: str
    side: Side
    type: OrderType
    status: str
    price: Decimal | None
    qty: Decimal
    filled: Decimal
    remaining: Decimal
    tif: TimeInForce
    post_only: bool
    reduce_only: bool
    trigger_price: Decimal | None
    trigger_by: TriggerSource | None
    triggered: bool | None


class OpenOrdersInfo(_Answer, tag="open_orders_info"):
    """The answer to `GetOpenOrders`, oldest first."""

    id: str
    seq: int
    orders: list[OpenOrder]


# ---------------------------------------------------------------- market data


class PublicTrade(_Answer, tag="trade"):
    """A public trade at the maker's price; ``taker_side`` bought or sold."""

    seq: int
    ts_ns: int
    symbol: str
    trade_id: int
    price: Decimal
    qty: Decimal
    taker_side: Side


class BookUpdate(_Answer, tag="book_delta"):
    """The levels of ``symbol`` that record ``seq`` changed: (price, total qty).

    A quantity of 0 removes the level. ``book_seq`` counts this symbol's book
    messages one by one: a delta whose ``book_seq`` is not the last one + 1
    means a message was lost, and the client resyncs from a snapshot.
    """

    seq: int
    ts_ns: int
    symbol: str
    book_seq: int
    bids: list[Level]
    asks: list[Level]


class BookSnapshot(_Answer, tag="book_snapshot"):
    """The top levels of ``symbol``, best first, as of delta ``book_seq``.

    Apply the deltas with a larger ``book_seq`` on top. ``id`` echoes a
    `GetBook` request ("" for the periodic snapshots on the book topic).
    """

    seq: int
    symbol: str
    book_seq: int
    bids: list[Level]
    asks: list[Level]
    id: str = ""


class MarkUpdate(_Answer, tag="mark"):
    """``symbol``'s mark price moved; ``index`` is None before the first index."""

    seq: int
    ts_ns: int
    symbol: str
    mark: Decimal
    index: Decimal | None


class FundingRate(_Answer, tag="funding_rate"):
    """Funding settled for the interval ending at ``funding_ts_ns`` at ``rate``."""

    seq: int
    ts_ns: int
    symbol: str
    rate: Decimal
    mark: Decimal
    funding_ts_ns: int


Answer = (
    Accepted
    | Rejected
    | OrderUpdate
    | TradeFill
    | BalanceUpdate
    | PositionUpdate
    | MarginCallNotice
    | LiquidationNotice
    | AdlNotice
    | FundingNotice
    | BalanceInfo
    | PositionsInfo
    | OpenOrdersInfo
    | PublicTrade
    | BookUpdate
    | BookSnapshot
    | MarkUpdate
    | FundingRate
)
