"""A noise trader: small market orders of random side, size and timing.

The crowd of a market: it waits a random pause (exponential, ``pause``
seconds on average), picks a symbol, a side and a size of 1 to
``max_lots`` lots at random (seeded, so a run can be repeated), and sends a
market order. A refusal (no margin, no liquidity) is part of the noise.

    paperx bot noise --account crowd-1 --seed 7 --symbols BTC/USDT:USDT ETH/USDT:USDT
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence
from decimal import Decimal

from clients.bots._cli import main, parser
from clients.bots._margin import MarginMode, configure
from clients.sdk import Order, PaperxClient, RejectedError

__all__ = ["cli", "run"]

_log = logging.getLogger(__name__)


async def run(
    client: PaperxClient,
    symbols: Sequence[str] = ("BTC/USDT:USDT",),
    *,
    seed: int = 0,
    lot: Decimal = Decimal("0.001"),
    max_lots: int = 20,
    pause: float = 0.5,
    mode: MarginMode | None = None,
    leverage: int | None = None,
    steps: int | None = None,
) -> list[Order]:
    """Send ``steps`` random market orders (or forever); return those accepted."""
    await configure(client, symbols, mode, leverage)
    rng = random.Random(seed)  # noqa: S311 -- simulated traders, not a secret
    orders: list[Order] = []
    sent = 0
    while steps is None or sent < steps:
        await asyncio.sleep(rng.expovariate(1 / pause) if pause else 0)
        symbol = rng.choice(symbols)
        side = rng.choice(["buy", "sell"])
        amount = lot * rng.randint(1, max_lots)
        sent += 1
        try:
            order = await client.create_order(symbol, "market", side, amount)
        except RejectedError as error:
            _log.info("%s %s %s refused: %s", side, amount, symbol, error.name)
            continue
        orders.append(order)
        _log.info("%s %s %s: filled %s", side, amount, symbol, order["filled"])
    return orders


def cli(argv: Sequence[str] | None = None, prog: str | None = None) -> None:
    """Run a noise trader from the command line."""
    p = parser("Send small market orders of random side, size and timing.", prog)
    p.add_argument("--symbols", nargs="+", default=None, help="default: --symbol")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lot", type=Decimal, default=Decimal("0.001"), help="lot size")
    p.add_argument("--max-lots", type=int, default=20, help="largest order, in lots")
    p.add_argument("--pause", type=float, default=0.5, help="mean seconds between")
    p.add_argument("--mode", choices=["isolated", "cross"], default=None)
    p.add_argument("--leverage", type=int, default=None)
    args = p.parse_args(argv)
    symbols = args.symbols or [args.symbol]
    main(args, lambda c: run(c, symbols, seed=args.seed, lot=args.lot,
                             max_lots=args.max_lots, pause=args.pause,
                             mode=args.mode, leverage=args.leverage))  # fmt: skip


if __name__ == "__main__":
    cli()
