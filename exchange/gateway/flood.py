"""Market-data floods: book deltas at a set rate that a correct client must follow.

A stress mode (`exchange.gateway.stress.FloodSettings`): ``rate`` book deltas
a second for each flooded symbol, on the book topic beside the real ones.
Each is a valid delta of the book's sequence: the next ``book_seq``, and
levels that exist re-stated at the quantity they have (`Session.restate`),
so a client that applies deltas in order keeps the true book and never
resyncs because of the flood; one that skips them sees gaps.

The flood goes through the outbox like all market data, so its conflation
rules still apply: a flood faster than the publishers drops the oldest book
messages (a gap: the subscriber resyncs from the next snapshot) and never
slows the core. After a stall of the event loop it sends at most one
second's worth at once and skips the rest.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, NoReturn

from exchange.gateway.stress import FloodSettings, seeded

if TYPE_CHECKING:
    from exchange.gateway.outbox import Outbox
    from exchange.gateway.session import Session

__all__ = ["run_flood"]

_TICK_S = 0.01  # how often the flood tops up to its rate


async def run_flood(
    session: Session,
    outbox: Outbox,
    settings: FloodSettings,
    symbols: list[str],
    seed: int,
) -> NoReturn:
    """Put ``settings.rate`` no-op book deltas a second per symbol into ``outbox``.

    ``symbols`` are the markets flooded (known to ``session``). Runs until
    cancelled.
    """
    rng = seeded(seed, "flood")
    rate = settings.rate
    loop = asyncio.get_running_loop()
    started = loop.time()
    sent = 0  # deltas per symbol so far, or skipped after a stall
    most = max(1, int(rate))  # one second's worth
    while True:
        await asyncio.sleep(max(_TICK_S, 1 / rate))
        target = int((loop.time() - started) * rate)
        due = min(target - sent, most)
        sent = target
        now_ns = time.time_ns()
        outbox.put(
            [
                session.restate(symbol, rng, now_ns)
                for _ in range(due)
                for symbol in symbols
            ]
        )
