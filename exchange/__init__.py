"""paperx exchange: the core, its journal and the in-process `Exchange` facade."""

from exchange.codes import RejectCode
from exchange.errors import (
    BadRequest,
    BadSymbol,
    ConfigError,
    DuplicateOrderId,
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
    "BadRequest",
    "BadSymbol",
    "ConfigError",
    "DuplicateOrderId",
    "Exchange",
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
