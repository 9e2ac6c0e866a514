"""Benchmark of recovery: a large journal rebuilt with and without a snapshot.

Not a test. It journals a seeded order flow (`clients.orderflow`) through the
`Exchange` facade into a file journal (fsync off; with ``--margin`` the
margin ledger runs and the flow's accounts are funded first), snapshotting
every ``--snapshot-every`` records (the newest 3 kept, as a server keeps
them) and ``--tail`` records before the end, closes, and then times:

* the rebuild fold alone: `Rebuilder.apply` over the first ``--fold-sample``
  records, decoded beforehand, as journaled events per second (and records
  per second);
* the whole rebuild: reading, decoding and folding every record, as
  ``paperx replay rebuild`` does;
* recovery without a snapshot: `replay.recover.recover` with the snapshots
  moved away (a full replay, journal open and check included);
* recovery with the snapshots: the same, with its parts timed on their own
  (opening the journal, which scans its last segment; loading the newest
  snapshot; folding the tail).

Run: ``python -m bench.recovery --records 1000000``; ``--dir`` keeps the
journal (otherwise a temporary directory, deleted at the end); ``--journal
DIR`` times a journal already there (built by an earlier run, or any other
file journal with snapshots) instead of building one.
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path
from typing import Any

from bench._machine import machine_info
from clients.orderflow import DEFAULT_ACCOUNTS, DEFAULT_START_PRICES, generate
from exchange.journal import FileJournal
from exchange.journal.snapshots import (
    DirectorySnapshots,
    list_snapshots,
    write_snapshot,
)
from exchange.shell.inprocess import Exchange
from replay.log import ExchangeLog
from replay.rebuild import Rebuilder
from replay.recover import RecoveryReport, newest_snapshot, recover

__all__ = [
    "build_journal",
    "main",
    "measure",
    "time_fold",
    "time_rebuild",
    "time_recoveries",
]

_KEEP = 3  # snapshots kept, as `paperx serve` keeps them by default


def build_journal(
    directory: Path, records: int, *, tail: int, every: int, margin: bool, seed: int
) -> None:
    """Journal ``records`` generated commands, snapshotting on the way.

    Snapshots every ``every`` records (0: none) and ``tail`` records before
    the end. With ``margin`` the flow's accounts are funded and the index
    prices set first (records of their own).
    """
    exchange = Exchange(journal=directory, fsync="off", margin=margin)
    if margin:
        for account in DEFAULT_ACCOUNTS:
            exchange.deposit(account, "1000000000")
        for symbol, price in DEFAULT_START_PRICES.items():
            exchange.set_index_price(symbol, price)
    commands = generate(records, seed, list(exchange.markets.values()))
    last_snapshot = max(records - tail, 1)
    for n, command in enumerate(commands, 1):
        exchange.submit(command)
        if n == last_snapshot or (every and not n % every and n < last_snapshot):
            exchange.journal.sync()
            write_snapshot(
                directory,
                exchange.core,
                exchange.journal.header.config_hash,
                keep=_KEEP,
                durable=False,
            )
    exchange.close()


def time_fold(directory: Path, sample: int) -> tuple[float, int, int]:
    """Return (seconds, records, journaled events) of folding the first ``sample``."""
    log = ExchangeLog(directory)
    gc.disable()  # a long list of decoded records makes each collection slow
    try:
        entries = list(islice(log.entries(), sample))  # decoded outside the timing
    finally:
        gc.enable()
    events = sum(len(entry.events) for entry in entries)
    rebuilder = Rebuilder(log.markets, margin=log.margin)
    started = time.perf_counter()
    for entry in entries:
        rebuilder.apply(entry)
    return time.perf_counter() - started, len(entries), events


def time_rebuild(directory: Path) -> tuple[float, int, int]:
    """Return (seconds, records, journaled events) of a whole streaming rebuild."""
    log = ExchangeLog(directory)
    rebuilder = Rebuilder(log.markets, margin=log.margin)
    records = events = 0
    started = time.perf_counter()
    for entry in log.entries():
        rebuilder.apply(entry)
        events += len(entry.events)
        records += 1
    return time.perf_counter() - started, records, events


def time_parts(directory: Path) -> tuple[float, float, float, int]:
    """Return the seconds of recovery's parts: open, snapshot, tail (and its records).

    The same steps as `recover`, timed one by one.
    """
    started = time.perf_counter()
    with FileJournal.open(directory) as journal:
        last_seq = journal.last_seq
    opened = time.perf_counter()
    log = ExchangeLog(directory)
    start = newest_snapshot(DirectorySnapshots(directory), log, last_seq=last_seq)
    loaded = time.perf_counter()
    rebuilder = Rebuilder(log.markets, margin=log.margin, core=start.core)
    first = rebuilder.core.last_seq
    for entry in log.entries(first + 1):
        rebuilder.apply(entry)
    rebuilder.resume()
    done = time.perf_counter()
    return opened - started, loaded - opened, done - loaded, last_seq - first


def time_recoveries(
    directory: Path, *, full: bool = True
) -> tuple[RecoveryReport | None, RecoveryReport]:
    """Recover without a snapshot (all moved aside, then back) if ``full``, then with.

    Returns the two reports (the first None without ``full``).
    """
    without = None
    if full:
        snapshots = [path for _, path in list_snapshots(directory)]
        for path in snapshots:
            path.replace(path.with_name(path.name + ".aside"))
        try:
            _, without = recover(directory)
        finally:
            for path in snapshots:
                path.with_name(path.name + ".aside").replace(path)
    _, report = recover(directory)
    return without, report


def measure(records: int, tail: int, seed: int, directory: Path) -> dict[str, Any]:
    """Build a journal in ``directory``; time the fold and both recoveries.

    What ``paperx bench all`` reports (no margin, one snapshot ``tail``
    records before the end).

    Raises:
        RuntimeError: the recoveries with and without the snapshot differ.
    """
    build_journal(directory, records, tail=tail, every=0, margin=False, seed=seed)
    with FileJournal.open(directory) as journal:
        last = journal.last_seq
    size = sum(p.stat().st_size for p in directory.glob("*.pxj"))
    seconds, count, events = time_fold(directory, last)
    full, fast = time_recoveries(directory)
    assert full is not None  # asked for
    return {
        "records": last,
        "journal_bytes": size,
        "rebuild_seconds": seconds,
        "rebuild_events": events,
        "rebuild_events_per_s": round(events / seconds),
        "rebuild_records_per_s": round(count / seconds),
        "recover_full_s": full.seconds,
        "recover_full_replayed": full.records_replayed,
        "recover_snapshot_s": fast.seconds,
        "recover_snapshot_seq": fast.snapshot_seq,
        "recover_snapshot_replayed": fast.records_replayed,
    }


def _parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``paperx bench recovery``."""
    parser = argparse.ArgumentParser(prog="python -m bench.recovery")
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument(
        "--tail", type=int, default=10_000, help="newest snapshot this far from the end"
    )
    parser.add_argument(
        "--snapshot-every", type=int, default=0, help="also a snapshot every N records"
    )
    parser.add_argument("--margin", action="store_true", help="run the margin ledger")
    parser.add_argument(
        "--fold-sample", type=int, default=1_000_000, help="records of the fold alone"
    )
    parser.add_argument(
        "--no-full-recovery", action="store_true", help="skip the snapshot-less one"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--dir", type=Path, default=None, help="journal directory")
    parser.add_argument(
        "--journal", type=Path, default=None, help="time this journal, build none"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Build the journal, time the runs and print the figures."""
    args = _parser().parse_args(argv)
    with tempfile.TemporaryDirectory() as temp:
        print(f"machine   {machine_info()}", flush=True)
        directory = args.journal or args.dir or Path(temp) / "journal"
        built = "given"
        if args.journal is None:
            started = time.perf_counter()
            build_journal(
                directory,
                args.records,
                tail=args.tail,
                every=args.snapshot_every,
                margin=args.margin,
                seed=args.seed,
            )
            built = f"built in {time.perf_counter() - started:.1f} s"
        log = ExchangeLog(directory)
        with FileJournal.open(directory) as journal:
            last = journal.last_seq
        size = sum(p.stat().st_size for p in directory.glob("*.pxj"))
        print(
            f"journal   {last:,} records, {size / 2**20:,.0f} MiB, schema "
            f"{log.header.schema_version}, {'margin' if log.margin else 'no margin'}"
            f", {built}",
            flush=True,
        )
        seconds, records, events = time_fold(directory, args.fold_sample)
        print(
            f"fold      {events / seconds:,.0f} journaled events/s, "
            f"{records / seconds:,.0f} records/s ({records:,} records, "
            f"{events:,} events, {seconds:.2f} s, decoding excluded)",
            flush=True,
        )
        seconds, records, events = time_rebuild(directory)
        print(
            f"rebuild   {events / seconds:,.0f} journaled events/s, "
            f"{records / seconds:,.0f} records/s ({records:,} records, "
            f"{seconds:.2f} s: read, decode and fold)",
            flush=True,
        )
        full, fast = time_recoveries(directory, full=not args.no_full_recovery)
        if full is not None:
            print(
                f"recover   without a snapshot: {full.seconds:.2f} s "
                f"({full.records_replayed:,} records replayed)",
                flush=True,
            )
        print(
            f"recover   with a snapshot at seq {fast.snapshot_seq:,}: "
            f"{fast.seconds:.2f} s ({fast.records_replayed:,} records replayed)",
            flush=True,
        )
        opened, loaded, tail, replayed = time_parts(directory)
        print(
            f"  parts   journal open and check {opened:.2f} s, snapshot load "
            f"{loaded:.2f} s, tail of {replayed:,} records {tail:.2f} s",
            flush=True,
        )
        if full is None:
            return 0
        if fast.state_hash != full.state_hash:
            print("MISMATCH: the two recoveries differ", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
