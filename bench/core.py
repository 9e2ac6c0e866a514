"""``paperx bench core``: throughput of matching, core, journal and margin.

Four variants run the same command stream, each on fresh state:

(a) matching  - `OrderBook` + `matching.match` driven directly (see `bench._matching`);
(b) core      - `ExchangeCore.handle` on every record, and each record's
                journal payload encoded (`journal_payload`: the record and
                the events it cannot derive), as the sequencer does before
                journaling; per-command latency is
                sampled on every 64th command;
(c) journaled - (b) plus `FileJournal.append` and ``maybe_sync`` under fsync
                "batch", in a temporary directory, closed (synced) inside the
                timing;
(d) margin    - the margin core (``ExchangeCore(markets, margin=True)``) on its
                own workload of as many commands, `clients.margin_flow`:
                thousands of accounts, makers and takers in both modes, an
                index that moves 2-5 % and jumps, liquidations fed back as the
                next records, three funding times; events encoded as in (b)
                (see `bench._margin`).

Inputs are built before any timing and frozen out of the garbage collector's
sight (``gc.freeze``); the collector itself stays on, as in the server. The
fill count and hash come from a separate, untimed run of the core, so
hashing never inflates a timing. This is a benchmark, not a test: it asserts
nothing about speed, but exits 1 if the fills differ from the expected ones.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import structlog

from bench._args import DEFAULT_N, parse_args
from bench._inputs import Workload, flow_workload, standard_workload
from bench._machine import (
    current_rss_mb,
    git_commit,
    machine_info,
    peak_rss_mb,
    percentile,
)
from bench._margin import (
    MarginWorkload,
    build_margin,
    margin_workload,
    report_margin,
    run_margin,
)
from bench._matching import compile_ops, run_matching
from bench._reference import compare_with_targets, run_reference
from clients.margin_flow import read_margin_stream
from exchange.cli.progress import ProgressBar
from exchange.core import ExchangeCore
from exchange.journal.payload import (
    JOURNAL_SCHEMA,
    Journaled,
    journal_payload,
    journaled_events,
)
from exchange.logs import configure_logging
from exchange.markets import config_hash, market_table
from exchange.messages import CommandRejected
from replay.streams import FillHash, StreamError

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["main", "measure", "run_core", "run_journaled", "verify_fills"]

_SAMPLE_EVERY = 64  # one latency sample per this many commands in (b)
_REPORT_EVERY = 1 << 16  # commands between progress updates


# ------------------------------------------------------------------ variants


def run_core(
    workload: Workload, progress: Callable[[int], None] | None = None
) -> tuple[float, list[int]]:
    """Run variant (b); return seconds and the sorted latency samples (ns)."""
    core = ExchangeCore(workload.markets)
    handle = core.handle
    encode = journal_payload
    records = workload.records
    now = time.perf_counter_ns
    samples: list[int] = []
    started = time.perf_counter()
    for i in range(0, len(records), _SAMPLE_EVERY):
        record = records[i]
        t0 = now()
        encode(record, handle(record))
        samples.append(now() - t0)
        for record in records[i + 1 : i + _SAMPLE_EVERY]:
            encode(record, handle(record))
        if progress is not None and not i % _REPORT_EVERY:
            progress(i)
    seconds = time.perf_counter() - started
    samples.sort()
    return seconds, samples


def run_journaled(
    workload: Workload, progress: Callable[[int], None] | None = None
) -> tuple[float, int]:
    """Run variant (c) in a temporary directory; return seconds and journal bytes."""
    from exchange.journal import FileJournal, JournalHeader  # noqa: PLC0415 -- optional

    header = JournalHeader(
        schema_version=JOURNAL_SCHEMA,
        config_hash=config_hash(workload.markets),
        config={"markets": market_table(workload.markets)},
    )
    core = ExchangeCore(workload.markets)
    handle = core.handle
    encode = journal_payload
    with tempfile.TemporaryDirectory(prefix="paperx-bench-") as tmp:
        journal = FileJournal.open(Path(tmp) / "journal", header=header, fsync="batch")
        append, maybe_sync = journal.append, journal.maybe_sync
        started = time.perf_counter()
        for record in workload.records:
            append(record.seq, encode(record, handle(record)))
            maybe_sync()
            if progress is not None and not record.seq % _REPORT_EVERY:
                progress(record.seq)
        journal.close()
        seconds = time.perf_counter() - started
        size = sum(f.stat().st_size for f in Path(tmp).rglob("*") if f.is_file())
    return seconds, size


def verify_fills(workload: Workload) -> tuple[FillHash, int, float]:
    """Run the core untimed; return its fills, its rejects and the encoding time.

    The encoding time is of the journal payloads alone, every record's
    journaled events picked and encoded in a tight loop per chunk, apart from
    the core: the part of (b) no core change can remove.
    """
    core = ExchangeCore(workload.markets)
    encode = msgspec.msgpack.Encoder().encode
    fills = FillHash()
    rejects = 0
    encoding = 0.0
    records = workload.records
    for start in range(0, len(records), _REPORT_EVERY):
        payloads = []
        for record in records[start : start + _REPORT_EVERY]:
            events = core.handle(record)
            fills.update(events)
            rejects += sum(1 for e in events if type(e) is CommandRejected)
            payloads.append((record, events))
        started = time.perf_counter()
        for record, events in payloads:
            encode(Journaled(record, journaled_events(events)))
        encoding += time.perf_counter() - started
    return fills, rejects, encoding


# ------------------------------------------------------------------ driver


def main(argv: list[str] | None = None) -> int:
    """Run ``paperx bench core``; return 0, or 1 if the fills are not as expected."""
    args = parse_args(argv)
    code, out = measure(args)
    if args.json and out:  # no figures: bad input, nothing measured
        print(json.dumps(out, separators=(",", ":")))
    return code


def measure(args: argparse.Namespace) -> tuple[int, dict[str, Any]]:
    """Run the benchmark ``args`` describe, printing its report; return the figures.

    Returns (exit status, figures): 0, 1 if the fills are not as expected,
    2 (and no figures) on bad input.
    """
    if not structlog.is_configured():  # run as ``python -m bench.core``
        configure_logging("warning")  # stdout stays the report (JSON last)
    margin: MarginWorkload | None = None
    try:
        # a margin stream file is read first: a bad one fails before any build
        margin_stream = (
            read_margin_stream(args.margin_stream) if args.margin_stream else None
        )
        workload = _load(args)
        if "margin" in args.only or args.profile == "margin":
            margin = (
                build_margin(margin_stream, progress=not args.quiet)
                if margin_stream is not None
                else margin_workload(
                    len(workload.records),
                    args.seed,
                    accounts=args.accounts,
                    progress=not args.quiet,
                )
            )
    except (OSError, ValueError, StreamError) as exc:
        print(f"paperx bench core: {exc}", file=sys.stderr)
        return 2, {}
    gc.collect()
    gc.freeze()  # the inputs are not the exchange's garbage: keep them out of GC passes
    out: dict[str, Any] = {
        "n": len(workload.records),
        "stream": workload.label,
        "inputs_rss_mb": round(current_rss_mb(), 1),
    }
    _header(workload, out)
    ok = True
    for n in range(args.repeat):
        if args.repeat > 1:
            print(f"round {n + 1} of {args.repeat}")
        ok = _run_round(args.only, workload, margin, out, quiet=args.quiet) and ok
    ok = _fills(workload, out) and ok
    ratios = compare_with_targets(out)
    if ratios:
        best = f", best of {args.repeat} rounds each" if args.repeat > 1 else ""
        print(f"targets   (same process, same machine{best})", *ratios, sep="\n")
    out["peak_rss_mb"] = round(peak_rss_mb(), 1)
    print(
        f"peak RSS  {out['peak_rss_mb']:,.0f} MiB (inputs alone "
        f"{out['inputs_rss_mb']:,.0f} MiB)"
    )
    if args.profile:
        _profile(workload, args.profile, margin)
    return (0 if ok else 1), out


def _run_round(
    only: tuple[str, ...],
    workload: Workload,
    margin: MarginWorkload | None,
    out: dict[str, Any],
    *,
    quiet: bool,
) -> bool:
    """Run the chosen variants once into ``out``, keeping each one's best rate.

    Returns False if fills differ. On a shared machine the speed drifts
    between variants; the best of several rounds is the least disturbed.
    """
    this: dict[str, Any] = {}
    ok = _run_variants(only, workload, margin, this, quiet=quiet)
    for key, value in this.items():
        if not key.endswith("_ops_per_s") or value is None:
            out.setdefault(key, value)
        elif value > (out.get(key) or 0):
            out[key] = value
    return ok


def _run_variants(
    only: tuple[str, ...],
    workload: Workload,
    margin: MarginWorkload | None,
    out: dict[str, Any],
    *,
    quiet: bool,
) -> bool:
    """Run the chosen variants in order; return False if any fills differ."""
    ok = True
    if "reference" in only:
        ok = _variant_reference(workload, out)
    if "matching" in only:
        _variant_matching(workload, out, quiet=quiet)
    if "core" in only:
        _variant_core(workload, out, quiet=quiet)
    if "journaled" in only:
        _variant_journaled(workload, out, quiet=quiet)
    if "margin" in only and margin is not None:
        ok = _variant_margin(margin, out, quiet=quiet) and ok
    return ok


def _load(args: argparse.Namespace) -> Workload:
    """Build the workload the arguments ask for."""
    if args.n is not None and args.n <= 0:
        msg = "--n must be positive"
        raise ValueError(msg)
    if args.accounts <= 0 or args.repeat <= 0:
        msg = "--accounts and --repeat must be positive"
        raise ValueError(msg)
    if args.commands:
        return standard_workload(args.commands, args.n)
    return flow_workload(args.n or DEFAULT_N, args.seed, progress=not args.quiet)


def _bar(workload: Workload, label: str, quiet: bool) -> ProgressBar | None:
    """Return a progress bar on stderr unless quiet."""
    return None if quiet else ProgressBar(len(workload.records), label)


def _close(bar: ProgressBar | None) -> None:
    """Finish a progress bar, if any."""
    if bar is not None:
        bar.update(bar.total)
        bar.close()


def _header(workload: Workload, out: dict[str, Any]) -> None:
    """Print what runs where."""
    machine = machine_info()
    out["machine"] = machine
    out["commit"] = git_commit()
    print(f"paperx bench core: {workload.label}, {len(workload.records):,} commands")
    print(
        f"machine   {machine['cpu']}, {machine['cores']} logical cores, "
        f"{machine['os']}, {machine['python']}; commit {out['commit']}"
    )


def _variant_reference(workload: Workload, out: dict[str, Any]) -> bool:
    """Run (r), the plain engine; return False if its fills are not the expected."""
    if workload.stream is None:
        print("(r) reference          skipped: it reads a standard stream (--commands)")
        return True
    gc.collect()
    seconds, fills = run_reference(workload.stream)
    rate = len(workload.stream) / seconds
    out["reference_ops_per_s"] = round(rate)
    print(
        f"(r) plain reference    {rate:>11,.0f} cmd/s  {seconds:7.2f} s  "
        f"fills {fills.count:,} hash {fills.value}"
    )
    expected = workload.expected
    if expected is None or expected.fill_hash is None:
        return True
    ok = (fills.count, fills.value) == (expected.fills, expected.fill_hash)
    if not ok:
        print(f"          (r) fills DIFFER FROM the expected ones in {expected.source}")
    return ok


def _variant_matching(workload: Workload, out: dict[str, Any], *, quiet: bool) -> None:
    """Compile and run (a)."""
    ops = compile_ops(workload.commands, workload.markets)
    gc.collect()
    bar = _bar(workload, "(a) matching", quiet)
    run = run_matching(ops, None if bar is None else bar.update)
    _close(bar)
    rate = len(ops) / run.seconds
    out["matching_ops_per_s"] = round(rate)
    out["matching_fills"] = run.fills.count
    out["matching_fill_hash"] = run.fills.value
    skipped = f", {run.skipped:,} stop/unknown commands skipped" if run.skipped else ""
    print(
        f"(a) matching layer     {rate:>11,.0f} cmd/s  {run.seconds:7.2f} s  "
        f"fills {run.fills.count:,} hash {run.fills.value}{skipped}"
    )
    del ops
    gc.collect()


def _variant_core(workload: Workload, out: dict[str, Any], *, quiet: bool) -> None:
    """Run (b) and report its rate and latency percentiles."""
    gc.collect()
    bar = _bar(workload, "(b) core", quiet)
    seconds, samples = run_core(workload, None if bar is None else bar.update)
    _close(bar)
    rate = len(workload.records) / seconds
    p50, p99, p999 = (percentile(samples, f) for f in (0.50, 0.99, 0.999))
    out["core_ops_per_s"] = round(rate)
    out["core_latency_ns"] = {
        "p50": p50,
        "p99": p99,
        "p99_9": p999,
        "samples": len(samples),
    }
    print(
        f"(b) core + encode      {rate:>11,.0f} cmd/s  {seconds:7.2f} s  latency "
        f"p50 {p50 / 1000:.1f} us  p99 {p99 / 1000:.1f} us  p99.9 {p999 / 1000:.1f} us"
        f"  (1 in {_SAMPLE_EVERY} commands, {len(samples):,} samples)"
    )


def _variant_journaled(workload: Workload, out: dict[str, Any], *, quiet: bool) -> None:
    """Run (c), or say why it cannot run at this commit."""
    gc.collect()
    bar = _bar(workload, "(c) journaled", quiet)
    try:
        seconds, size = run_journaled(workload, None if bar is None else bar.update)
    except ImportError as exc:
        out["journaled_ops_per_s"] = None
        print(
            f"(c) core + journal     skipped: the file journal is not available ({exc})"
        )
        return
    _close(bar)
    rate = len(workload.records) / seconds
    out["journaled_ops_per_s"] = round(rate)
    out["journal_bytes"] = size
    print(
        f"(c) core + journal     {rate:>11,.0f} cmd/s  {seconds:7.2f} s  "
        f"fsync batch, {size / (1 << 20):,.0f} MiB written"
    )


def _variant_margin(mw: MarginWorkload, out: dict[str, Any], *, quiet: bool) -> bool:
    """Run (d), report it; return False if it did not end in the build's state."""
    gc.collect()
    bar = None if quiet else ProgressBar(len(mw.records), "(d) margin")
    seconds, samples, state_hash = run_margin(mw, None if bar is None else bar.update)
    _close(bar)
    return report_margin(mw, seconds, samples, state_hash, out)


