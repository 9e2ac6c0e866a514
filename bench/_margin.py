"""Variant (d) of ``paperx bench core``: a venue-like margin workload through the core.

The stream is `clients.margin_flow`'s (its module doc gives the shape):
thousands of accounts, makers quoting around a moving index, takers opening
and closing positions in both margin modes with reduce-only and stop orders,
index legs and jumps that liquidate a few per mille of the positions and
auto-deleverage, and exchange time that crosses funding times. Each record is
stamped with its command's exchange time.

Everything is built before timing by one untimed *build pass* over a margin
core, which sequences the records:

- the setup commands (deposits, margin modes, leverages) come first and run
  before the clock starts in the timed run;
- the system commands (liquidations) the core asks for after a record take
  the next seqs, so the prebuilt records leave those seqs free.

The timed run replays the prebuilt records on a fresh core and creates only
the system records, from ``system_commands()``, right after the record
that caused them (as `exchange.shell.inprocess.Exchange.submit` does). The core is
deterministic, so they fall on exactly the seqs left free; any divergence would
break the seq check, and the final state hash is compared with the build
pass's. The build pass also yields what the report shows: rejects by code,
fills, positions opened, margin calls, liquidations, ADL and funding payments.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from bench._machine import percentile
from clients.margin_flow import MarginShape, MarginStream, generate
from exchange.cli.progress import ProgressBar
from exchange.codes import RejectCode
from exchange.core import ExchangeCore
from exchange.journal.payload import journal_payload
from exchange.markets import DEFAULT_MARKETS
from exchange.messages import (
    CommandRejected,
    FundingPaid,
    LiquidationSkipped,
    MarginCall,
    PositionChanged,
    PositionDeleveraged,
    PositionLiquidated,
    Record,
)
from replay.streams import FillHash

if TYPE_CHECKING:
    from collections.abc import Callable

    from exchange.markets import Market
    from exchange.messages import Command, Event

__all__ = [
    "DEFAULT_ACCOUNTS",
    "MarginStats",
    "MarginWorkload",
    "build_margin",
    "margin_workload",
    "run_margin",
]

DEFAULT_ACCOUNTS = MarginShape().accounts
P99_TARGET_NS = 100_000  # the issue's target for (d)'s p99 latency
_PROGRESS_EVERY = 1 << 16
_SAMPLE_EVERY = 64


class MarginStats:
    """What the build pass saw: rejects, fills, positions and the margin machinery."""

    __slots__ = (
        "adl",
        "fills",
        "funding_payments",
        "liquidated_lots",
        "liquidations",
        "margin_calls",
        "opened",
        "rejects",
        "sizes",
        "skipped",
        "system",
    )

    def __init__(self) -> None:
        """Start from nothing seen."""
        self.rejects: Counter[str] = Counter()  # "CODE_NAME (code)" -> count
        self.fills = FillHash()
        self.margin_calls = 0
        self.liquidations = 0  # PositionLiquidated events
        self.liquidated_lots = 0
        self.adl = 0  # PositionDeleveraged events
        self.skipped = 0  # LiquidationSkipped events
        self.funding_payments = 0  # FundingPaid events
        self.opened = 0  # positions opened from flat
        self.system = 0  # Liquidate records
        self.sizes: dict[tuple[str, str], int] = {}  # (account, symbol) -> lots

    def count(self, events: list[Event]) -> None:
        """Fold in one record's events."""
        for e in events:
            match e:
                case PositionChanged():
                    key = (e.account, e.symbol)
                    if e.size and not self.sizes.get(key):
                        self.opened += 1
                    self.sizes[key] = e.size
                case CommandRejected():
                    self.rejects[_code_label(e.code)] += 1
                case FundingPaid():
                    self.funding_payments += 1
                case MarginCall():
                    self.margin_calls += 1
                case PositionLiquidated():
                    self.liquidations += 1
                    self.liquidated_lots += e.qty
                case PositionDeleveraged():
                    self.adl += 1
                case LiquidationSkipped():
                    self.skipped += 1
        self.fills.update(events)


