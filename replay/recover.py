"""Crash recovery: the newest valid snapshot plus a rebuild of the journal's tail.

`recover` is what a server calls on start, for a journal directory or a
JetStream journal (``nats://host:port/STREAM``) alike:

1. The journal is opened as the writer opens it: a torn tail is cut (and
   reported), damage with intact records after it raises
   `~exchange.errors.JournalCorrupt` (run ``paperx replay repair``), so no
   snapshot can hide damage in the journal's last segment. With
   ``verify=True`` every older segment's frames are checked too. A stream
   that lost records (purged or deleted) is refused the same way.
2. Snapshots (`exchange.journal.snapshots.snapshot_store`: files beside the
   segments, or the stream's object store bucket) are tried newest first
   (`newest_snapshot`). One past the journal's end (the records it includes
   were lost) is moved aside as ``*.stale``, never deleted and never used;
   a corrupt one (truncated, CRC, undecodable, another config or stream, a
   restored hash that differs from its own) is skipped. Each skip is
   reported with its reason; with none usable, recovery replays everything.
3. The records after the snapshot are folded in by a `Rebuilder` that starts
   from the restored core (no matching runs), and the result is resumed:
   its derived indexes are re-derived and the liquidations still pending
   (asked for, not yet journaled) are queued again in its outbox, for the
   server to journal as its next records.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from exchange.errors import JournalCorrupt, JournalError
from exchange.journal import FileJournal, Journal, Recovery, is_nats_url
from exchange.journal.snapshots import (
    SnapshotCorrupt,
    SnapshotFile,
    SnapshotStore,
    decode_snapshot,
    restore_snapshot,
    snapshot_store,
)
from exchange.messages import Liquidate
from replay.log import ExchangeLog
from replay.rebuild import Rebuilder

if TYPE_CHECKING:
    import os
    from collections.abc import Callable, Iterable

    from exchange.core import ExchangeCore
    from exchange.markets import Market

__all__ = [
    "RecoveryReport",
    "SkippedSnapshot",
    "StartingPoint",
    "newest_snapshot",
    "recover",
    "requeue_liquidations",
]


class SkippedSnapshot(msgspec.Struct, frozen=True):
    """A snapshot recovery did not use, and why."""

    path: str
    reason: str


class RecoveryReport(msgspec.Struct, frozen=True, kw_only=True):
    """What `recover` did: from which snapshot, how much it replayed, how long."""

    snapshot_seq: int | None
    """The seq of the snapshot used, or None for a full replay."""
    snapshot_path: str | None
    skipped: list[SkippedSnapshot]
    """Snapshots tried and not used (newest first), with their reasons."""
    records_replayed: int
    last_seq: int
    state_hash: str
    seconds: float
    """Wall time of the whole recovery, journal check included."""
    journal: Recovery
    """What opening the journal found (and cut)."""
    pending_liquidations: int
    """Liquidations queued again in the core's outbox for the server to journal."""

    @property
    def why_no_snapshot(self) -> str | None:
        """Return why recovery replayed everything, or None if a snapshot was used."""
        if self.snapshot_seq is not None:
            return None
        if not self.skipped:
            return "no snapshot of the journal"
        return "no valid snapshot: " + "; ".join(s.reason for s in self.skipped)

    def summary(self) -> str:
        """Return a one-line human description."""
        start = (
            f"snapshot at seq {self.snapshot_seq}"
            if self.snapshot_seq is not None
            else f"a full replay ({self.why_no_snapshot})"
        )
        return (
            f"recovered seq {self.last_seq} from {start} + {self.records_replayed:,} "
            f"records in {self.seconds:.3f} s"
        )


class StartingPoint(msgspec.Struct, frozen=True, kw_only=True):
    """The snapshot a replay starts from (`newest_snapshot`), if any, and the skips."""

    core: ExchangeCore | None
    """The restored core, or None: start from an empty one."""
    body: SnapshotFile | None
    name: str | None
    """The snapshot's name in its store (a path, or a URL for JetStream)."""
    skipped: list[SkippedSnapshot]
    """Newer snapshots not used (newest first), with their reasons."""


