"""The demo's live view: progress, mark prices, fills per second, liquidations.

On a terminal it redraws one status line a few times a second and prints a
line above it for each liquidation; elsewhere (a pipe, a CI log) it prints a
plain status line every ``every_s`` seconds, so the log stays readable.
It learns what happens from the public market data (`watch_market`) and
from the bots' own liquidation notices (`watch_liquidations`).
"""

from __future__ import annotations

import asyncio
import sys
import time
from decimal import Decimal
from typing import TYPE_CHECKING, TextIO

from clients.sdk import ClientError, PaperxClient
from exchange.gateway import answers as out
from exchange.gateway.wire import Codec

if TYPE_CHECKING:
    import aiomqtt

__all__ = ["LiveView"]

_REDRAW_S = 0.25


class LiveView:
    """What the demo shows while it runs, and the counts behind it."""

    def __init__(
        self, duration: float, stream: TextIO | None = None, every_s: float = 5.0
    ) -> None:
        """Show a run of ``duration`` seconds on ``stream`` (default stderr)."""
        self.duration = duration
        self.stream = sys.stderr if stream is None else stream
        self.tty = self.stream.isatty()
        self.every_s = every_s
        self.marks: dict[str, Decimal] = {}
        self.fills = 0
        self.liquidations = 0
        self.started = time.monotonic()
        self._last = (self.started, 0)  # (when, fills) of the previous status
        self._rate = 0.0

    async def watch_market(self, client: aiomqtt.Client, codec: Codec) -> None:
        """Count public trades and keep the marks, from a subscribed client."""
        async for message in client.messages:
            assert isinstance(message.payload, bytes)  # paho delivers bytes
            answer = codec.answer(message.payload)
            if isinstance(answer, out.PublicTrade):
                self.fills += 1
            elif isinstance(answer, out.MarkUpdate):
                self.marks[answer.symbol] = answer.mark

    async def watch_liquidations(self, client: PaperxClient) -> None:
        """Report each liquidation notice of ``client``'s account."""
        try:
            async for notice in client.watch_account():
                if isinstance(notice, out.LiquidationNotice):
                    self.liquidations += 1
                    self.event(
                        f"! {client.account} liquidated: {notice.symbol} "
                        f"{notice.mode} {notice.qty} at {notice.bankruptcy_price:,} "
                        "(bankruptcy price) or better"
                    )
        except ClientError:
            return  # the client closed: the run is over

    async def run(self) -> None:
        """Show the status until ``duration`` has passed since the start."""
        end = self.started + self.duration
        next_plain = self.started + self.every_s
        while (now := time.monotonic()) < end:
            if self.tty:
                self._draw(now)
            elif now >= next_plain:
                next_plain += self.every_s
                self._print(self.status(now))
            await asyncio.sleep(min(_REDRAW_S, end - now))
        self.close()

    def event(self, text: str) -> None:
        """Print a line about something that happened, above the status line."""
        self._print(("\r\x1b[2K" if self.tty else "") + "  " + text)
        if self.tty:
            self._draw(time.monotonic())

    def close(self) -> None:
        """Print the final status line."""
        line = self.status(time.monotonic())
        self.stream.write(("\r\x1b[2K" + line if self.tty else line) + "\n")
        self.stream.flush()

    def status(self, now: float) -> str:
        """Render the status: progress, marks, fills and their rate, liquidations."""
        elapsed = min(now - self.started, self.duration)
        then, fills_then = self._last
        if now - then >= 1.0:
            self._rate = (self.fills - fills_then) / (now - then)
            self._last = (now, self.fills)
        width = 20
        done = int(width * elapsed / max(self.duration, 1e-9))
        marks = "  ".join(f"{s} {p:,.2f}" for s, p in sorted(self.marks.items()))
        return (
            f"[{'#' * done}{'.' * (width - done)}] {elapsed:3.0f}/{self.duration:.0f}"
            f" s  {marks or 'no mark yet'}  fills {self.fills:,} "
            f"({self._rate:,.0f}/s)  liquidations {self.liquidations}"
        )

    def _draw(self, now: float) -> None:
        """Redraw the status line in place (terminal only)."""
        self.stream.write("\r\x1b[2K" + self.status(now))
        self.stream.flush()

    def _print(self, line: str) -> None:
        """Print one whole line."""
        self.stream.write(line + "\n")
        self.stream.flush()
