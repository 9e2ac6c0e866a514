"""Variant (d) of ``paperx bench core``: the same order flow through the margin core.

Setup (not timed): every account of the stream deposits ``deposit`` collateral
and gets, in each market, a leverage from `LEVERAGES` and a margin mode, so
that the accounts cover every pair: account ``i`` gets ``LEVERAGES[i % 4]``
and is isolated when ``(i + i // 4)`` is even, else cross (half and half).

Stream: the workload's commands, and after every ``every`` of them one
`SetIndexPrice` per market that follows the book's mid with a little noise
(uniform within +-``noise_ppm`` of the mid), so the mark moves. Records are
stamped ``seq x TS_STEP_NS`` of exchange time, so the core's clock path runs
on every record as under the sequencer (1 us apart: a 1M run spans one second
of exchange time, so no funding interval ends).

Everything is built before timing by one untimed *build pass* over a margin
core, because the stream must adapt to it exactly as a client would:

- the index price is read from that core's own book;
- the stream's order ids (1, 2, 3, ... per `PlaceOrder`, as on the
  margin-less core) are translated to the ids the margin core gave: a refused
  order takes no id, and a liquidation order takes one. A cancel or amend of
  an order the core refused is not sent (a client never had its id), and is
  counted;
- the system commands (liquidations) the core asks for after a record take
  the next seqs, so the prebuilt records leave those seqs free.

The timed run replays the prebuilt records on a fresh core and creates only
the system records, from ``take_system_commands()``, right after the record
that caused them (as `exchange.shell.inprocess.Exchange.submit` does). The core is
deterministic, so they fall on exactly the seqs left free; any divergence would
break the seq check, and the final state hash is compared with the build
pass's. The build pass also yields what the report shows: rejects by code,
fills, margin calls, liquidations and ADL.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

import msgspec

from bench._machine import percentile
from exchange.cli.progress import ProgressBar
from exchange.codes import RejectCode
from exchange.core import ExchangeCore
from exchange.messages import (
    AmendOrder,
    CancelOrder,
    Deposit,
    Journaled,
    LiquidationSkipped,
    MarginCall,
    OrderAccepted,
    OrderRejected,
    PlaceOrder,
    PositionDeleveraged,
    PositionLiquidated,
    Record,
    SetIndexPrice,
    SetLeverage,
    SetMarginMode,
)
from exchange.units import SCALE
from replay.streams import FillHash

if TYPE_CHECKING:
    from collections.abc import Callable

    from bench._inputs import Workload
    from exchange.markets import Market
    from exchange.messages import Command, Event, MarginMode

__all__ = [
    "DEFAULT_DEPOSIT",
    "DEFAULT_EVERY",
    "LEVERAGES",
    "MarginStats",
    "MarginWorkload",
    "build_margin",
    "run_margin",
]

LEVERAGES = (5, 10, 20, 50)
DEFAULT_DEPOSIT = 1_000_000_000  # whole USDT per account: ample for every stream here
DEFAULT_EVERY = 50  # stream commands between index updates
NOISE_PPM = 500  # the index strays up to +-0.05% from the mid
TS_STEP_NS = 1_000  # exchange time between records
_PROGRESS_EVERY = 1 << 16
_SAMPLE_EVERY = 64


class MarginStats:
    """What the build pass saw: rejects, fills, and the liquidation machinery."""

    __slots__ = (
        "adl",
        "dropped",
        "fills",
        "liquidated_lots",
        "liquidations",
        "margin_calls",
        "rejects",
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
        self.system = 0  # Liquidate records
        self.dropped = 0  # cancels / amends of refused orders, not sent

    def count(self, events: list[Event]) -> int | None:
        """Fold in one record's events; return the id of the first accepted order."""
        accepted = None
        for e in events:
            if isinstance(e, OrderRejected):
                self.rejects[_code_label(e.code)] += 1
            elif isinstance(e, OrderAccepted):
                if accepted is None:
                    accepted = e.order_id
            elif isinstance(e, MarginCall):
                self.margin_calls += 1
            elif isinstance(e, PositionLiquidated):
                self.liquidations += 1
                self.liquidated_lots += e.qty
            elif isinstance(e, PositionDeleveraged):
                self.adl += 1
            elif isinstance(e, LiquidationSkipped):
                self.skipped += 1
        self.fills.update(events)
        return accepted