def _fills(workload: Workload, out: dict[str, Any]) -> bool:
    """Run the untimed fill check, print it; return False on a mismatch."""
    fills, rejects, encoding = verify_fills(workload)
    out["encode_ops_per_s"] = round(len(workload.records) / encoding)
    out["fills"] = fills.count
    out["fill_qty"] = fills.qty
    out["fill_hash"] = fills.value
    out["rejects"] = rejects
    print(
        f"fills     {fills.count:,} ({fills.qty:,} lots), fill hash {fills.value}, "
        f"rejects {rejects:,}"
    )
    print(
        f"encoding  {out['encode_ops_per_s']:,} records/s "
        f"({encoding / len(workload.records) * 1e6:.2f} us each): the msgpack "
        "encoding of (b) alone, timed apart"
    )
    ok = True
    expected = workload.expected
    if expected is not None:
        ok = fills.count == expected.fills and expected.fill_hash in (None, fills.value)
        what = "count and hash" if expected.fill_hash is not None else "count"
        verdict = (
            ("match" if expected.fill_hash is not None else "matches")
            if ok
            else ("DIFFER FROM" if expected.fill_hash is not None else "DIFFERS FROM")
        )
        print(
            f"          fill {what} {verdict} the expected ones from {expected.source}"
            + (
                ""
                if ok
                else f" (expected {expected.fills:,} fills, hash {expected.fill_hash})"
            )
        )
        out["expected_match"] = ok
    if (
        "matching_fills" in out
        and expected is not None
        and expected.fill_hash is not None
    ):
        same = (out["matching_fills"], out["matching_fill_hash"]) == (
            fills.count,
            fills.value,
        )
        print(
            f"          (a) matching layer fills {'match' if same else 'DIFFER FROM'}"
            " the core's"
        )
        ok = ok and same
    return ok


def _profile(workload: Workload, variant: str, margin: MarginWorkload | None) -> None:
    """Run one variant under cProfile; print its top 25 functions by own time.

    For (d) also the top 25 by cumulative time, which shows the pipeline's
    steps where the own times are flat.
    """
    profiler = cProfile.Profile()
    if variant == "matching":
        ops = compile_ops(workload.commands, workload.markets)
        profiler.runcall(run_matching, ops)
    elif variant == "margin":
        if margin is None:
            msg = "the margin variant needs its workload"
            raise ValueError(msg)
        profiler.runcall(run_margin, margin)
    else:
        profiler.runcall(run_core, workload)
    letter = {"matching": "a", "core": "b", "margin": "d"}[variant]
    orders = ("tottime", "cumulative") if variant == "margin" else ("tottime",)
    for order in orders:
        buf = io.StringIO()
        pstats.Stats(profiler, stream=buf).sort_stats(order).print_stats(25)
        what = "own" if order == "tottime" else "cumulative"
        print(f"--- cProfile of ({letter}) {variant}, top 25 by {what} time ---")
        print(buf.getvalue().strip())


if __name__ == "__main__":
    sys.exit(main())
