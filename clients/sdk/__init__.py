"""The paperx client SDK: an async, ccxt-style client of one account.

Typical use::

    broker = "mqtt://127.0.0.1:1883"
    async with PaperxClient("mm", api_key, secret, broker=broker) as client:
        order = await client.create_order("BTC-PERP", "limit", "buy", "0.01", "65000")
        async for update in client.watch_orders():
            ...

Without a broker, `LoopbackExchange` serves an in-process exchange through
the same gateway session the server runs: pass ``transport=venue.transport(account)``.
"""

from clients.sdk._book import LocalBook
from clients.sdk._client import PaperxClient
from clients.sdk._errors import (
    AuthenticationError,
    BadRequest,
    BadSymbol,
    ClientClosed,
    ClientError,
    ConnectionLost,
    DuplicateOrderId,
    ExchangeNotAvailable,
    InsufficientFunds,
    InvalidOrder,
    NetworkError,
    NoChange,
    NotSupported,
    OperationRejected,
    OrderImmediatelyFillable,
    OrderNotFillable,
    OrderNotFound,
    RejectedError,
    RequestTimeout,
    StreamOverflow,
)
from clients.sdk._loopback import LoopbackExchange, LoopbackTransport
from clients.sdk._mqtt import MqttTransport, client_for
from clients.sdk._shapes import (
    Balance,
    Balances,
    MarkPrice,
    Order,
    OrderBook,
    Position,
    Trade,
    paperx_symbol,
)
from clients.sdk._streams import Stream
from clients.sdk._transport import Message, Transport, TransportError

__all__ = [
    "AuthenticationError",
    "BadRequest",
    "BadSymbol",
    "Balance",
    "Balances",
    "ClientClosed",
    "ClientError",
    "ConnectionLost",
    "DuplicateOrderId",
    "ExchangeNotAvailable",
    "InsufficientFunds",
    "InvalidOrder",
    "LocalBook",
    "LoopbackExchange",
    "LoopbackTransport",
    "MarkPrice",
    "Message",
    "MqttTransport",
    "NetworkError",
    "NoChange",
    "NotSupported",
    "OperationRejected",
    "Order",
    "OrderBook",
    "OrderImmediatelyFillable",
    "OrderNotFillable",
    "OrderNotFound",
    "PaperxClient",
    "Position",
    "RejectedError",
    "RequestTimeout",
    "Stream",
    "StreamOverflow",
    "Trade",
    "Transport",
    "TransportError",
    "client_for",
    "paperx_symbol",
]
