"""An in-process venue and SDK clients on it, for the SDK's tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from margin_helpers import FREE

from clients.sdk import LoopbackExchange, PaperxClient

BTC = "BTC-PERP"
BTC_CCXT = "BTC/USDT:USDT"
BOOK = "paperx/v1/md/BTC-PERP/book"


def venue(*accounts: str, deposit: str = "100000", **kwargs: Any) -> LoopbackExchange:
    """Return a loopback exchange on the FREE markets with funded accounts."""
    exchange = LoopbackExchange(FREE, **kwargs)
    for account in accounts:
        exchange.add_account(account, deposit)
    exchange.set_index(BTC, "65000")
    return exchange


@asynccontextmanager
async def client(
    exchange: LoopbackExchange, account: str, **kwargs: Any
) -> AsyncIterator[PaperxClient]:
    """Yield a connected client of ``account`` on ``exchange``."""
    creds = exchange._credentials[account]
    settings: dict[str, Any] = {"timeout": 2.0, "reconnect_delay": 0.01}
    settings.update(kwargs)
    async with PaperxClient(
        account,
        creds.api_key,
        settings.pop("secret", creds.secret),
        transport=settings.pop("transport", None) or exchange.transport(account),
        **settings,
    ) as sdk:
        yield sdk