class MarginWorkload:
    """Prebuilt records of variant (d), with what the build pass saw and hashed."""

    __slots__ = (
        "accounts",
        "commands",
        "label",
        "markets",
        "records",
        "setup",
        "state_hash",
        "stats",
    )

    def __init__(self, label: str, markets: tuple[Market, ...], accounts: int) -> None:
        """Start an empty build for ``markets``."""
        self.label = label
        self.markets = markets
        self.accounts = accounts
        self.setup: list[Record] = []  # deposits and settings: run before the clock
        self.records: list[Record] = []  # the timed flow
        self.commands = 0  # flow commands (the system records not included)
        self.stats = MarginStats()
        self.state_hash = ""

    @property
    def reject_share(self) -> float:
        """Return the share of the flow's commands the core refused."""
        return sum(self.stats.rejects.values()) / max(self.commands, 1)


def margin_workload(
    n: int, seed: int, *, accounts: int = DEFAULT_ACCOUNTS, progress: bool = True
) -> MarginWorkload:
    """Generate ``n`` flow commands of `clients.margin_flow` and build them."""
    stream = generate(n, seed, MarginShape(accounts=accounts))
    return build_margin(stream, progress=progress)


def build_margin(stream: MarginStream, *, progress: bool = True) -> MarginWorkload:
    """Run the untimed build pass (module doc) and return the prebuilt records.

    Raises:
        ValueError: if the stream names a market the defaults lack, or the core
            refuses any of its setup commands.
    """
    by_symbol = {m.symbol: m for m in DEFAULT_MARKETS}
    missing = [s for s in stream.symbols if s not in by_symbol]
    if missing:
        msg = f"the margin stream trades unknown markets {missing}"
        raise ValueError(msg)
    markets = tuple(by_symbol[s] for s in stream.symbols)
    label = (
        f"margin_flow seed {stream.seed}, {stream.shape.accounts:,} accounts, "
        f"{stream.shape.hours} h ({', '.join(stream.symbols)})"
    )
    out = MarginWorkload(label, markets, stream.shape.accounts)
    core = ExchangeCore(markets, margin=True)
    builder = _Builder(core, out.stats)
    for ts_ns, cmd in stream.setup:
        builder.send(ts_ns, cmd, out.setup)
    if out.stats.rejects:
        msg = f"the margin setup was refused: {dict(out.stats.rejects)}"
        raise ValueError(msg)
    bar = ProgressBar(len(stream.flow), "(d) build") if progress else None
    for n, (ts_ns, cmd) in enumerate(stream.flow, 1):
        builder.send(ts_ns, cmd, out.records)
        if bar is not None and not n % _PROGRESS_EVERY:
            bar.update(n)
    if bar is not None:
        bar.update(bar.total)
        bar.close()
    out.commands = len(stream.flow)
    out.state_hash = core.state_hash()
    return out


class _Builder:
    """Feeds the build pass's core and writes the records the timed run replays."""

    def __init__(self, core: ExchangeCore, stats: MarginStats) -> None:
        self.core = core
        self.stats = stats

    def send(self, ts_ns: int, cmd: Command, into: list[Record]) -> None:
        """Sequence, apply and keep one command, then its system commands."""
        core, stats = self.core, self.stats
        seq = core.last_seq + 1
        record = Record(seq, ts_ns, cmd)
        into.append(record)
        stats.count(core.handle(record))
        for system in core.system_commands():
            stats.system += 1
            stats.count(core.handle(Record(core.last_seq + 1, ts_ns, system)))


def _code_label(code: int) -> str:
    """Return ``NAME (code)`` for a reject code."""
    try:
        return f"{RejectCode(code).name} ({code})"
    except ValueError:
        return f"code {code}"


