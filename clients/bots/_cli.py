"""The command line the sample bots share: account, credentials, broker, symbol."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from clients.sdk import PaperxClient

__all__ = ["lots", "main", "parser", "tick_round"]


def parser(description: str, prog: str | None = None) -> argparse.ArgumentParser:
    """Return a parser with the options every bot takes."""
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument("--account", required=True, help="the account (MQTT username)")
    p.add_argument(
        "--api-key",
        default=os.environ.get("PAPERX_API_KEY", ""),
        help="the API key (default: $PAPERX_API_KEY)",
    )
    p.add_argument(
        "--secret",
        default=os.environ.get("PAPERX_SECRET", ""),
        help="the API secret (default: $PAPERX_SECRET)",
    )
    p.add_argument("--broker", default="mqtt://127.0.0.1:1883", help="mqtt://host:port")
    p.add_argument(
        "--mqtt-password",
        default=os.environ.get("PAPERX_MQTT_PASSWORD"),
        help="the account's broker password (default: $PAPERX_MQTT_PASSWORD)",
    )
    p.add_argument("--symbol", default="BTC/USDT:USDT", help="the market to trade")
    return p


def main(
    args: argparse.Namespace,
    bot: Callable[[PaperxClient], Awaitable[Any]],
) -> None:
    """Connect with ``args`` and run ``bot`` until it returns or Ctrl-C.

    What the bot does is logged (logger ``clients.bots``) to stdout.
    """
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    logger = logging.getLogger("clients.bots")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # the lines are for people: once, on stdout

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


def lots(amount: Decimal, lot: Decimal) -> Decimal:
    """Return ``amount`` rounded down to a whole number of ``lot`` (sign kept)."""
    return (amount / lot).to_integral_value(rounding="ROUND_DOWN") * lot
