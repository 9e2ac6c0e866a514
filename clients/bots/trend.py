"""A leveraged trend follower: long when the mark rises above its average, short below.

It sets its margin mode (isolated or cross) and leverage, keeps the last
``window`` marks, and when the mark leaves their average by more than
``threshold_bps`` it takes a position of ``size`` in that direction with a
market order (flipping a position it holds the other way). The same signal
under isolated and under cross makes the same trades; only what a bad move
costs differs.

    paperx bot trend --account trend --mode cross --leverage 20
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Sequence
from decimal import Decimal

from clients.bots._cli import main, parser
from clients.bots._margin import MarginMode, configure, held
from clients.sdk import Order, PaperxClient, RejectedError

__all__ = ["cli", "run"]

_log = logging.getLogger(__name__)


async def run(
    client: PaperxClient,
    symbol: str = "BTC/USDT:USDT",
    *,
    mode: MarginMode = "isolated",
    leverage: int = 10,
    size: Decimal = Decimal("0.01"),
    window: int = 5,
    threshold_bps: Decimal = Decimal(5),
    steps: int | None = None,
) -> list[Order]:
    """Trade on mark updates (``steps`` of them, or forever); return its orders."""
    await configure(client, [symbol], mode, leverage)
    marks: deque[Decimal] = deque(maxlen=window)
    holding = Decimal(0)  # signed contracts this bot holds
    orders: list[Order] = []
    seen = 0
    async for update in client.watch_mark_price(symbol):
        mark = update["markPrice"]
        seen += 1
        if len(marks) == window:
            average = sum(marks, Decimal(0)) / window
            move_bps = (mark - average) / average * 10_000
            target = holding
            if move_bps > threshold_bps:
                target = size
            elif move_bps < -threshold_bps:
                target = -size
            if target != holding:
                holding = await held(client, symbol)  # a liquidation closes it
            if target != holding:
                side = "buy" if target > holding else "sell"
                try:
                    order = await client.create_order(
                        symbol, "market", side, abs(target - holding)
                    )
                except RejectedError as error:  # no liquidity, no margin: wait
                    _log.info("%s refused: %s", side, error)
                else:  # an unfilled market order (no liquidity near) expires
                    holding += order["filled"] if side == "buy" else -order["filled"]
                    orders.append(order)
                    _log.info(
                        "mark %s (%+.1f bps): %s at %s",
                        mark, move_bps, side, order["average"],
                    )  # fmt: skip
        marks.append(mark)
        if steps is not None and seen >= steps:
            break
    return orders


def cli(argv: Sequence[str] | None = None, prog: str | None = None) -> None:
    """Run the trend follower from the command line."""
    p = parser("Follow the mark's trend with a leveraged position.", prog)
    p.add_argument("--mode", choices=["isolated", "cross"], default="isolated")
    p.add_argument("--leverage", type=int, default=10)
    p.add_argument("--size", type=Decimal, default=Decimal("0.01"), help="contracts")
    p.add_argument("--window", type=int, default=5, help="marks averaged")
    p.add_argument("--threshold-bps", type=Decimal, default=Decimal(5))
    args = p.parse_args(argv)
    main(args, lambda c: run(c, args.symbol, mode=args.mode, leverage=args.leverage,
                             size=args.size, window=args.window,
                             threshold_bps=args.threshold_bps))  # fmt: skip


if __name__ == "__main__":
    cli()
