"""The command line the sample bots share: account, credentials, broker, symbol."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from clients.sdk import PaperxClient

__all__ = ["main", "parser", "tick_round"]


def parser(description: str) -> argparse.ArgumentParser:
    """Return a parser with the options every bot takes."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--account", required=True, help="the account (MQTT username)")
    p.add_argument("--api-key", default=os.environ.get("PAPERX_API_KEY", ""))
    p.add_argument(
        "--secret",
        default=os.environ.get("PAPERX_SECRET", ""),
        help="the API secret (default: $PAPERX_SECRET)",
    )
    p.add_argument("--broker", default="mqtt://127.0.0.1:1883")
    p.add_argument("--mqtt-password", default=os.environ.get("PAPERX_MQTT_PASSWORD"))
    p.add_argument("--symbol", default="BTC/USDT:USDT")
    return p


def main(
    args: argparse.Namespace,
    bot: Callable[[PaperxClient], Awaitable[Any]],
) -> None:
    """Connect with ``args`` and run ``bot`` until it returns or Ctrl-C."""

    async def session() -> None:
        async with PaperxClient(
            args.account,
            args.api_key,
            args.secret,
            broker=args.broker,
            mqtt_password=args.mqtt_password,
        ) as client:
            await bot(client)

    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how a bot stops
        asyncio.run(session())


def tick_round(price: Decimal, tick: Decimal, *, up: bool) -> Decimal:
    """Return ``price`` rounded to a multiple of ``tick``, up or down."""
    steps = price / tick
    whole = steps.to_integral_value(rounding="ROUND_CEILING" if up else "ROUND_FLOOR")
    return whole * tick
