"""Verify a log: live hash == rebuild hash == rerun hash, or where they part.

The live hash is the one the exchange journaled in its last `Checkpoint`
record (every exchange writes one on close). Rebuild folds the logged events;
rerun feeds the logged commands through a fresh core. Every checkpoint along
the way is checked too, so a difference is located to the record.

When the journal has snapshots (files beside its segments, or a JetStream
journal's bucket), the newest valid one is checked
as well: its state hash must equal the rebuild's at its seq, and a rebuild
of the tail that starts from the restored snapshot must end at the same
hash as the full rebuild. A snapshot that cannot be used is reported.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import msgspec

from exchange.journal.snapshots import snapshot_store
from exchange.messages import CheckpointTaken
from replay.errors import Divergence
from replay.log import ExchangeLog
from replay.rebuild import Rebuilder
from replay.recover import newest_snapshot
from replay.rerun import Rerunner

if TYPE_CHECKING:
    from exchange.journal.payload import Journaled

__all__ = ["VerifyReport", "verify"]


class VerifyReport(msgspec.Struct, kw_only=True):
    """What `verify` found; ``ok`` is True only if all three hashes agree."""

    records: int
    checkpoints: int
    live_hash: str | None
    live_seq: int
    rebuild_hash: str
    rerun_hash: str
    rebuild_error: str | None = None
    rerun_difference: str | None = None
    damage: str | None = None
    snapshot_seq: int | None = None
    """The seq of the newest valid snapshot checked, if any."""
    snapshot_hash: str | None = None
    """Its stored state hash."""
    snapshot_rebuild_hash: str | None = None
    """The full rebuild's hash at the snapshot's seq."""
    snapshot_tail_hash: str | None = None
    """The hash a rebuild from the snapshot reached at the journal's end."""
    final_rebuild_hash: str | None = None
    """The full rebuild's hash at the journal's end."""
    snapshots_skipped: list[str] = msgspec.field(default_factory=list)
    """Newer snapshots that could not be used, with their reasons."""

    @property
    def snapshot_ok(self) -> bool:
        """Return True if there is no snapshot, or it agrees with the rebuild."""
        return self.snapshot_seq is None or (
            self.snapshot_hash == self.snapshot_rebuild_hash
            and self.snapshot_tail_hash == self.final_rebuild_hash
        )

    @property
    def ok(self) -> bool:
        """Return True if live, rebuild, rerun and the snapshot agree."""
        return (
            self.live_hash is not None
            and self.live_hash == self.rebuild_hash == self.rerun_hash
            and self.rebuild_error is None
            and self.rerun_difference is None
            and self.snapshot_ok
        )


def verify(
    log: ExchangeLog, progress: Callable[[int], None] | None = None
) -> VerifyReport:
    """Rebuild and rerun ``log`` up to its last checkpoint and compare hashes.

    Records after the last checkpoint (a crash before close) are replayed too,
    but only hashes at a checkpoint can be compared with the live exchange.
    Both replays run with the margin setting the journal header recorded.
    """
    rebuilder = Rebuilder(log.markets, margin=log.margin)
    rerunner = Rerunner(log.markets, margin=log.margin)
    snapshot = _SnapshotCheck(log)
    records = checkpoints = live_seq = 0
    live_hash: str | None = None
    rebuild_error: str | None = None
    rebuild_at_live = rerun_at_live = ""
    for entry in log.entries():
        records += 1
        if rebuild_error is None:
            try:
                rebuilder.apply(entry)
            except Divergence as exc:
                rebuild_error = str(exc)
        rerunner.apply(entry)
        snapshot.apply(entry, rebuilder)
        for event in entry.events:
            if isinstance(event, CheckpointTaken):
                checkpoints += 1
                live_hash, live_seq = event.state_hash, event.seq
                rebuild_at_live = rebuilder.state_hash()
                rerun_at_live = rerunner.state_hash()
        if progress is not None:
            progress(records)
    difference = rerunner.first_difference
    return VerifyReport(
        records=records,
        checkpoints=checkpoints,
        live_hash=live_hash,
        live_seq=live_seq,
        rebuild_hash=rebuild_at_live or rebuilder.state_hash(),
        rerun_hash=rerun_at_live or rerunner.state_hash(),
        rebuild_error=rebuild_error,
        rerun_difference=difference.describe() if difference else None,
        damage=log.damage(),
        snapshot_seq=snapshot.seq,
        snapshot_hash=snapshot.hash,
        snapshot_rebuild_hash=snapshot.rebuild_hash,
        snapshot_tail_hash=snapshot.tail_hash(),
        final_rebuild_hash=rebuilder.state_hash(),
        snapshots_skipped=snapshot.skipped,
    )


class _SnapshotCheck:
    """The newest usable snapshot, checked against the full rebuild as it goes."""

    def __init__(self, log: ExchangeLog) -> None:
        """Load the newest snapshot that loads, noting those that do not."""
        self.seq: int | None = None
        self.hash: str | None = None
        self.rebuild_hash: str | None = None
        self.tail: Rebuilder | None = None
        store = snapshot_store(log.path)
        try:
            start = newest_snapshot(store, log)
        finally:
            store.close()
        self.skipped = [f"{skip.path}: {skip.reason}" for skip in start.skipped]
        if start.core is not None and start.body is not None:
            self.seq, self.hash = start.body.seq, start.body.state_hash
            self.tail = Rebuilder(log.markets, margin=log.margin, core=start.core)

    def apply(self, entry: Journaled, rebuilder: Rebuilder) -> None:
        """Note the full rebuild's hash at the snapshot, or fold a tail record."""
        if self.seq is None or self.tail is None:
            return
        seq = entry.record.seq
        if seq == self.seq:
            self.rebuild_hash = rebuilder.state_hash()
        elif seq > self.seq:
            try:
                self.tail.apply(entry)
            except Divergence as exc:  # the hashes then differ: reported
                self.skipped.append(f"rebuild from the snapshot diverged: {exc}")
                self.tail = None

    def tail_hash(self) -> str | None:
        """Return the hash the rebuild from the snapshot reached (None: none)."""
        return None if self.tail is None else self.tail.state_hash()
