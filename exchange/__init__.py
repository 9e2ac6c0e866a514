"""paperx exchange: the core, its journal and the in-process `Exchange` facade."""

from exchange.codes import RejectCode
from exchange.errors import (
    AuthenticationError,
    BadRequest,
    BadSymbol,
    ConfigError,
    DuplicateOrderId,
    ExchangeNotAvailable,
    InsufficientFunds,
    InvalidOrder,
    NoChange,
    NotSupported,
    OperationRejected,
    OrderImmediatelyFillable,
    OrderNotFillable,
    OrderNotFound,
    PaperxError,
    Precision,
    Rejected,
)
from exchange.markets import DEFAULT_MARKETS, Market
from exchange.shell.inprocess import Exchange
from exchange.shell.order_views import OrderResult, Trade

__all__ = [
    "DEFAULT_MARKETS",
    "AuthenticationError",
    "BadRequest",
    "BadSymbol",
    "ConfigError",
    "DuplicateOrderId",
    "Exchange",
    "ExchangeNotAvailable",
    "InsufficientFunds",
    "InvalidOrder",
    "Market",
    "NoChange",
    "NotSupported",
    "OperationRejected",
    "OrderImmediatelyFillable",
    "OrderNotFillable",
    "OrderNotFound",
    "OrderResult",
    "PaperxError",
    "Precision",
    "RejectCode",
    "Rejected",
    "Trade",
]
