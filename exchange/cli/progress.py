"""A dependency-free progress bar for long runs, drawn on stderr."""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["ProgressBar"]


class ProgressBar:
    """Draws ``label [#####.....] 42% 1234/5000 3.2k/s`` at most ~10 times a second.

    On a non-terminal stream it prints nothing until `close`, which prints one
    final line, so logs stay readable.
    """

    def __init__(self, total: int, label: str, stream: TextIO | None = None) -> None:
        """Start a bar for ``total`` steps on ``stream`` (default: stderr now)."""
        self.total = max(total, 1)
        self.label = label
        self.stream = stream = sys.stderr if stream is None else stream
        self.tty = stream.isatty()
        self.started = time.perf_counter()
        self._next_draw = 0.0
        self.done = 0

    def update(self, done: int) -> None:
        """Set the number of steps done and redraw if it is time to."""
        self.done = done
        now = time.perf_counter()
        if self.tty and now >= self._next_draw:
            self._next_draw = now + 0.1
            self.stream.write("\r" + self._line(now))
            self.stream.flush()

    def close(self) -> None:
        """Draw the final state and end the line."""
        line = self._line(time.perf_counter())
        self.stream.write(("\r" + line if self.tty else line) + "\n")
        self.stream.flush()

    def _line(self, now: float) -> str:
        """Render the bar."""
        fraction = min(self.done / self.total, 1.0)
        width = 30
        filled = int(fraction * width)
        rate = self.done / max(now - self.started, 1e-9)
        return (
            f"{self.label} [{'#' * filled}{'.' * (width - filled)}] "
            f"{fraction:4.0%} {self.done:,}/{self.total:,} {_si(rate)}/s"
        )


def _si(value: float) -> str:
    """Return a rate with a k / M suffix."""
    for limit, suffix in ((1e6, "M"), (1e3, "k")):
        if value >= limit:
            return f"{value / limit:.1f}{suffix}"
    return f"{value:.0f}"