def newest_snapshot(
    store: SnapshotStore,
    log: ExchangeLog,
    *,
    last_seq: int | None = None,
    fits: Callable[[SnapshotFile], bool] | None = None,
) -> StartingPoint:
    """Return the newest snapshot of ``store`` that is valid for ``log``.

    Args:
        store: The journal's snapshot store.
        log: The journal, for its markets, margin setting and config hash.
        last_seq: The journal's last seq; a snapshot past it is set aside as
            stale (recovery only: other callers leave the store alone).
        fits: Snapshots for which it is False (say, past a seq of interest)
            are passed over silently, before being restored.
    """
    skipped: list[SkippedSnapshot] = []
    for seq, name in store.snapshots():
        if last_seq is not None and seq > last_seq:
            stale = store.set_aside(name)
            reason = f"newer than the journal's last seq {last_seq}; moved to {stale}"
            skipped.append(SkippedSnapshot(name, reason))
            continue
        try:
            body = decode_snapshot(name, store.read(name))
            if fits is not None and not fits(body):
                continue
            core, _ = restore_snapshot(
                name,
                body,
                log.markets,
                margin=log.margin,
                config_hash=log.header.config_hash,
            )
        except SnapshotCorrupt as exc:
            skipped.append(SkippedSnapshot(name, exc.reason))
            continue
        return StartingPoint(core=core, body=body, name=name, skipped=skipped)
    return StartingPoint(core=None, body=None, name=None, skipped=skipped)


def recover(
    journal_dir: str | os.PathLike[str],
    markets: Iterable[Market] | None = None,
    margin: bool | None = None,
    *,
    verify: bool = False,
) -> tuple[ExchangeCore, RecoveryReport]:
    """Rebuild the exchange a journal describes, fast.

    Args:
        journal_dir: The journal: a directory (segments and snapshots) or a
            ``nats://`` URL (a stream and its snapshot bucket).
        markets: The markets the journal was written with; None reads them
            from its header.
        margin: Its margin setting; None reads it from its header.
        verify: Also check the frames of every segment before the last
            (slow on a long journal; the last is always checked).

    Returns:
        The core after the journal's last record, ready for the next, and
        the report.

    Raises:
        JournalCorrupt: If the journal is damaged other than at its tail.
        JournalError: If there is no journal there, or it cannot be read.
        Divergence: If the journal's events do not fold onto the state.
    """
    started = time.perf_counter()
    with _open_existing(journal_dir, verify=verify) as journal:
        opened = journal.recovery
        last_seq = journal.last_seq
    log = ExchangeLog(journal_dir)
    if markets is not None:
        log.markets = list(markets)
    if margin is not None:
        log.margin = margin
    store = snapshot_store(journal_dir)
    try:
        start = newest_snapshot(store, log, last_seq=last_seq)
    finally:
        store.close()
    rebuilder = Rebuilder(log.markets, margin=log.margin, core=start.core)
    first = rebuilder.core.last_seq
    for entry in log.entries(first + 1):
        rebuilder.apply(entry)
    _check_complete(log, rebuilder.core.last_seq, last_seq)
    recovered = rebuilder.resume()
    pending = requeue_liquidations(recovered)
    return recovered, RecoveryReport(
        snapshot_seq=None if start.name is None else first,
        snapshot_path=start.name,
        skipped=start.skipped,
        records_replayed=recovered.last_seq - first,
        last_seq=recovered.last_seq,
        state_hash=recovered.state_hash(),
        seconds=time.perf_counter() - started,
        journal=opened,
        pending_liquidations=pending,
    )


def _open_existing(source: str | os.PathLike[str], *, verify: bool) -> Journal:
    """Open the journal at ``source`` as its writer would, without a header.

    Raises:
        JournalError: If there is none there.
        JournalCorrupt: If it is damaged other than at a torn tail.
    """
    if is_nats_url(source):
        from exchange.journal.nats import NatsJournal  # noqa: PLC0415 -- optional

        return NatsJournal.open(str(source))
    return FileJournal.open(Path(source), verify=verify)


def _check_complete(log: ExchangeLog, reached: int, last_seq: int) -> None:
    """Raise unless reading reached the journal's last seq without damage."""
    damage = log.damage()
    if damage is not None:
        stop = log.reader.stop
        assert stop is not None  # damage() said where
        raise JournalCorrupt(stop.path, stop.offset, f"{stop.reason}: {stop.detail}")
    if reached != last_seq:
        msg = f"recovery reached seq {reached}, but the journal ends at {last_seq}"
        raise JournalError(msg)


def requeue_liquidations(core: ExchangeCore) -> int:
    """Queue every pending liquidation in the outbox again; return how many.

    A liquidation asked for by a journaled record but not yet journaled
    itself (the crash came between the two) is in the pending set only.
    """
    liquidator = core.liquidator
    if liquidator is None:
        return 0
    liquidator.outbox = [Liquidate(account=a, symbol=s) for a, s in liquidator.pending]
    return len(liquidator.outbox)
