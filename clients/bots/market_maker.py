"""A market maker: quotes a bid and an ask around the mark, re-quoting as it moves.

On each mark update it cancels its quotes and posts new ones (one signed
batch) ``spread_bps`` away from the mark, shifted against its inventory:
long, it quotes lower to sell more than it buys; short, higher.

    python -m clients.bots.market_maker --account mm --broker mqtt://127.0.0.1:1883
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from decimal import Decimal

from clients.bots._cli import main, parser, tick_round
from clients.bots._margin import held
from clients.sdk import Order, PaperxClient

__all__ = ["cli", "quote", "run"]

_log = logging.getLogger(__name__)


async def quote(
    client: PaperxClient,
    symbol: str,
    mark: Decimal,
    *,
    size: Decimal,
    spread_bps: Decimal,
    skew_bps: Decimal,
    tick: Decimal,
) -> list[Order]:
    """Replace the quotes around ``mark``; return the new bid and ask."""
    inventory = await held(client, symbol)
    center = mark * (1 - skew_bps * inventory / size / 10_000)
    half = center * spread_bps / 20_000
    await client.cancel_all_orders(symbol)
    post = {"postOnly": True}
    return await client.create_orders(
        [
            {"symbol": symbol, "type": "limit", "side": "buy", "amount": size,
             "price": tick_round(center - half, tick, up=False), "params": post},
            {"symbol": symbol, "type": "limit", "side": "sell", "amount": size,
             "price": tick_round(center + half, tick, up=True), "params": post},
        ]
    )  # fmt: skip


async def run(
    client: PaperxClient,
    symbol: str = "BTC/USDT:USDT",
    *,
    size: Decimal = Decimal("0.01"),
    spread_bps: Decimal = Decimal(10),
    skew_bps: Decimal = Decimal(2),
    tick: Decimal = Decimal("0.1"),
    requotes: int | None = None,
) -> int:
    """Quote on every mark update (``requotes`` times, or forever); return the count."""
    done = 0
    async for mark in client.watch_mark_price(symbol):
        quotes = await quote(
            client, symbol, mark["markPrice"],
            size=size, spread_bps=spread_bps, skew_bps=skew_bps, tick=tick,
        )  # fmt: skip
        done += 1
        sides = [(q["side"], q["price"], q["status"]) for q in quotes]
        _log.info("mark %s: quotes %s", mark["markPrice"], sides)
        if requotes is not None and done >= requotes:
            break
    return done


def cli(argv: Sequence[str] | None = None, prog: str | None = None) -> None:
    """Run the market maker from the command line."""
    p = parser("Quote both sides around the mark price.", prog)
    p.add_argument("--size", type=Decimal, default=Decimal("0.01"), help="per quote")
    p.add_argument("--spread-bps", type=Decimal, default=Decimal(10))
    p.add_argument("--skew-bps", type=Decimal, default=Decimal(2))
    p.add_argument("--tick", type=Decimal, default=Decimal("0.1"), help="tick size")
    args = p.parse_args(argv)
    main(
        args,
        lambda c: run(c, args.symbol, size=args.size, spread_bps=args.spread_bps,
                      skew_bps=args.skew_bps, tick=args.tick),
    )  # fmt: skip


if __name__ == "__main__":
    cli()
