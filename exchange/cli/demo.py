"""``paperx demo --in-process``: an order stream through an in-process exchange.

It generates a seeded order flow (several accounts trading BTC-PERP and
ETH-PERP), drives it through `Exchange` with a file journal and a progress
bar, then prints what happened and verifies the journal replays exactly.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

from clients.orderflow import generate
from exchange.cli.margin_demo import compare_margin_modes
from exchange.cli.progress import ProgressBar
from exchange.journal import is_nats_url
from exchange.messages import CommandRejected, OrderFilled
from exchange.shell.inprocess import Exchange
from replay.log import ExchangeLog
from replay.verify import verify

__all__ = ["fresh_directory", "run_demo"]


def fresh_directory(path: Path) -> Path:
    """Return ``path``, created; if it holds files, a new timestamped one in it."""
    if path.exists() and any(path.iterdir()):
        path = path / time.strftime("%Y%m%d-%H%M%S")
    path.mkdir(parents=True, exist_ok=True)
    return path


def run_demo(n: int, seed: int, journal: str, fsync: str) -> int:
    """Run ``n`` generated commands and print a summary; return an exit code.

    ``journal`` is a directory or a ``nats://host:port/STREAM`` URL.
    """
    journal_dir: str | Path = (
        journal if is_nats_url(journal) else fresh_directory(Path(journal))
    )
    exchange = Exchange(journal=journal_dir, fsync=fsync)  # type: ignore[arg-type]
    commands = list(generate(n, seed, list(exchange.markets.values())))
    kinds: Counter[str] = Counter()
    fills = rejects = 0
    bar = ProgressBar(len(commands), "trading ")
    started = time.perf_counter()
    for i, command in enumerate(commands, 1):
        kinds[type(command).__name__] += 1
        _, events = exchange.submit(command)
        for event in events:
            if type(event) is OrderFilled:
                fills += 1
            elif type(event) is CommandRejected:
                rejects += 1
        if not i % 1024:
            bar.update(i)
    bar.update(len(commands))
    bar.close()
    elapsed = time.perf_counter() - started
    books = {s: exchange.order_book(s, 1) for s in exchange.markets}
    live_hash = exchange.checkpoint()
    exchange.close()

    print(
        f"\npaperx demo: {len(commands):,} commands in {elapsed:.2f} s "
        f"({len(commands) / elapsed:,.0f} commands/s, journaled, fsync={fsync})"
    )
    print("  commands  " + ", ".join(f"{k} {v:,}" for k, v in kinds.most_common()))
    print(f"  fills     {fills:,}    rejects {rejects:,}")
    for symbol, book in books.items():
        bid = f"{book['bids'][0][1]} @ {book['bids'][0][0]}" if book["bids"] else "-"
        ask = f"{book['asks'][0][1]} @ {book['asks'][0][0]}" if book["asks"] else "-"
        print(f"  {symbol:<9} best bid {bid:<22} best ask {ask}")
    print(f"  journal   {journal_dir}")
    print(f"  state     {live_hash}")

    log = ExchangeLog(journal_dir)
    bar = ProgressBar(len(commands) + 2, "verifying")
    report = verify(log, lambda done: bar.update(done) if not done % 1024 else None)
    bar.update(report.records)
    bar.close()
    verdict = "OK" if report.ok else "MISMATCH"
    print(
        f"  replay    {verdict}: live == rebuild == rerun over {report.records:,} "
        f"records"
        if report.ok
        else f"  replay    {verdict}: {report}"
    )
    print("\n" + compare_margin_modes())
    print(f"\nNext: paperx replay verify {journal_dir}   |   paperx bench core")
    return 0 if report.ok else 1
