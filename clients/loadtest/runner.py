"""Run a load test: venue up, load processes paced, answers counted, journal checked.

The parent splits the schedule's intended send times among P spawned
processes (every P-th one each) and the bots among them, waits until every
process has connected and set up its bots, then gives one start time to
all. While they run it shows progress; at the end it merges their
histograms and counts, stops the server it started (SIGTERM: drain, final
checkpoint), and checks that nothing was lost: every request answered once,
every accepted answer's record in the journal (same seq, same account, same
command), and the final state hash equal to a rebuild of the journal
(`replay.verify`: live == rebuild == rerun).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import sys
import time
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

from clients.loadtest.mix import OrderMix
from clients.loadtest.report import merge_results
from clients.loadtest.schedule import parse_schedule
from clients.loadtest.venue import account_secret, write_server_config
from clients.loadtest.worker import MarketSpec, WorkerSpec, run_worker
from exchange.cli.server_process import Mosquitto, ServerProcess, free_port

__all__ = ["LoadtestOptions", "check_journal", "run_loadtest"]

_READY_TIMEOUT_S = 120.0
_START_LEAD_NS = 300_000_000  # between "go" and the first intended send


_STOP_TIMEOUT_S = 120.0  # the drain of a long run's backlog


@dataclass(frozen=True, slots=True)
class LoadtestOptions:
    """A load test's settings (the command line's options)."""

    schedule: str = "constant:500"
    duration_s: float = 10.0
    bots: int = 8
    processes: int = 2
    mix: OrderMix = field(default_factory=OrderMix)
    batch: int = 1
    qos: int = 1
    seed: int = 1
    broker: str | None = None  # an external broker for the server we start
    mosquitto: bool = False  # start a Mosquitto of our own for the server
    out: Path = Path("runs/loadtest")
    fsync: str = "batch"
    drain_s: float = 10.0
    market_data: bool = True
    markets: dict[str, tuple[str, str, str]] = field(
        default_factory=lambda: {"BTC-PERP": ("0.1", "0.001", "65000")}
    )
    verify: bool = True
    progress: bool = True


def run_loadtest(options: LoadtestOptions, log: TextIO = sys.stderr) -> dict[str, Any]:
    """Run one load test against a server of its own; return the results.

    The results are plain data (see `report.merge_results`), with the
    journal check under ``"journal"``.
    """
    schedule = parse_schedule(options.schedule, options.duration_s)
    options.out.mkdir(parents=True, exist_ok=True)
    accounts = [f"lt-{i:04d}" for i in range(options.bots)]
    config = write_server_config(
        options.out / "venue", accounts, options.markets, options.fsync
    )
    markets = tuple(
        MarketSpec(symbol, Decimal(tick), Decimal(lot), Decimal(start))
        for symbol, (tick, lot, start) in options.markets.items()
    )
    mix = replace(options.mix, symbols=tuple(options.markets))
    with contextlib.ExitStack() as stack:
        broker = options.broker
        if options.mosquitto and broker is None:
            broker = stack.enter_context(Mosquitto(options.out / "mosquitto")).url
        port = None if broker else free_port()  # of the embedded broker
        server = stack.enter_context(ServerProcess(config, broker, port))
        server.wait_for("server_ready")
        url = broker or f"mqtt://127.0.0.1:{port}"
        print(f"server ready on {url} (pid {server.process.pid})", file=log)
        offsets = schedule.intended_offsets()
        procs = max(1, min(options.processes, options.bots))
        specs = [
            WorkerSpec(
                index=p,
                url=url,
                accounts=tuple((a, account_secret(a)) for a in accounts[p::procs]),
                offsets=tuple(offsets[p::procs]),
                schedule=schedule,
                mix=mix,
                markets=markets,
                batch=options.batch,
                qos=options.qos,
                seed=options.seed,
                tag=f"r{options.seed}",
                drain_s=options.drain_s,
                market_data=options.market_data,
            )
            for p in range(procs)
        ]
        started = time.time_ns()
        parts = _drive(specs, len(offsets), options, log)
        stopped = server.stop(timeout=_STOP_TIMEOUT_S)
    results = merge_results(parts, schedule, options.batch)
    results["settings"] = _settings(options, procs, started)
    results["server"] = {"url": url, "stopped": stopped}
    journal = config.parent / "journal"
    results["journal"] = check_journal(
        journal,
        results.pop("evidence"),
        stopped.get("state_hash"),
        verify=options.verify,
    )
    return results


def _settings(options: LoadtestOptions, procs: int, started_ns: int) -> dict[str, Any]:
    """Return the run's settings as plain data."""
    return {
        "schedule": options.schedule,
        "duration_s": options.duration_s,
        "bots": options.bots,
        "processes": procs,
        "batch": options.batch,
        "qos": options.qos,
        "fsync": options.fsync,
        "broker": options.broker or ("mosquitto" if options.mosquitto else "embedded"),
        "seed": options.seed,
        "mix": {
            "limit": options.mix.limit,
            "market": options.mix.market,
            "cancel": options.mix.cancel,
            "amend": options.mix.amend,
            "post_only": options.mix.post_only,
            "reduce_only": options.mix.reduce_only,
            "leverage": list(options.mix.leverage),
            "margin_modes": list(options.mix.margin_modes),
        },
        "started_ns": started_ns,
    }


