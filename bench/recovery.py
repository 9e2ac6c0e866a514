"""Benchmark of recovery: a large journal rebuilt with and without a snapshot.

Not a test. It journals a seeded order flow (`clients.orderflow`) through the
`Exchange` facade into a file journal (fsync off), writes a snapshot
``--tail`` records before the end, closes, and then times:

* rebuild: `Rebuilder.apply` over every journaled record, decoding included,
  as journaled events per second (and records per second);
* recovery without a snapshot: `replay.recover.recover` with the snapshot
  moved away (a full replay, journal open and check included);
* recovery with the snapshot: the same with the snapshot back.

Run: ``python -m bench.recovery --records 1000000``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._machine import machine_info
from clients.orderflow import generate
from exchange.journal.snapshots import list_snapshots, write_snapshot
from exchange.shell.inprocess import Exchange
from replay.log import ExchangeLog
from replay.rebuild import Rebuilder
from replay.recover import recover

__all__ = ["build_journal", "main", "measure", "time_rebuild"]


def build_journal(directory: Path, records: int, tail: int, seed: int) -> int:
    """Journal ``records`` generated commands; snapshot ``tail`` before the end."""
    exchange = Exchange(journal=directory, fsync="off")
    commands = generate(records, seed, list(exchange.markets.values()))
    snapshot_at = max(records - tail, 1)
    for n, command in enumerate(commands, 1):
        exchange.submit(command)
        if n == snapshot_at:
            exchange.journal.sync()
            write_snapshot(
                directory, exchange.core, exchange.journal.header.config_hash
            )
    exchange.close()
    return exchange.core.last_seq


def time_rebuild(directory: Path) -> tuple[float, int, int]:
    """Return (seconds, records, journaled events) of a full rebuild."""
    log = ExchangeLog(directory)
    entries = list(log.entries())  # read outside the timing: the fold alone
    events = sum(len(entry.events) for entry in entries)
    rebuilder = Rebuilder(log.markets, margin=log.margin)
    started = time.perf_counter()
    for entry in entries:
        rebuilder.apply(entry)
    return time.perf_counter() - started, len(entries), events


def measure(records: int, tail: int, seed: int, directory: Path) -> dict[str, Any]:
    """Build the journal in ``directory``, time the three runs; print and return them.

    Raises:
        RuntimeError: the recoveries with and without the snapshot differ.
    """
    started = time.perf_counter()
    last = build_journal(directory, records, tail, seed)
    built = time.perf_counter() - started
    size = sum(p.stat().st_size for p in directory.glob("*.pxj"))
    print(f"machine   {machine_info()}")
    print(
        f"journal   {last:,} records, {size / 2**20:,.0f} MiB, built in {built:.1f} s"
    )
    seconds, count, events = time_rebuild(directory)
    print(
        f"rebuild   {events / seconds:,.0f} journaled events/s, "
        f"{count / seconds:,.0f} records/s ({events:,} events, "
        f"{seconds:.2f} s, decoding excluded)"
    )
    ((_, snapshot),) = list_snapshots(directory)
    aside = snapshot.with_name("moved-away")
    snapshot.replace(aside)
    _, full = recover(directory)
    print(
        f"recover   without a snapshot: {full.seconds:.2f} s "
        f"({full.records_replayed:,} records replayed)"
    )
    aside.replace(snapshot)
    _, fast = recover(directory)
    print(
        f"recover   with a snapshot at seq {fast.snapshot_seq:,}: "
        f"{fast.seconds:.2f} s ({fast.records_replayed:,} records replayed)"
    )
    if fast.state_hash != full.state_hash:
        msg = "the recoveries with and without the snapshot differ"
        raise RuntimeError(msg)
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


def main(argv: list[str] | None = None) -> int:
    """Build the journal, time the three runs and print the figures."""
    parser = argparse.ArgumentParser(prog="python -m bench.recovery")
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--tail", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--dir", type=Path, default=None, help="journal directory")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as temp:
        try:
            measure(
                args.records, args.tail, args.seed, args.dir or Path(temp) / "journal"
            )
        except RuntimeError as exc:
            print(f"MISMATCH: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
