"""A bot's margin: the mode and leverage it starts with, the position it holds."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Literal

from clients.sdk import PaperxClient

__all__ = ["MarginMode", "configure", "held"]

MarginMode = Literal["isolated", "cross"]


async def configure(
    client: PaperxClient,
    symbols: Iterable[str],
    mode: MarginMode | None,
    leverage: int | None,
) -> None:
    """Set ``mode`` and ``leverage`` on each symbol (None: keep the account's).

    Raises:
        OperationRejected: the mode cannot change (a position or open orders).
    """
    for symbol in symbols:
        if mode is not None:
            await client.set_margin_mode(mode, symbol)
        if leverage is not None:
            await client.set_leverage(leverage, symbol)


async def held(client: PaperxClient, symbol: str) -> Decimal:
    """Return the signed contracts ``client``'s account holds in ``symbol``."""
    positions = await client.fetch_positions([symbol])
    return sum(
        (p["contracts"] if p["side"] == "long" else -p["contracts"] for p in positions),
        Decimal(0),
    )
