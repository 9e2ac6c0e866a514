"""The command streams ``paperx bench core`` runs, built in full before any timing."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from clients.orderflow import OrderFlow
from exchange.cli.progress import ProgressBar
from exchange.markets import DEFAULT_MARKETS, Market
from replay.streams import (
    read_meta,
    read_stream,
    standard_market,
    to_commands,
    to_records,
)

if TYPE_CHECKING:
    from exchange.messages import Command, Record
    from replay.streams import StreamTuple

__all__ = ["Expected", "Workload", "flow_workload", "standard_workload"]


class Expected:
    """Fill totals a run must reproduce (``fill_hash`` None: only the count known)."""

    __slots__ = ("fill_hash", "fills", "source")

    def __init__(self, fills: int, fill_hash: int | None, source: str) -> None:
        """Keep the expected fill count and hash, and where they come from."""
        self.fills = fills
        self.fill_hash = fill_hash
        self.source = source


class Workload:
    """A named command stream on its markets, as commands and as sequenced records.

    ``stream`` keeps the raw tuples of a standard stream (for the reference
    engine); it is None for our own order flow.
    """

    __slots__ = ("commands", "expected", "label", "markets", "records", "stream")

    def __init__(
        self,
        label: str,
        markets: tuple[Market, ...],
        commands: list[Command],
        expected: Expected | None,
        stream: list[StreamTuple] | None = None,
    ) -> None:
        """Sequence ``commands`` from seq 1, all at time 0 (the core reads no clock)."""
        self.stream = stream
        self.label = label
        self.markets = markets
        self.commands = commands
        self.records: list[Record] = to_records(commands)
        self.expected = expected


def standard_workload(path: str | Path, n: int | None) -> Workload:
    """Load the standard stream at ``path`` (its first ``n`` commands if given).

    The expected fills come from ``<stem>.meta.json`` beside it, when that
    describes exactly the commands loaded.
    """
    stream = read_stream(path)
    if n is not None:
        stream = stream[:n]
    market = standard_market()
    meta = read_meta(path)
    expected = None
    if meta is not None and meta.n == len(stream):
        expected = Expected(
            meta.expected_fills, meta.expected_fill_hash, Path(path).stem + ".meta.json"
        )
    commands = to_commands(stream, market)
    return Workload(
        f"standard stream {Path(path).name}", (market,), commands, expected, stream
    )


def flow_workload(n: int, seed: int, *, progress: bool = True) -> Workload:
    """Generate ``n`` commands of `clients.orderflow` on the default markets."""
    flow = OrderFlow(DEFAULT_MARKETS, seed)
    bar = ProgressBar(n, "generate") if progress else None
    commands: list[Command] = []
    append, draw = commands.append, flow.next_command
    for i in range(n):
        append(draw())
        if bar is not None and not i & 0xFFFF:
            bar.update(i)
    if bar is not None:
        bar.update(n)
        bar.close()
    symbols = ", ".join(m.symbol for m in DEFAULT_MARKETS)
    expected = Expected(flow.fills, None, "the generator's shadow exchange")
    return Workload(
        f"orderflow seed {seed} ({symbols})", DEFAULT_MARKETS, commands, expected
    )
