"""A journaled margin exchange with snapshots, for the snapshot and recovery tests."""

from __future__ import annotations

import itertools
from pathlib import Path

from exchange import Exchange
from exchange.journal import FileJournal, JournalHeader
from exchange.journal.frames import FRAME_HEADER_SIZE, scan_frames
from exchange.journal.payload import JOURNAL_SCHEMA
from exchange.journal.segment import MAGIC, list_segments
from exchange.journal.snapshots import write_snapshot
from exchange.markets import DEFAULT_MARKETS, config_hash, market_table

# Segments small enough that a session spans several of them.
SEGMENT_BYTES = 4096


def trade(ex: Exchange, rounds: int) -> None:
    """Trade ``rounds`` rounds of quotes, market orders and index moves."""
    for n in range(rounds):
        price = 60_000 + (n % 7) * 10
        ex.place_order("maker", "BTC-PERP", "sell", "limit", "0.5", str(price + 50))
        ex.place_order("maker", "BTC-PERP", "buy", "limit", "0.5", str(price - 50))
        ex.place_order("taker", "BTC-PERP", "buy" if n % 2 else "sell", "market", "0.1")
        ex.set_index_price("BTC-PERP", str(price))


def liquidate(ex: Exchange) -> None:
    """Open alice's isolated 10x long, then drop the index through its liquidation."""
    ex.place_order("maker", "BTC-PERP", "sell", "limit", "0.5", "60000")
    ex.place_order("alice", "BTC-PERP", "buy", "market", "0.5")
    ex.place_order("maker", "BTC-PERP", "buy", "limit", "1", "54100")
    ex.set_index_price("BTC-PERP", "50000")


def open_exchange(directory: Path) -> Exchange:
    """Return a margin exchange journaling to ``directory``, accounts funded."""
    ticks = itertools.count(1_700_000_000 * 10**9, 10**9)
    ex = Exchange(journal=_journal(directory), margin=True, clock=lambda: next(ticks))
    for name, amount in (("maker", "1000000"), ("taker", "100000"), ("alice", "10000")):
        ex.deposit(name, amount)
    ex.set_index_price("BTC-PERP", "60000")
    ex.set_margin_mode("alice", "BTC-PERP", "isolated")
    ex.set_leverage("alice", "BTC-PERP", 10)
    return ex


def _journal(directory: Path) -> FileJournal:
    """Return a file journal in ``directory`` with small segments."""
    header = JournalHeader(
        schema_version=JOURNAL_SCHEMA,
        config_hash=config_hash(DEFAULT_MARKETS),
        config={"markets": market_table(DEFAULT_MARKETS), "margin": True},
    )
    return FileJournal.open(directory, header, fsync="off", segment_bytes=SEGMENT_BYTES)


def snapshot(ex: Exchange, directory: Path, keep: int = 3) -> Path:
    """Make the journal durable, then write a snapshot of the exchange."""
    ex.journal.sync()
    return write_snapshot(
        directory, ex.core, ex.journal.header.config_hash, keep=keep, durable=False
    )


def segments(directory: Path) -> list[Path]:
    """Return the journal's segment files, oldest first."""
    return [path for _, path in list_segments(directory)]


def flip_mid_frame(segment: Path) -> int:
    """Flip a bit inside a middle record frame of ``segment``; return its offset."""
    data = bytearray(segment.read_bytes())
    offsets = [off for off, seq, _ in scan_frames(bytes(data), len(MAGIC)) if seq]
    victim = offsets[len(offsets) // 2]
    data[victim + FRAME_HEADER_SIZE + 3] ^= 0x10
    segment.write_bytes(bytes(data))
    return victim
