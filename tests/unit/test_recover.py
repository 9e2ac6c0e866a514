"""Tests of crash recovery: newest valid snapshot plus the journal's tail."""

from __future__ import annotations

from pathlib import Path

import pytest
from recovery_rig import (
    flip_mid_frame,
    open_exchange,
    segments,
    session,
    trade,
)

from exchange.errors import JournalCorrupt
from exchange.journal.frames import FRAME_HEADER_SIZE, scan_frames
from exchange.journal.segment import MAGIC
from exchange.journal.snapshots import list_snapshots
from exchange.messages import Liquidate
from replay.recover import recover


def lose_records_after(directory: Path, seq: int) -> None:
    """Make the journal end at record ``seq``, as if the rest never reached disk."""
    for path in segments(directory):
        if int(path.stem) > seq:
            path.unlink()
    segment = segments(directory)[-1]
    for off, frame_seq, payload in scan_frames(segment.read_bytes(), len(MAGIC)):
        if frame_seq == seq:
            with segment.open("r+b") as file:
                file.truncate(off + FRAME_HEADER_SIZE + len(payload))


class TestRecover:
    """Recovery restores the newest valid snapshot and rebuilds the tail."""

    def test_recovery_from_the_newest_snapshot_equals_the_live_state(
        self, tmp_path: Path
    ) -> None:
        """The recovered hash is the live one; only the tail is replayed."""
        live = session(tmp_path)
        newest = list_snapshots(tmp_path)[0][0]
        core, report = recover(tmp_path)
        assert core.state_hash() == live == report.state_hash
        assert report.snapshot_seq == newest
        assert report.records_replayed == core.last_seq - newest
        assert report.why_no_snapshot is None
        assert report.journal.clean

    def test_without_a_snapshot_everything_is_replayed(self, tmp_path: Path) -> None:
        """No snapshot: a full replay, and the report says why."""
        live = session(tmp_path, snapshots=0)
        core, report = recover(tmp_path)
        assert core.state_hash() == live
        assert report.snapshot_seq is None
        assert report.records_replayed == core.last_seq
        assert report.why_no_snapshot == "no snapshot of the journal"

    def test_corrupt_newest_snapshot_falls_back_to_the_older(
        self, tmp_path: Path
    ) -> None:
        """A truncated newest snapshot is skipped with its reason; the older is used."""
        live = session(tmp_path)
        (newest_seq, newest), (older_seq, _) = list_snapshots(tmp_path)[:2]
        newest.write_bytes(newest.read_bytes()[:-10])
        core, report = recover(tmp_path)
        assert core.state_hash() == live
        assert report.snapshot_seq == older_seq < newest_seq
        (skipped,) = report.skipped
        assert (skipped.path, skipped.reason[:9]) == (str(newest), "truncated")

    def test_every_snapshot_corrupt_means_a_full_replay(self, tmp_path: Path) -> None:
        """With no usable snapshot the full replay still recovers the state."""
        live = session(tmp_path)
        for _, path in list_snapshots(tmp_path):
            data = bytearray(path.read_bytes())
            data[-1] ^= 1
            path.write_bytes(bytes(data))
        core, report = recover(tmp_path)
        assert core.state_hash() == live
        assert report.snapshot_seq is None
        assert report.why_no_snapshot is not None
        assert "crc mismatch" in report.why_no_snapshot

    def test_snapshot_past_the_journal_end_is_moved_aside(self, tmp_path: Path) -> None:
        """A snapshot of records the journal lost is renamed .stale, never used."""
        session(tmp_path)
        newest_seq, newest = list_snapshots(tmp_path)[0]
        lose_records_after(tmp_path, newest_seq - 5)
        core, report = recover(tmp_path)
        assert core.last_seq == newest_seq - 5
        assert report.skipped[0].path == str(newest)
        assert "newer than the journal" in report.skipped[0].reason
        assert not newest.exists()
        assert newest.with_name(newest.name + ".stale").exists()

    def test_snapshot_newer_than_journal_damage_does_not_hide_it(
        self, tmp_path: Path
    ) -> None:
        """Damage mid-journal refuses recovery even with a snapshot past it."""
        session(tmp_path, segment_bytes=1 << 20)  # one segment: the last
        (only,) = segments(tmp_path)
        flip_mid_frame(only)
        with pytest.raises(JournalCorrupt) as info:
            recover(tmp_path)
        assert info.value.records_after

    def test_pending_liquidation_not_yet_journaled_is_queued_again(
        self, tmp_path: Path
    ) -> None:
        """A margin call whose Liquidate record never got journaled is re-queued."""
        with open_exchange(tmp_path) as ex:
            trade(ex, 4)
            ex.place_order("maker", "BTC-PERP", "sell", "limit", "0.5", "60000")
            ex.place_order("alice", "BTC-PERP", "buy", "market", "0.5")
            ex.place_order("maker", "BTC-PERP", "buy", "limit", "1", "54100")
            calls_before = ex.core.last_seq
            ex.set_index_price("BTC-PERP", "50000")  # margin call + Liquidate
            called_at = calls_before + 1
        # the crash: only records up to the margin call reached the disk
        lose_records_after(tmp_path, called_at)
        core, report = recover(tmp_path)
        assert core.last_seq == called_at
        assert report.pending_liquidations == 1
        assert core.take_system_commands() == [
            Liquidate(account="alice", symbol="BTC-PERP")
        ]
