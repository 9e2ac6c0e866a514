"""The wire format: every message between bots and the exchange, in JSON or msgpack.

A bot publishes a `Signed` envelope: ``{"req": REQUEST, "sig": HEX}``, where
``sig`` is the HMAC-SHA256 of the exact bytes of ``REQUEST`` as they appear in
the payload (see `exchange.gateway.auth`). A request is one command, tagged by
``op``, or a ``batch`` of commands, each answered on its own. Every request
carries a request ``id`` (echoed in its answer), ``ts_ms`` (the bot's clock,
ms since the Unix epoch) and ``recv_window_ms``; order commands may carry a
client order id ``cid``. The account is never on the wire: it is the topic's.

Units: prices, quantities and money are decimal strings ("65000.1"); JSON
numbers are read exactly too, but many JSON writers print binary floats, so
send strings. Exchange times are ``ts_ns``; ``seq`` is the journal record that
decided an answer. Schema rules (msgspec's): a new field gets a default and
goes last, a type never changes, a tag is never reused.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal, NamedTuple

import msgspec

from exchange.gateway.answers import Answer
from exchange.messages import (
    MarginMode,
    OrderType,
    SelfTradePrevention,
    Side,
    TimeInForce,
    TriggerSource,
)

__all__ = [
    "DEFAULT_RECV_WINDOW_MS",
    "MAX_RECV_WINDOW_MS",
    "AdjustMargin",
    "AmendOrder",
    "Batch",
    "BatchItem",
    "CancelAll",
    "CancelOrder",
    "Codec",
    "GetBalance",
    "GetBook",
    "GetOpenOrders",
    "GetPositions",
    "NewOrder",
    "Outbound",
    "Query",
    "Request",
    "SetLeverage",
    "SetMarginMode",
    "Signed",
    "TopicKind",
    "topic",
]

DEFAULT_RECV_WINDOW_MS = 5_000  # Binance's default recvWindow
MAX_RECV_WINDOW_MS = 60_000  # Binance's maximum

RequestId = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
RecvWindow = Annotated[int, msgspec.Meta(ge=1, le=MAX_RECV_WINDOW_MS)]


class Signed(msgspec.Struct, forbid_unknown_fields=True):
    """What a bot publishes: a request and the HMAC of its exact bytes.

    ``sig`` defaults to "" so that an unsigned request is refused as unsigned
    (SIGNATURE_MISSING), not as malformed.
    """

    req: msgspec.Raw
    sig: str = ""


# ---------------------------------------------------------------- requests


class _Strict(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of what a bot sends: immutable, and an unknown field is MALFORMED."""


class _Request(_Strict, tag_field="op"):
    """Base of every request: its id, the bot's clock and the receive window.

    Refused as STALE_TIMESTAMP unless ``ts_ms`` lies within ``recv_window_ms``
    before the exchange's clock (and at most 1 s after it), as Binance does.
    """

    id: RequestId
    ts_ms: int
    recv_window_ms: RecvWindow = DEFAULT_RECV_WINDOW_MS


class NewOrder(_Request, tag="new", kw_only=True):
    """Place an order (see `exchange.messages.PlaceOrder` for every rule).

    ``price`` is required for limit types and absent for market types;
    ``trigger_price`` for stop and take-profit types. ``cid`` (at most 36
    characters) is the client order id; it is also the idempotency key of the
    order: a retry with a ``cid`` whose order was accepted is answered with
    that acceptance and never places a second order.
    """

    symbol: str
    side: Side
    type: OrderType
    qty: Decimal
    price: Decimal | None = None
    tif: TimeInForce = "GTC"
    post_only: bool = False
    reduce_only: bool = False
    trigger_price: Decimal | None = None
    trigger_by: TriggerSource = "last"
    stp: SelfTradePrevention = "none"
    cid: str = ""


class CancelOrder(_Request, tag="cancel", kw_only=True):
    """Cancel one open order, named by ``order_id`` or else ``cid``."""

    order_id: int = 0
    cid: str = ""


class AmendOrder(_Request, tag="amend", kw_only=True):
    """Give a resting order a new ``price`` and/or open ``qty`` (None: unchanged)."""

    order_id: int = 0
    cid: str = ""
    qty: Decimal | None = None
    price: Decimal | None = None


class CancelAll(_Request, tag="cancel_all", kw_only=True):
    """Cancel the account's open orders in ``symbol`` ("" = every symbol)."""

    symbol: str = ""