def _drive(
    specs: list[WorkerSpec], total: int, options: LoadtestOptions, log: TextIO
) -> list[dict[str, Any]]:
    """Start the load processes, give them one start time, collect their results."""
    context = multiprocessing.get_context("spawn")
    messages = context.Queue()
    go = context.Event()
    start_ns = context.Value("q", 0)
    workers = [
        context.Process(
            target=run_worker, args=(spec, messages, go, start_ns), daemon=True
        )
        for spec in specs
    ]
    for worker in workers:
        worker.start()
    results: dict[int, dict[str, Any]] = {}
    try:
        ready = 0
        while ready < len(workers):
            kind, *_ = _get(messages, workers, _READY_TIMEOUT_S)
            ready += kind == "ready"
        start_ns.value = time.time_ns() + _START_LEAD_NS
        go.set()
        deadline = options.duration_s + options.drain_s + 60.0
        shown = _Progress(start_ns.value, total * options.batch, options, log)
        while len(results) < len(workers):
            kind, index, *rest = _get(messages, workers, deadline)
            if kind == "progress":
                shown.update(index, rest[0], rest[1], rest[2])
            elif kind == "result":
                results[index] = rest[0]
        shown.close()
    finally:
        for worker in workers:
            worker.join(10)
            if worker.is_alive():
                worker.kill()
    return [results[i] for i in sorted(results)]


class _Progress:
    """The live progress line: sent, answered, in flight, rejected."""

    def __init__(
        self, start_ns: int, total: int, options: LoadtestOptions, log: TextIO
    ) -> None:
        """Show progress on ``log`` (one line rewritten in a terminal)."""
        self.start_ns = start_ns
        self.total = total
        self.options = options
        self.log = log
        self.counts: dict[int, tuple[int, int, int]] = {}
        self.shown = 0.0

    def update(self, index: int, sent: int, answered: int, rejected: int) -> None:
        """Take one process's counts; redraw at most twice a second."""
        self.counts[index] = (sent, answered, rejected)
        if not self.options.progress or time.monotonic() - self.shown < 0.5:
            return
        self.shown = time.monotonic()
        sent = sum(c[0] for c in self.counts.values())
        answered = sum(c[1] for c in self.counts.values())
        rejected = sum(c[2] for c in self.counts.values())
        elapsed = max(0.0, (time.time_ns() - self.start_ns) / 1e9)
        duration = self.options.duration_s
        print(
            f"  {min(elapsed, duration):6.1f}/{duration:g} s"
            f"  sent {sent:>9,}/{self.total:,}  answered {answered:>9,}"
            f"  in flight {sent - answered:>6,}  rejected {rejected:>7,}",
            end="\r" if self.log.isatty() else "\n",
            file=self.log,
            flush=True,
        )

    def close(self) -> None:
        """End the rewritten line."""
        if self.options.progress and self.log.isatty():
            print(file=self.log)


def _get(messages: Any, workers: list[Any], timeout: float) -> tuple[Any, ...]:  # noqa: ANN401 -- a multiprocessing queue
    """Return the next message of a load process; fail if they all died."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(Exception):  # queue.Empty (multiprocessing's)
            item: tuple[Any, ...] = messages.get(timeout=0.5)
            return item
        if not any(w.is_alive() for w in workers) or time.monotonic() > deadline:
            msg = "the load processes stopped without a result (see their errors above)"
            raise RuntimeError(msg)


def check_journal(
    journal: Path,
    evidence: list[list[Any]],
    state_hash: str | None,
    *,
    verify: bool,
) -> dict[str, Any]:
    """Check every accepted answer against the journal; verify its hashes.

    ``evidence`` holds (account, op, seq) of each accepted answer. Each must
    name a journaled record of that seq whose command is that account's and
    of that op. With ``verify``, `replay.verify` must find live == rebuild ==
    rerun, and the rebuild's hash must equal ``state_hash`` (the server's at
    its stop).
    """
    from replay.log import ExchangeLog  # noqa: PLC0415 -- after the run only
    from replay.verify import verify as verify_log  # noqa: PLC0415

    wanted: dict[int, list[tuple[str, str]]] = {}
    for account, op, seq in evidence:
        wanted.setdefault(int(seq), []).append((str(account), str(op)))
    log = ExchangeLog(journal)
    records = 0
    found = 0
    mismatched: list[str] = []
    for entry in log.entries():
        records += 1
        claims = wanted.pop(entry.record.seq, None)
        if not claims:
            continue
        command = entry.record.command
        tag = type(command).__struct_config__.tag
        for account, op in claims:
            if getattr(command, "account", None) == account and tag == op:
                found += 1
            else:
                mismatched.append(f"seq {entry.record.seq}: {account} {op} vs {tag}")
    missing = sum(len(v) for v in wanted.values())
    report: dict[str, Any] = {
        "path": str(journal),
        "records": records,
        "accepted_answers": len(evidence),
        "accepted_in_journal": found,
        "accepted_missing": missing,
        "mismatched": mismatched[:10],
        "state_hash": state_hash,
    }
    if verify:
        verdict = verify_log(ExchangeLog(journal))
        report["verify_ok"] = verdict.ok
        report["rebuild_hash"] = verdict.rebuild_hash
        report["live_hash"] = verdict.live_hash
        report["hash_matches"] = verdict.ok and verdict.rebuild_hash == state_hash
    report["ok"] = not missing and not mismatched and report.get("hash_matches", True)
    return report
