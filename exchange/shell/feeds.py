"""Outside facts as journaled commands: the index price feed and the clock.

The core reads no clock and no prices of its own: index prices enter as
`SetIndexPrice` records, and time moves between orders through `AdvanceTime`
records (funding is paid when exchange time crosses a funding time, so it
happens with no traffic at all). Both go through the sequencer like any
command, so a replay meets them in the same place.

Index prices come from one of two sources, each an iterator of
``(offset_ms, SetIndexPrice)`` (when, after the feed starts, to send it):

* `random_walk`: a seeded random walk per symbol (the default); each step
  multiplies the price by ``1 + step * z``, ``z`` standard normal, rounded to
  whole E8 units (the float only draws the step; prices stay ints);
* `recorded`: a CSV file of recorded prices with the header
  ``offset_ms,symbol,price`` (ms after the start, a paperx symbol, a decimal
  price), rows in time order; the feed ends after the last row.
"""

from __future__ import annotations

import asyncio
import csv
import random
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from decimal import Decimal
from pathlib import Path

from exchange.errors import ConfigError
from exchange.messages import AdvanceTime, Command, Event, SetIndexPrice
from exchange.units import to_e8, to_ppm

__all__ = ["IndexTick", "random_walk", "recorded", "run_clock", "run_index_feed"]

IndexTick = tuple[int, SetIndexPrice]
"""When to send an index price (ms after the feed started), and the command."""

Submit = Callable[[Command], Awaitable[tuple[int, list[Event]]]]


def random_walk(
    start: Mapping[str, Decimal], step: Decimal, interval_ms: int, seed: int
) -> Iterator[IndexTick]:
    """Yield one index price per symbol every ``interval_ms``, forever.

    The first prices are ``start``'s; the same seed gives the same walk.
    """
    rng = random.Random(seed)  # noqa: S311 -- a market simulation, not cryptography
    step_ppm = to_ppm(step)
    prices = {symbol: to_e8(price) for symbol, price in start.items()}
    offset = 0
    while True:
        for symbol, price in prices.items():
            yield offset, SetIndexPrice(symbol=symbol, price=price)
        offset += interval_ms
        for symbol, price in prices.items():
            move_ppm = round(step_ppm * rng.gauss(0.0, 1.0))
            # toward zero either way; never below one E8 unit
            prices[symbol] = max(1, price + price * move_ppm // 1_000_000)


def recorded(path: str | Path, symbols: set[str]) -> Iterator[IndexTick]:
    """Yield the index prices of a CSV file (see the module docstring).

    Raises:
        ConfigError: on a missing column, an unknown symbol, a bad number or
            an offset earlier than the row before.
    """
    path = Path(path)
    try:
        with path.open(encoding="utf-8", newline="") as file:
            rows = list(csv.DictReader(file))
    except OSError as exc:
        msg = f"{path}: cannot read the index feed: {exc.strerror}"
        raise ConfigError(msg) from exc
    last = 0
    for line, row in enumerate(rows, start=2):
        try:
            offset = int(row["offset_ms"])
            symbol = row["symbol"]
            price = to_e8(Decimal(row["price"]))
        except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
            msg = f"{path}:{line}: needs offset_ms,symbol,price ({exc!r})"
            raise ConfigError(msg) from exc
        if symbol not in symbols or offset < last:
            msg = f"{path}:{line}: unknown symbol {symbol!r} or offset out of order"
            raise ConfigError(msg)
        last = offset
        yield offset, SetIndexPrice(symbol=symbol, price=price)


async def run_index_feed(
    submit: Submit,
    ticks: Iterator[IndexTick],
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Submit each tick at its offset from now; return when the ticks end.

    A tick that is late (the exchange was busy) goes at once: prices are
    never skipped, so a recorded feed replays whole.
    """
    started = clock()
    for offset_ms, command in ticks:
        delay = started + offset_ms / 1000 - clock()
        if delay > 0:
            await asyncio.sleep(delay)
        await submit(command)


async def run_clock(
    submit: Submit, interval_ms: int, clock: Callable[[], int] = time.time_ns
) -> None:
    """Submit an `AdvanceTime` to the wall clock's time every ``interval_ms``."""
    while True:
        await asyncio.sleep(interval_ms / 1000)
        await submit(AdvanceTime(ts_ns=clock()))