def run_margin(
    mw: MarginWorkload, progress: Callable[[int], None] | None = None
) -> tuple[float, list[int], str]:
    """Run variant (d) on fresh state; return seconds, latency samples, state hash.

    The setup records run before the clock starts. Timed: every stream record
    through ``handle``, encoded as the journal stores it (`journal_payload`, as
    in (b)), then the system commands it caused (`system_commands`), handled
    and encoded right away. One stream record in 64 is timed on its own,
    together with the system records it caused.
    """
    core = ExchangeCore(mw.markets, margin=True)
    payload = journal_payload
    for record in mw.setup:
        _apply(core, record, payload)
    records = mw.records
    now = time.perf_counter_ns
    samples: list[int] = []
    started = time.perf_counter()
    for i in range(0, len(records), _SAMPLE_EVERY):
        t0 = now()
        _apply(core, records[i], payload)
        samples.append(now() - t0)
        for record in records[i + 1 : i + _SAMPLE_EVERY]:
            _apply(core, record, payload)
        if progress is not None and not i % _PROGRESS_EVERY:
            progress(i)
    seconds = time.perf_counter() - started
    samples.sort()
    return seconds, samples, core.state_hash()


def _apply(
    core: ExchangeCore,
    record: Record,
    payload: Callable[[Record, list[Event]], bytes],
) -> None:
    """Apply and encode one record, then the system commands it caused, in order."""
    payload(record, core.handle(record))
    for cmd in core.system_commands():
        system = Record(core.last_seq + 1, record.ts_ns, cmd)
        payload(system, core.handle(system))


def report_margin(
    mw: MarginWorkload,
    seconds: float,
    samples: list[int],
    state_hash: str,
    out: dict[str, Any],
) -> bool:
    """Print (d)'s figures, add them to ``out``; False if the run diverged."""
    rate = mw.commands / seconds
    p50, p99, p999 = (percentile(samples, f) for f in (0.50, 0.99, 0.999))
    s = mw.stats
    rejects = sum(s.rejects.values())
    out["margin_ops_per_s"] = round(rate)
    out["margin_latency_ns"] = {
        "p50": p50,
        "p99": p99,
        "p99_9": p999,
        "samples": len(samples),
    }
    out["liquidations"] = s.liquidations
    out["adl"] = s.adl
    out["funding_payments"] = s.funding_payments
    out["reject_share"] = round(mw.reject_share, 5)
    out["margin"] = {
        "workload": mw.label,
        "accounts": mw.accounts,
        "commands": mw.commands,
        "system_records": s.system,
        "fills": s.fills.count,
        "fill_hash": s.fills.value,
        "positions_opened": s.opened,
        "liquidated_share": round(s.liquidations / max(s.opened, 1), 5),
        "rejects": dict(s.rejects.most_common()),
        "margin_calls": s.margin_calls,
        "liquidated_lots": s.liquidated_lots,
        "liquidations_skipped": s.skipped,
    }
    verdict = "met" if p99 <= P99_TARGET_NS else "NOT met"
    print(
        f"(d) core + margin      {rate:>11,.0f} cmd/s  {seconds:7.2f} s  latency "
        f"p50 {p50 / 1000:.1f} us  p99 {p99 / 1000:.1f} us  p99.9 {p999 / 1000:.1f} us"
        f"  (p99 target <= {P99_TARGET_NS // 1000} us {verdict})"
    )
    print(
        f"          {mw.label}: {mw.commands:,} flow commands counted; "
        f"{s.system:,} liquidation records timed, not counted"
    )
    by_code = ", ".join(f"{k} {v:,}" for k, v in s.rejects.most_common()) or "none"
    print(
        f"          fills {s.fills.count:,}, positions opened {s.opened:,}, "
        f"rejects {rejects:,} ({mw.reject_share:.2%}): {by_code}"
    )
    print(
        f"          margin calls {s.margin_calls:,}, liquidations {s.liquidations:,} "
        f"({s.liquidations / max(s.opened, 1):.2%} of positions, "
        f"{s.liquidated_lots:,} lots), ADL {s.adl:,}, skipped {s.skipped:,}, "
        f"funding payments {s.funding_payments:,}"
    )
    ok = state_hash == mw.state_hash
    if not ok:
        print("          state hash DIFFERS FROM the build pass's: the run diverged")
    return ok
