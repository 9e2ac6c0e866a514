"""A lottery-ticket trader: tiny isolated margin, huge leverage, win big or lose it.

Each ticket is a market order of ``size`` on a random side (seeded) under
isolated margin at ``leverage``, with a reduce-only take-profit limit
``take_profit_bps`` away. The ticket ends when the position is flat again:
either the take-profit filled (won) or the mark moved the other way far
enough to liquidate it (lost: the ticket's margin, never the rest of the
wallet, since the margin is isolated). Then it buys the next ticket.

    paperx bot lottery --account yolo --leverage 100 --tickets 5
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from decimal import Decimal

from clients.bots._cli import main, parser, tick_round
from clients.bots._margin import configure
from clients.sdk import PaperxClient, RejectedError

__all__ = ["cli", "run"]

_log = logging.getLogger(__name__)


async def run(
    client: PaperxClient,
    symbol: str = "BTC/USDT:USDT",
    *,
    leverage: int = 100,
    size: Decimal = Decimal("0.01"),
    take_profit_bps: Decimal = Decimal(50),
    tick: Decimal = Decimal("0.1"),
    seed: int = 0,
    tickets: int | None = None,
) -> list[Decimal]:
    """Play ``tickets`` tickets (or forever); return what each won or lost (USDT)."""
    await configure(client, [symbol], "isolated", leverage)
    rng = random.Random(seed)  # noqa: S311 -- a trading game, not a secret
    results: list[Decimal] = []
    positions = client.watch_positions(symbol)
    book = client.watch_order_book(symbol)  # keeps only the newest book
    while tickets is None or len(results) < tickets:
        before = (await client.fetch_balance())["USDT"]["total"]
        side = rng.choice(["buy", "sell"])
        try:
            order = await client.create_order(symbol, "market", side, size)
        except RejectedError as error:  # e.g. no margin left: try on a new mark
            _log.info("ticket refused: %s", error.name)
            order = None
        if order is None or not order["filled"]:  # no liquidity: the same
            await anext(book)  # retry once the book has changed
            continue
        opened = order["info"]["seq"]  # earlier flat updates are not this ticket's
        entry = order["average"]
        assert entry is not None  # it filled
        away = entry * take_profit_bps / 10_000
        target = entry + (away if side == "buy" else -away)
        try:
            await client.create_order(
                symbol, "limit", "sell" if side == "buy" else "buy", order["filled"],
                tick_round(target, tick, up=side == "buy"), {"reduceOnly": True},
            )  # fmt: skip
        except RejectedError as error:  # liquidated at once: nothing to reduce
            _log.info("take-profit refused: %s", error.name)
        _log.info("%s %s at %s, %sx isolated", side, size, entry, leverage)
        async for position in positions:  # until a fill or a liquidation closes it
            if not position["contracts"] and position["info"]["seq"] > opened:
                break
        await client.cancel_all_orders(symbol)  # a take-profit a liquidation left
        results.append((await client.fetch_balance())["USDT"]["total"] - before)
        _log.info("ticket %d: %+f USDT", len(results), results[-1])
    return results


def cli(argv: Sequence[str] | None = None, prog: str | None = None) -> None:
    """Run the lottery-ticket trader from the command line."""
    p = parser(
        "Buy high-leverage isolated tickets: take profit or be liquidated.", prog
    )
    p.add_argument("--leverage", type=int, default=100)
    p.add_argument("--size", type=Decimal, default=Decimal("0.01"), help="contracts")
    p.add_argument("--take-profit-bps", type=Decimal, default=Decimal(50))
    p.add_argument("--tick", type=Decimal, default=Decimal("0.1"), help="tick size")
    p.add_argument("--seed", type=int, default=0, help="picks each ticket's side")
    p.add_argument("--tickets", type=int, help="how many (default: forever)")
    args = p.parse_args(argv)
    main(args, lambda c: run(c, args.symbol, leverage=args.leverage, size=args.size,
                             take_profit_bps=args.take_profit_bps, tick=args.tick,
                             seed=args.seed, tickets=args.tickets))  # fmt: skip


if __name__ == "__main__":
    cli()
