"""A hedger: long one perpetual, short another, the same notional, under cross.

It sets both symbols to cross margin, so one wallet backs both legs: what
the long loses when the market falls, the short makes back, and the account
only feels the spread between them. On each mark it compares each leg with
``notional`` at the new price and trades the difference at market once it
exceeds ``rebalance_bps`` of the notional.

    paperx bot hedger --account pair --long BTC/USDT:USDT --short ETH/USDT:USDT
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from decimal import Decimal

from clients.bots._cli import lots, main, parser
from clients.bots._margin import configure, held
from clients.sdk import Order, PaperxClient, RejectedError, paperx_symbol

__all__ = ["cli", "run"]

_log = logging.getLogger(__name__)


async def run(
    client: PaperxClient,
    long: str = "BTC/USDT:USDT",
    short: str = "ETH/USDT:USDT",
    *,
    notional: Decimal = Decimal(10_000),
    leverage: int = 5,
    lot: Decimal = Decimal("0.001"),
    rebalance_bps: Decimal = Decimal(100),
    steps: int | None = None,
) -> list[Order]:
    """Hold the pair through ``steps`` mark updates (or forever); return its orders."""
    legs = {paperx_symbol(long): Decimal(1), paperx_symbol(short): Decimal(-1)}
    await configure(client, legs, "cross", leverage)
    marks: dict[str, Decimal] = {}
    holding = dict.fromkeys(legs, Decimal(0))  # signed contracts per leg
    orders: list[Order] = []
    seen = 0
    async for update in client.watch_mark_prices(legs):
        symbol = paperx_symbol(update["symbol"])
        if symbol not in legs:
            continue
        marks[symbol] = update["markPrice"]
        seen += 1
        for leg, sign in legs.items():
            if leg not in marks:
                continue  # both prices first
            target = sign * lots(notional / marks[leg], lot)
            if abs(target - holding[leg]) * 10_000 < abs(target) * rebalance_bps:
                continue
            holding[leg] = await held(client, leg)  # a liquidation closes it
            gap = target - holding[leg]
            if not gap:
                continue
            side = "buy" if gap > 0 else "sell"
            try:
                order = await client.create_order(leg, "market", side, abs(gap))
            except RejectedError as error:
                _log.info("%s %s %s refused: %s", side, abs(gap), leg, error.name)
                continue
            holding[leg] += order["filled"] if side == "buy" else -order["filled"]
            orders.append(order)
            _log.info("%s %s %s at %s", side, order["filled"], leg, order["average"])
        if steps is not None and seen >= steps:
            break
    return orders


def cli(argv: Sequence[str] | None = None, prog: str | None = None) -> None:
    """Run the hedger from the command line."""
    p = parser("Hold a long and a short of equal notional under cross margin.", prog)
    p.add_argument("--long", default="BTC/USDT:USDT", help="the market held long")
    p.add_argument("--short", default="ETH/USDT:USDT", help="the market held short")
    p.add_argument("--notional", type=Decimal, default=Decimal(10_000), help="USDT")
    p.add_argument("--leverage", type=int, default=5)
    p.add_argument("--lot", type=Decimal, default=Decimal("0.001"), help="lot size")
    p.add_argument("--rebalance-bps", type=Decimal, default=Decimal(100))
    args = p.parse_args(argv)
    main(args, lambda c: run(c, args.long, args.short, notional=args.notional,
                             leverage=args.leverage, lot=args.lot,
                             rebalance_bps=args.rebalance_bps))  # fmt: skip


if __name__ == "__main__":
    cli()
