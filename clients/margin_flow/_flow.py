"""The flow: the stream's timeline, event after event, and `generate` that runs it."""

from __future__ import annotations

import random
from collections import deque
from typing import TYPE_CHECKING

from clients.margin_flow._index import IndexPath
from clients.margin_flow._makers import Makers
from clients.margin_flow._market import MarketView, start_ticks
from clients.margin_flow._positions import Positions
from clients.margin_flow._shape import MarginShape
from clients.margin_flow._stream import MarginStream, Stamped
from clients.margin_flow._takers import Takers
from exchange.markets import DEFAULT_MARKETS, Market
from exchange.messages import AdvanceTime, Command, SetIndexPrice

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

HOUR_NS = 3600 * 10**9
FUNDING_NS = 8 * HOUR_NS
START_NS = 1_704_070_800 * 10**9  # 2024-01-01 01:00 UTC


class _Flow:
    """Builds the stream step by step from its parts; the package doc says how."""

    def __init__(
        self, n: int, seed: int, shape: MarginShape, markets: Sequence[Market]
    ) -> None:
        self.n = n
        self.shape = shape
        rng = random.Random(seed)  # noqa: S311 -- a reproducible simulation
        self.markets = [MarketView(m, start_ticks(m), shape.makers) for m in markets]
        self.makers = Makers(shape, rng)
        self.takers = Takers(shape, rng)
        self.pending: deque[Command] = deque()
        leg_len = max(n // shape.legs, 1)
        self.path = IndexPath(shape, rng, leg_len)
        self.positions = Positions(shape, rng, self.markets, self.pending, leg_len)
        self.step = 0
        self.span_ns = shape.hours * HOUR_NS
        self.next_funding = (START_NS // FUNDING_NS + 1) * FUNDING_NS

    def setup(self) -> list[Stamped]:
        """Create the accounts; return their deposits, modes and leverages."""
        out = self.makers.setup(self.markets) + self.takers.setup(self.markets)
        return [(START_NS, cmd) for cmd in out]

    def flow(self) -> list[Stamped]:
        """Return the ``n`` flow commands, stamped."""
        out: list[Stamped] = []
        n, span = self.n, self.span_ns
        for m in self.markets:
            self.path.new_leg(m, self.step)
            self.pending.extend(self._index(m))
        while len(out) < n:
            self.step = len(out)
            ts = START_NS + self.step * span // n
            if ts >= self.next_funding:
                out.append((ts, AdvanceTime(ts_ns=self.next_funding)))
                self.next_funding += FUNDING_NS
                continue
            if not self.pending:
                self._next_event()
            out.append((ts, self.pending.popleft()))
        return out

    def _next_event(self) -> None:
        """Queue the commands of the next event (index, close or taker action)."""
        step = self.step
        if step and not step % self.shape.index_every:
            for m in self.markets:
                self.pending.extend(self._index(m))
            if self.pending:
                return
        if self.positions.close_due(step):
            return
        self.positions.act(self.takers.pick(), step)
        if not self.pending:  # nothing to do this time: the makers refresh
            self.pending.extend(
                self.makers.ladder(self.markets[0], step % len(self.makers.names))
            )

    def _index(self, m: MarketView) -> list[Command]:
        """Move one market's index and return its record and the makers' answers.

        The cancels that the triggers it fires queue (a closed position's
        other orders) go straight onto the queue, ahead of these.
        """
        old = m.index
        gap = self.path.move(m, self.step)
        out = self.makers.pull(m) if gap else []
        out.append(
            SetIndexPrice(symbol=m.market.symbol, price=m.index * m.market.tick_size)
        )
        self.positions.fire(m, old, gap=gap)
        out.extend(self.makers.requote(m))
        return out


def generate(
    n: int,
    seed: int = 42,
    shape: MarginShape | None = None,
    markets: Iterable[Market] = DEFAULT_MARKETS,
) -> MarginStream:
    """Return the setup and ``n`` flow commands of the workload (package doc).

    The same ``n``, seed, shape and markets always give the same stream.

    Raises:
        ValueError: if ``n`` is not positive or the shape is unusable.
    """
    if n <= 0:
        msg = "a margin flow needs a positive number of commands"
        raise ValueError(msg)
    shape = shape or MarginShape()
    chosen = tuple(markets)
    gen = _Flow(n, seed, shape, chosen)
    setup = gen.setup()
    return MarginStream(
        seed=seed,
        symbols=[m.symbol for m in chosen],
        shape=shape,
        setup=setup,
        flow=gen.flow(),
    )
