"""A running server's snapshots: taken between records, written once durable."""

from __future__ import annotations

import asyncio
from pathlib import Path

from exchange.core import ExchangeCore
from exchange.journal import FileJournal, JournalHeader
from exchange.journal.snapshots import list_snapshots, load_snapshot
from exchange.markets import DEFAULT_MARKETS
from exchange.messages import PlaceOrder
from exchange.shell.sequencer import Sequencer
from exchange.shell.snapshotter import Snapshotter

E8 = 10**8
HEADER = JournalHeader(schema_version=2, config_hash="test", config={}, first_seq=1)


def _order(n: int) -> PlaceOrder:
    return PlaceOrder(
        account=f"a{n}",
        symbol="BTC-PERP",
        side="buy",
        type="limit",
        qty=E8,
        price=(100 + n) * E8,
    )


async def _applied(journal: FileJournal, seq: int) -> None:
    """Return once the journal holds record ``seq``."""
    for _ in range(10_000):
        if journal.last_seq >= seq:
            return
        await asyncio.sleep(0)
    raise AssertionError(seq)


async def _written(directory: Path, count: int) -> list[int]:
    """Return the snapshot seqs once ``count`` snapshots are in ``directory``."""
    for _ in range(10_000):  # the snapshot thread writes; 10 s at most
        if len(list_snapshots(directory)) >= count:
            return [seq for seq, _ in list_snapshots(directory)]
        await asyncio.sleep(0.001)
    raise AssertionError(count)


async def test_a_snapshot_waits_for_durability_and_holds_the_state_it_was_taken_at(
    tmp_path: Path,
) -> None:
    """Due at seq 3, it is written only after the journal's sync, with seq 3's state."""
    journal = FileJournal.open(
        tmp_path, header=HEADER, fsync="batch", batch_records=10**6, batch_ms=60_000
    )
    core = ExchangeCore(DEFAULT_MARKETS)
    snapshots = Snapshotter(core, journal, tmp_path, every=3, keep=5)
    sequencer = Sequencer(core, journal, between=snapshots.between)
    task = asyncio.create_task(sequencer.run())
    await asyncio.sleep(0)
    hashes = {}
    for n in range(1, 6):
        assert sequencer.offer(_order(n))
        await _applied(journal, n)
        hashes[n] = core.state_hash()
    assert journal.durable_seq == 0
    assert list_snapshots(tmp_path) == []
    journal.sync()
    assert await _written(tmp_path, 1) == [3]
    await sequencer.stop()
    await asyncio.wait_for(task, 5)
    await snapshots.finish()
    journal.close()
    assert [seq for seq, _ in list_snapshots(tmp_path)] == [5, 3]
    for seq, path in list_snapshots(tmp_path):
        restored, body = load_snapshot(
            path, DEFAULT_MARKETS, margin=False, config_hash="test"
        )
        assert restored.state_hash() == body.state_hash == hashes[seq]


async def test_no_periodic_snapshot_with_every_zero_only_the_final_one(
    tmp_path: Path,
) -> None:
    """``every=0`` writes nothing while running and one snapshot at the stop."""
    journal = FileJournal.open(tmp_path, header=HEADER, fsync="always")
    core = ExchangeCore(DEFAULT_MARKETS)
    snapshots = Snapshotter(core, journal, tmp_path, every=0, keep=1)
    sequencer = Sequencer(core, journal, between=snapshots.between)
    task = asyncio.create_task(sequencer.run())
    await asyncio.sleep(0)
    for n in range(1, 4):
        await sequencer.submit(_order(n))
    assert list_snapshots(tmp_path) == []
    await sequencer.stop()
    await asyncio.wait_for(task, 5)
    await snapshots.finish()
    journal.close()
    assert [seq for seq, _ in list_snapshots(tmp_path)] == [3]