class MarginWorkload:
    """Prebuilt records of variant (d), with what the build pass saw and hashed."""

    __slots__ = (
        "accounts",
        "commands",
        "deposit",
        "every",
        "index_updates",
        "markets",
        "records",
        "setup",
        "state_hash",
        "stats",
    )

    def __init__(self, markets: tuple[Market, ...], deposit: int, every: int) -> None:
        """Start an empty build for ``markets``."""
        self.markets = markets
        self.deposit = deposit
        self.every = every
        self.accounts: list[str] = []
        self.setup: list[Record] = []  # deposits and settings: run before the clock
        self.records: list[Record] = []  # the timed stream: orders and index updates
        self.commands = 0  # stream commands sent (index updates not included)
        self.index_updates = 0
        self.stats = MarginStats()
        self.state_hash = ""


def account_settings(i: int) -> tuple[int, MarginMode]:
    """Return the leverage and margin mode of the ``i``-th account (0-based)."""
    mode: MarginMode = "isolated" if (i + i // 4) % 2 == 0 else "cross"
    return LEVERAGES[i % len(LEVERAGES)], mode


def build_margin(
    workload: Workload,
    *,
    deposit: int = DEFAULT_DEPOSIT,
    every: int = DEFAULT_EVERY,
    seed: int = 42,
    progress: bool = True,
) -> MarginWorkload:
    """Run the untimed build pass (module doc) and return the prebuilt records."""
    out = MarginWorkload(workload.markets, deposit, every)
    core = ExchangeCore(workload.markets, margin=True)
    builder = _Builder(core, out)
    out.accounts = _accounts(workload.commands)
    for i, account in enumerate(out.accounts):
        leverage, mode = account_settings(i)
        builder.send(Deposit(account=account, amount=deposit * SCALE), out.setup)
        for market in workload.markets:
            builder.send(
                SetMarginMode(account=account, symbol=market.symbol, mode=mode),
                out.setup,
            )
            builder.send(
                SetLeverage(account=account, symbol=market.symbol, leverage=leverage),
                out.setup,
            )
    setup_rejects = sum(out.stats.rejects.values())
    if setup_rejects:
        msg = f"the margin setup was refused {setup_rejects} times: {out.stats.rejects}"
        raise ValueError(msg)
    rng = random.Random(seed)  # noqa: S311 -- a reproducible simulation
    bar = ProgressBar(len(workload.commands), "(d) build") if progress else None
    for n, cmd in enumerate(workload.commands, 1):
        builder.stream(cmd)
        if not n % every:
            for market in workload.markets:
                builder.index(market, rng)
        if bar is not None and not n % _PROGRESS_EVERY:
            bar.update(n)
    if bar is not None:
        bar.update(bar.total)
        bar.close()
    out.state_hash = core.state_hash()
    return out


class _Builder:
    """Feeds the build pass's core and writes the records the timed run replays."""

    def __init__(self, core: ExchangeCore, out: MarginWorkload) -> None:
        self.core = core
        self.out = out
        self.intended = 0  # the stream's own id of its latest PlaceOrder
        self.ids: dict[int, int] = {}  # stream id -> the margin core's id (0: refused)

    def send(self, cmd: Command, into: list[Record]) -> int | None:
        """Sequence, apply and keep one command, then its system commands."""
        core, stats = self.core, self.out.stats
        seq = core.last_seq + 1
        record = Record(seq, seq * TS_STEP_NS, cmd)
        into.append(record)
        accepted = stats.count(core.handle(record))
        pending = core.take_system_commands()
        while pending:
            for system in pending:
                seq = core.last_seq + 1
                stats.system += 1
                stats.count(core.handle(Record(seq, record.ts_ns, system)))
            pending = core.take_system_commands()
        return accepted

    def stream(self, cmd: Command) -> None:
        """Send one stream command, its order ids translated to the margin core's."""
        kind = type(cmd)
        if kind is PlaceOrder:
            self.intended += 1
            accepted = self.send(cmd, self.out.records)
            self.ids[self.intended] = accepted or 0
            self.out.commands += 1
            return
        if isinstance(cmd, CancelOrder | AmendOrder) and cmd.order_id:
            actual = self.ids.get(cmd.order_id, cmd.order_id)
            if not actual:  # the core refused that order: there is no id to name
                self.out.stats.dropped += 1
                return
            if actual != cmd.order_id:
                cmd = msgspec.structs.replace(cmd, order_id=actual)
        self.send(cmd, self.out.records)
        self.out.commands += 1

    def index(self, market: Market, rng: random.Random) -> None:
        """Send an index price near the market's current mid (if it has one)."""
        book = self.core.markets[market.symbol].book
        bid, ask = book.best_bid(), book.best_ask()
        if bid is None and ask is None:
            return
        low = bid if bid is not None else ask
        high = ask if ask is not None else bid
        mid = (low + high) * market.tick_size // 2  # type: ignore[operator]  # E8, down
        width = mid * NOISE_PPM // 1_000_000
        price = max(mid + rng.randint(-width, width), market.tick_size)
        self.send(SetIndexPrice(symbol=market.symbol, price=price), self.out.records)
        self.out.index_updates += 1


def _accounts(commands: list[Command]) -> list[str]:
    """Return the stream's accounts in order of first appearance."""
    seen: dict[str, None] = {}
    for cmd in commands:
        account = getattr(cmd, "account", "")
        if account and account not in seen:
            seen[account] = None
    return sorted(seen)


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
    through ``handle``, its ``Journaled`` record msgpack-encoded as in (b), then
    ``take_system_commands()`` and, when it returns any, their records handled
    and encoded right away. One stream record in 64 is timed on its own,
    together with the system records it caused.
    """
    core = ExchangeCore(mw.markets, margin=True)
    handle, take = core.handle, core.take_system_commands
    encode = msgspec.msgpack.Encoder().encode
    for record in mw.setup:
        encode(Journaled(record, handle(record)))
        _system(record, take(), handle, take, encode)
    records = mw.records
    now = time.perf_counter_ns
    samples: list[int] = []
    started = time.perf_counter()
    for i in range(0, len(records), _SAMPLE_EVERY):
        record = records[i]
        t0 = now()
        encode(Journaled(record, handle(record)))
        pending = take()
        if pending:
            _system(record, pending, handle, take, encode)
        samples.append(now() - t0)
        for record in records[i + 1 : i + _SAMPLE_EVERY]:
            encode(Journaled(record, handle(record)))
            pending = take()
            if pending:
                _system(record, pending, handle, take, encode)
        if progress is not None and not i % _PROGRESS_EVERY:
            progress(i)
    seconds = time.perf_counter() - started
    samples.sort()
    return seconds, samples, core.state_hash()


def _system(
    record: Record,
    pending: list,  # type: ignore[type-arg]
    handle: Callable[[Record], list[Event]],
    take: Callable[[], list],  # type: ignore[type-arg]
    encode: Callable[[object], bytes],
) -> None:
    """Sequence, apply and encode the system commands ``record`` caused, in order."""
    seq = record.seq
    while pending:
        for cmd in pending:
            seq += 1
            system = Record(seq, record.ts_ns, cmd)
            encode(Journaled(system, handle(system)))
        pending = take()


def report_margin(
    mw: MarginWorkload,
    seconds: float,
    samples: list[int],
    state_hash: str,
    out: dict[str, Any],
) -> bool:
    """Print (d)'s figures, add them to ``out``; False if the run diverged."""
    counted = mw.commands + mw.index_updates
    rate = counted / seconds
    p50, p99, p999 = (percentile(samples, f) for f in (0.50, 0.99, 0.999))
    s = mw.stats
    out["margin_ops_per_s"] = round(rate)
    out["liquidations"] = s.liquidations
    out["margin"] = {
        "commands": mw.commands,
        "index_updates": mw.index_updates,
        "system_records": s.system,
        "not_sent": s.dropped,
        "deposit_usdt": mw.deposit,
        "index_every": mw.every,
        "latency_ns": {"p50": p50, "p99": p99, "p99_9": p999, "samples": len(samples)},
        "fills": s.fills.count,
        "fill_hash": s.fills.value,
        "rejects": dict(s.rejects.most_common()),
        "margin_calls": s.margin_calls,
        "liquidated_lots": s.liquidated_lots,
        "adl": s.adl,
        "liquidations_skipped": s.skipped,
    }
    print(
        f"(d) core + margin      {rate:>11,.0f} cmd/s  {seconds:7.2f} s  latency "
        f"p50 {p50 / 1000:.1f} us  p99 {p99 / 1000:.1f} us  p99.9 {p999 / 1000:.1f} us"
    )
    print(
        f"          counted: {mw.commands:,} stream commands + {mw.index_updates:,} "
        f"index prices (1 per market every {mw.every}); {s.system:,} liquidation "
        f"records timed, not counted; {len(mw.accounts)} accounts x "
        f"{mw.deposit:,} USDT"
    )
    rejects = ", ".join(f"{k} {v:,}" for k, v in s.rejects.most_common()) or "none"
    print(
        f"          fills {s.fills.count:,}, rejects {sum(s.rejects.values()):,}: "
        f"{rejects}; {s.dropped:,} cancels/amends of refused orders not sent"
    )
    print(
        f"          margin calls {s.margin_calls:,}, liquidations {s.liquidations:,} "
        f"({s.liquidated_lots:,} lots), ADL {s.adl:,}, skipped {s.skipped:,}"
    )
    ok = state_hash == mw.state_hash
    if not ok:
        print("          state hash DIFFERS FROM the build pass's: the run diverged")
    return ok
