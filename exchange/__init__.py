"""paperx exchange: the core, its journal and the in-process `Exchange` facade."""

from exchange.codes import RejectCode
from exchange.errors import PaperxError, Rejected
from exchange.markets import DEFAULT_MARKETS, Market
from exchange.shell.inprocess import Exchange
from exchange.shell.order_views import OrderResult, Trade

__all__ = [
    "DEFAULT_MARKETS",
    "Exchange",
    "Market",
    "OrderResult",
    "PaperxError",
    "RejectCode",
    "Rejected",
    "Trade",
]
