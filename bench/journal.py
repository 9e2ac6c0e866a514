"""``paperx bench journal``: append and read throughput of the journal backends.

The payloads are the real ones: ``--n`` commands of `clients.orderflow` run
through the core, each record's journal payload encoded, all before any
timing. Then each backend appends the same payloads from seq 1 with
``append`` + ``maybe_sync`` (as the sequencer does) and is closed (every
record durable under its policy) inside the timing; then the whole journal
is read back read-only, as ``paperx replay`` does (``read_journal``).

Backends: the file journal in a temporary directory and the NATS JetStream
journal on ``--nats`` (a fresh stream per run, deleted afterwards), under the
policies in ``--policies``. "always" waits for one fsync or one ack per
record, so it runs on the first ``--always-n`` records only. This is a
benchmark: it prints figures and asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from bench._inputs import flow_workload
from bench._machine import machine_info
from exchange.core import ExchangeCore
from exchange.journal import FileJournal, JournalHeader, read_journal
from exchange.journal.payload import JOURNAL_SCHEMA, journal_payload
from exchange.markets import config_hash, market_table

if TYPE_CHECKING:
    from exchange.journal import FsyncPolicy, Journal

__all__ = ["main"]

_POLICIES: tuple[FsyncPolicy, ...] = ("batch", "off", "always")


def _payloads(n: int, seed: int) -> tuple[JournalHeader, list[bytes]]:
    """Return the journal header and the payloads of ``n`` generated records."""
    workload = flow_workload(n, seed, progress=False)
    core = ExchangeCore(workload.markets)
    payloads = [journal_payload(r, core.handle(r)) for r in workload.records]
    header = JournalHeader(
        schema_version=JOURNAL_SCHEMA,
        config_hash=config_hash(workload.markets),
        config={"markets": market_table(workload.markets), "margin": False},
    )
    return header, payloads


def _append_all(journal: Journal, payloads: list[bytes]) -> float:
    """Append every payload and close the journal; return the seconds it took."""
    append, maybe_sync = journal.append, journal.maybe_sync
    started = time.perf_counter()
    for seq, payload in enumerate(payloads, 1):
        append(seq, payload)
        maybe_sync()
    journal.close()
    return time.perf_counter() - started


def _read_all(source: str) -> tuple[float, int]:
    """Read the whole journal at ``source`` read-only; return seconds and records."""
    started = time.perf_counter()
    records = sum(1 for _ in read_journal(source).read())
    return time.perf_counter() - started, records


def _run_one(
    backend: str, policy: FsyncPolicy, header: JournalHeader, payloads: list[bytes],
    nats_server: str,
) -> dict[str, object]:  # fmt: skip
    """Append ``payloads`` to a fresh journal of ``backend``, read them back."""
    journal: Journal
    if backend == "file":
        with tempfile.TemporaryDirectory(prefix="paperx-bench-") as tmp:
            journal = FileJournal.open(Path(tmp), header=header, fsync=policy)
            seconds = _append_all(journal, payloads)
            read_seconds, read = _read_all(tmp)
    else:
        from exchange.journal.nats import (  # noqa: PLC0415 -- optional
            NatsJournal,
            delete_nats_journal,
        )

        url = f"{nats_server.rstrip('/')}/paperx-bench-{uuid.uuid4().hex[:10]}"
        try:
            journal = NatsJournal.open(url, header=header, fsync=policy)
            seconds = _append_all(journal, payloads)
            read_seconds, read = _read_all(url)
        finally:
            delete_nats_journal(url)
    n = len(payloads)
    size = sum(map(len, payloads))
    return {
        "backend": backend,
        "policy": policy,
        "records": n,
        "payload_mb": round(size / 1e6, 2),
        "append_per_s": round(n / seconds),
        "append_mb_per_s": round(size / seconds / 1e6, 1),
        "read_per_s": round(read / read_seconds),
        "read_ok": read == n,
    }


def _parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``paperx bench journal``."""
    parser = argparse.ArgumentParser(
        prog="paperx bench journal",
        description="Append and read throughput of the file and JetStream journals.",
    )
    parser.add_argument("--n", type=int, default=200_000, help="records (200000)")
    parser.add_argument("--seed", type=int, default=42, help="order-flow seed")
    parser.add_argument(
        "--always-n",
        type=int,
        default=5_000,
        help="records for the 'always' policy, one round trip each (5000)",
    )
    parser.add_argument(
        "--nats",
        default="nats://127.0.0.1:4222",
        help="JetStream server; 'none' skips the NATS backend",
    )
    parser.add_argument(
        "--policies",
        default=",".join(_POLICIES),
        help="comma-separated policies to run (batch,off,always)",
    )
    parser.add_argument("--json", action="store_true", help="one JSON line per run")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the journal benchmark and print one line (or JSON object) per run."""
    args = _parser().parse_args(argv)
    policies = [p for p in _POLICIES if p in args.policies.split(",")]
    backends = ["file"] if args.nats == "none" else ["file", "nats"]
    header, payloads = _payloads(args.n, args.seed)
    if not args.json:
        info = machine_info()
        print(f"paperx bench journal: {len(payloads):,} records of orderflow")
        print(f"  machine {info}")
        print(
            f"  {'backend':<7} {'policy':<7} {'records':>9} {'append/s':>10} "
            f"{'MB/s':>6} {'read/s':>10}"
        )
    for policy in policies:
        chosen = payloads[: args.always_n] if policy == "always" else payloads
        for backend in backends:
            row = _run_one(backend, policy, header, chosen, args.nats)
            if args.json:
                print(json.dumps(row))
            else:
                print(
                    f"  {backend:<7} {policy:<7} {row['records']:>9,} "
                    f"{row['append_per_s']:>10,} {row['append_mb_per_s']:>6} "
                    f"{row['read_per_s']:>10,}" + ("" if row["read_ok"] else "  SHORT")
                )
    return 0
