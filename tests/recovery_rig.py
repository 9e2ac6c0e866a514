"""A journaled margin exchange with snapshots, for the snapshot and recovery tests.

The journal is a directory of small segments, or a JetStream journal when
given a ``nats://`` URL.
"""

from __future__ import annotations

import itertools
from pathlib import Path

from exchange import Exchange
from exchange.journal import FileJournal, Journal, JournalHeader, is_nats_url
from exchange.journal.frames import FRAME_HEADER_SIZE, scan_frames
from exchange.journal.payload import JOURNAL_SCHEMA
from exchange.journal.segment import MAGIC, list_segments
from exchange.journal.snapshots import (
    save_snapshot,
    snapshot_store,
    take_snapshot,
)
from exchange.markets import DEFAULT_MARKETS, config_hash, market_table
from replay.log import ExchangeLog
from replay.verify import verify

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


def open_exchange(
    directory: Path | str, segment_bytes: int = SEGMENT_BYTES
) -> Exchange:
    """Return a margin exchange journaling to ``directory`` (or a URL), funded."""
    ticks = itertools.count(1_700_000_000 * 10**9, 10**9)
    journal = _journal(directory, segment_bytes)
    ex = Exchange(journal=journal, margin=True, clock=lambda: next(ticks))
    for name, amount in (("maker", "1000000"), ("taker", "100000"), ("alice", "10000")):
        ex.deposit(name, amount)
    ex.set_index_price("BTC-PERP", "60000")
    ex.set_margin_mode("alice", "BTC-PERP", "isolated")
    ex.set_leverage("alice", "BTC-PERP", 10)
    return ex


def _journal(target: Path | str, segment_bytes: int) -> Journal:
    """Return a file journal in ``target`` with small segments, or a JetStream one."""
    header = JournalHeader(
        schema_version=JOURNAL_SCHEMA,
        config_hash=config_hash(DEFAULT_MARKETS),
        config={"markets": market_table(DEFAULT_MARKETS), "margin": True},
    )
    if is_nats_url(target):
        from exchange.journal.nats import NatsJournal  # noqa: PLC0415 -- optional

        return NatsJournal.open(str(target), header)
    return FileJournal.open(
        Path(target), header, fsync="off", segment_bytes=segment_bytes
    )


def snapshot(ex: Exchange, directory: Path, keep: int = 3) -> Path:
    """Make the journal durable, then write a snapshot file of the exchange."""
    return Path(snapshot_to(ex, str(directory), keep))


def snapshot_to(ex: Exchange, target: str, keep: int = 3) -> str:
    """Make the journal durable, then store a snapshot in the journal's store."""
    ex.journal.sync()
    store = snapshot_store(target, durable=False, create=True)
    try:
        body = take_snapshot(ex.core, ex.journal.header.config_hash)
        return save_snapshot(store, body, keep=keep)[0]
    finally:
        store.close()


def session(
    target: Path | str, snapshots: int = 2, segment_bytes: int = SEGMENT_BYTES
) -> str:
    """Trade, snapshotting ``snapshots`` times on the way; return the live hash."""
    with open_exchange(target, segment_bytes) as ex:
        for _ in range(snapshots):
            trade(ex, 8)
            snapshot_to(ex, str(target))
        trade(ex, 5)
        liquidate(ex)
        trade(ex, 3)
    return verify(ExchangeLog(target)).live_hash or ""


def snapshot_rounds(target: Path | str, rounds: int, keep: int) -> list[int]:
    """Trade and snapshot (keeping ``keep``) ``rounds`` times; return the seqs."""
    seqs = []
    with open_exchange(target) as ex:
        for _ in range(rounds):
            trade(ex, 2)
            snapshot_to(ex, str(target), keep=keep)
            seqs.append(ex.core.last_seq)
    return seqs


def segments(directory: Path) -> list[Path]:
    """Return the journal's segment files, oldest first."""
    return [path for _, path in list_segments(directory)]


def flip_mid_frame(segment: Path) -> int:
    """Flip a bit inside a middle record frame of ``segment``; return its offset.

    The frame has at least one after it (when the segment holds two or more),
    so the damage is inside the journal, never a torn tail.
    """
    data = bytearray(segment.read_bytes())
    offsets = [off for off, seq, _ in scan_frames(bytes(data), len(MAGIC)) if seq]
    victim = offsets[(len(offsets) - 1) // 2]
    data[victim + FRAME_HEADER_SIZE + 3] ^= 0x10
    segment.write_bytes(bytes(data))
    return victim
