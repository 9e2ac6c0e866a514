"""The index path: per market, legs of a 2-5 % move, gradual or as one jump."""

from __future__ import annotations

from typing import TYPE_CHECKING

from clients.margin_flow._market import PPM, start_ticks

if TYPE_CHECKING:
    import random

    from clients.margin_flow._market import MarketView
    from clients.margin_flow._shape import MarginShape


class IndexPath:
    """Moves each market's index along its legs, with a little noise (package doc)."""

    def __init__(self, shape: MarginShape, rng: random.Random, leg_len: int) -> None:
        """Draw from ``rng``; a leg lasts ``leg_len`` flow steps."""
        self.shape = shape
        self.rng = rng
        self.leg_len = leg_len

    def new_leg(self, m: MarketView, step: int) -> None:
        """Start the market's next leg: a 2-5 % move, gradual or as one jump."""
        shape, rng = self.shape, self.rng
        move = rng.randint(*shape.move_ppm)
        start = start_ticks(m.market)
        drift = (m.index - start) / start
        up = rng.random() < (0.5 - 2 * drift)  # lean back toward the start
        move = move if up else -move
        m.leg_end = step + self.leg_len
        if rng.random() < shape.gap_share:
            m.gap_at = step + rng.randint(self.leg_len // 4, self.leg_len // 2)
            m.leg_step = float(move)  # the whole move at once
        else:
            m.gap_at = -1
            m.leg_step = move / max(self.leg_len / shape.index_every, 1.0)

    def move(self, m: MarketView, step: int) -> bool:
        """Move the market's index by one update; return whether it jumped.

        A jump is the leg's whole move at once, due at its ``gap_at`` step;
        until then a jumping leg only drifts by its noise.
        """
        if step >= m.leg_end:
            self.new_leg(m, step)
        noise = self.rng.gauss(0.0, self.shape.noise_ppm)
        gap = 0 <= m.gap_at <= step
        if gap:
            ppm = m.leg_step + noise
            m.gap_at, m.leg_step = -1, 0.0  # the leg's move is done
        else:
            ppm = (m.leg_step if m.gap_at < 0 else 0.0) + noise
        m.index = max(round(m.index * (1 + ppm / PPM)), 1)
        return gap