class SetLeverage(_Request, tag="leverage", kw_only=True):
    """Set a symbol's leverage (1..the tier maximum for the position)."""

    symbol: str
    leverage: int


class SetMarginMode(_Request, tag="margin_mode", kw_only=True):
    """Set a symbol's margin mode (no position and no open orders there)."""

    symbol: str
    mode: MarginMode


class AdjustMargin(_Request, tag="adjust_margin", kw_only=True):
    """Move ``amount`` USDT into (> 0) or out of (< 0) an isolated position."""

    symbol: str
    amount: Decimal


BatchItem = (
    NewOrder
    | CancelOrder
    | AmendOrder
    | CancelAll
    | SetLeverage
    | SetMarginMode
    | AdjustMargin
)


class Batch(_Strict, tag="batch", tag_field="op"):
    """Several commands under one signature, applied in order, each answered alone.

    Each command keeps its own ``id``, ``ts_ms`` and window. A batch longer
    than the session's limit is refused whole (BATCH_TOO_LARGE, one answer
    per command).
    """

    cmds: Annotated[list[BatchItem], msgspec.Meta(min_length=1)]


class GetBook(_Request, tag="book", kw_only=True):
    """Ask for an L2 snapshot of ``symbol``'s top ``depth`` levels per side."""

    symbol: str
    depth: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 100


class GetBalance(_Request, tag="balance", kw_only=True):
    """Ask for the account's balance (wallet, free, used, total)."""


class GetPositions(_Request, tag="positions", kw_only=True):
    """Ask for the account's open positions."""


class GetOpenOrders(_Request, tag="open_orders", kw_only=True):
    """Ask for the account's open orders in ``symbol`` ("" = every symbol)."""

    symbol: str = ""


Query = GetBook | GetBalance | GetPositions | GetOpenOrders
Request = BatchItem | Batch | Query


TopicKind = Literal["ack", "acct", "trades", "book", "mark"]


class Outbound(NamedTuple):
    """A message to publish: the topic's kind, its account or symbol, the message."""

    kind: TopicKind
    key: str
    message: Answer


def topic(kind: TopicKind, key: str) -> str:
    """Return the MQTT topic of DESIGN.md for a kind and its account or symbol."""
    if kind in ("ack", "acct"):
        return f"paperx/v1/{kind}/{key}"
    return f"paperx/v1/md/{key}/{kind}"


class Codec:
    """Encoders and decoders of one wire format, built once.

    ``fmt`` is "json" (the default: any language can trade) or "msgpack".
    Decoders raise `msgspec.DecodeError` (and its subclass ValidationError)
    on bad input; the session turns those into MALFORMED rejects.
    """

    __slots__ = ("_answers", "_encoder", "_envelope", "_requests", "fmt")

    def __init__(self, fmt: Literal["json", "msgpack"] = "json") -> None:
        """Build the encoder and decoders of ``fmt``."""
        self.fmt = fmt
        self._encoder: msgspec.json.Encoder | msgspec.msgpack.Encoder
        self._envelope: msgspec.json.Decoder[Signed] | msgspec.msgpack.Decoder[Signed]
        self._requests: msgspec.json.Decoder[Request] | msgspec.msgpack.Decoder[Request]
        self._answers: msgspec.json.Decoder[Answer] | msgspec.msgpack.Decoder[Answer]
        if fmt == "json":
            self._encoder = msgspec.json.Encoder()
            self._envelope = msgspec.json.Decoder(Signed)
            self._requests = msgspec.json.Decoder(Request)
            self._answers = msgspec.json.Decoder(Answer)
        else:
            self._encoder = msgspec.msgpack.Encoder()
            self._envelope = msgspec.msgpack.Decoder(Signed)
            self._requests = msgspec.msgpack.Decoder(Request)
            self._answers = msgspec.msgpack.Decoder(Answer)

    def encode(self, message: object) -> bytes:
        """Return the wire bytes of a message (an answer, request or envelope)."""
        return self._encoder.encode(message)

    def envelope(self, payload: bytes) -> Signed:
        """Decode the `Signed` envelope of a payload."""
        return self._envelope.decode(payload)

    def request(self, raw: bytes | msgspec.Raw) -> Request:
        """Decode a request (the envelope's ``req`` bytes)."""
        return self._requests.decode(raw)

    def answer(self, payload: bytes) -> Answer:
        """Decode a message the exchange published (for clients and tests)."""
        return self._answers.decode(payload)
