"""A momentum taker: buys when the mark rises above its moving average, sells below.

It keeps the last ``window`` marks; when the mark leaves their average by
more than ``threshold_bps`` it takes a position of ``size`` in that
direction with a market order (flipping a position it holds the other way).

    python -m clients.bots.momentum --account trend --broker mqtt://127.0.0.1:1883
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from decimal import Decimal

from clients.bots._cli import main, parser
from clients.sdk import Order, PaperxClient, RejectedError

__all__ = ["run"]


async def run(
    client: PaperxClient,
    symbol: str = "BTC/USDT:USDT",
    *,
    size: Decimal = Decimal("0.01"),
    window: int = 5,
    threshold_bps: Decimal = Decimal(5),
    steps: int | None = None,
) -> list[Order]:
    """Trade on mark updates (``steps`` of them, or forever); return its orders."""
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
                side = "buy" if target > holding else "sell"
                try:
                    order = await client.create_order(
                        symbol, "market", side, abs(target - holding)
                    )
                except RejectedError as error:  # no liquidity, no margin: wait
                    print(f"{side} refused: {error}")
                else:  # an unfilled market order (no liquidity near) expires
                    holding += order["filled"] if side == "buy" else -order["filled"]
                    orders.append(order)
                    price = order["average"]
                    print(f"mark {mark} ({move_bps:+.1f} bps): {side} at {price}")
        marks.append(mark)
        if steps is not None and seen >= steps:
            break
    return orders


def cli(argv: Sequence[str] | None = None) -> None:
    """Run the momentum bot from the command line."""
    p = parser("Take positions in the direction of the mark's move.")
    p.add_argument("--size", type=Decimal, default=Decimal("0.01"))
    p.add_argument("--window", type=int, default=5)
    p.add_argument("--threshold-bps", type=Decimal, default=Decimal(5))
    args = p.parse_args(argv)
    main(args, lambda c: run(c, args.symbol, size=args.size, window=args.window,
                             threshold_bps=args.threshold_bps))  # fmt: skip


if __name__ == "__main__":
    cli()
