"""An over-leveraged long that gets liquidated: isolated or cross, as you choose.

It sets the margin mode and a high leverage, buys ``size`` at market, and
waits for its liquidation notice. Isolated, only the position's margin is at
stake; cross, the whole wallet backs it, so it survives a larger move.

    python -m clients.bots.overleveraged --account yolo --mode isolated --leverage 100
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Literal

from clients.bots._cli import main, parser
from clients.sdk import PaperxClient
from exchange.gateway.answers import LiquidationNotice

__all__ = ["run"]


async def run(
    client: PaperxClient,
    symbol: str = "BTC/USDT:USDT",
    *,
    mode: Literal["isolated", "cross"] = "isolated",
    leverage: int = 100,
    size: Decimal = Decimal("0.1"),
) -> LiquidationNotice:
    """Open the long and return the notice of its liquidation."""
    notices = client.watch_account()
    await client.set_margin_mode(mode, symbol)
    await client.set_leverage(leverage, symbol)
    order = await client.create_order(symbol, "market", "buy", size)
    positions = await client.fetch_positions([symbol])  # none if liquidated already
    liquidation = positions[0]["liquidationPrice"] if positions else None
    print(
        f"long {order['filled']} at {order['average']} ({mode}, {leverage}x), "
        f"liquidation price {liquidation}"
    )
    async for notice in notices:
        if isinstance(notice, LiquidationNotice):
            print(f"liquidated: {notice.qty} at {notice.bankruptcy_price} or better")
            return notice
    msg = "the account stream ended"  # unreachable: a stream ends by raising
    raise AssertionError(msg)


def cli(argv: Sequence[str] | None = None) -> None:
    """Run the over-leveraged bot from the command line."""
    p = parser("Open an over-leveraged long and wait to be liquidated.")
    p.add_argument("--mode", choices=["isolated", "cross"], default="isolated")
    p.add_argument("--leverage", type=int, default=100)
    p.add_argument("--size", type=Decimal, default=Decimal("0.1"))
    args = p.parse_args(argv)
    main(args, lambda c: run(c, args.symbol, mode=args.mode, leverage=args.leverage,
                             size=args.size))  # fmt: skip


if __name__ == "__main__":
    cli()
