"""Snapshots of a running server's state: every N records, and on a clean stop.

The state is taken on the sequencer's task, between records (the
sequencer's ``between`` hook), so it is consistent: no record half applied,
no system command pending. It is written only once the journal has made
its seq durable (the journal's ``on_durable``), so a snapshot never
describes records a crash could still lose; the encoding and the I/O (for
a directory: temp file, fsync, rename, fsync of the directory; for a
JetStream journal: an object in its bucket) run in a thread of their own
while the core goes on. One snapshot is in hand at a time: when the
next is due while one still waits or is being written, it is taken at the
first record after that one is done.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

from exchange.errors import JournalError
from exchange.journal.snapshots import (
    SnapshotFile,
    save_snapshot,
    snapshot_store,
    take_snapshot,
)
from exchange.logs import get_logger

if TYPE_CHECKING:
    import os

    from exchange.core import ExchangeCore
    from exchange.journal import Journal

__all__ = ["Snapshotter"]

_log = get_logger(__name__)


class Snapshotter:
    """Takes snapshots of a core on its task and writes them once durable."""

    def __init__(
        self,
        core: ExchangeCore,
        journal: Journal,
        target: str | os.PathLike[str],
        *,
        every: int,
        keep: int,
    ) -> None:
        """Snapshot ``core`` every ``every`` records (0: never) for journal ``target``.

        ``target`` is the journal's directory or ``nats://`` URL (see
        `snapshot_store`); ``keep`` snapshots are kept. Files are fsynced
        unless the journal's policy is "off".

        Raises:
            JournalError: If a JetStream journal's bucket cannot be opened.
        """
        self.core = core
        self.journal = journal
        self.store = snapshot_store(target, durable=journal.fsync != "off", create=True)
        self.every = every
        self.keep = keep
        self.config_hash = journal.header.config_hash
        self.written_seq = 0
        """The seq of the newest snapshot this server wrote."""
        self._next = core.last_seq + every
        self._taken: SnapshotFile | None = None  # waiting for its seq to be durable
        self._writing: Future[None] | None = None
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="paperx-snapshot")
        journal.on_durable(self._on_durable)

    def between(self) -> None:
        """Take a snapshot if one is due (the sequencer calls it between records)."""
        if not self.every or self.core.last_seq < self._next or self._busy():
            return
        self._taken = take_snapshot(self.core, self.config_hash)
        self._next = self.core.last_seq + self.every
        self._on_durable(self.journal.durable_seq)

    async def finish(self) -> None:
        """Write a last snapshot of the stopped core; call it after the journal's sync.

        Waits for a write in flight first; a snapshot still waiting for
        durability is dropped for the final one. Nothing is written if the
        journal did not make the core's last record durable.
        """
        self._taken = None
        if self._writing is not None:
            await asyncio.wrap_future(self._writing)
        core = self.core
        if (
            core.last_seq > self.written_seq
            and self.journal.durable_seq >= core.last_seq
        ):
            self._writing = self._thread.submit(
                self._write, take_snapshot(core, self.config_hash)
            )
            await asyncio.wrap_future(self._writing)
        self._thread.shutdown(wait=True)
        self.store.close()

    def _busy(self) -> bool:
        """Return whether a snapshot waits or is being written."""
        return self._taken is not None or (
            self._writing is not None and not self._writing.done()
        )

    def _on_durable(self, durable_seq: int) -> None:
        """Start writing the snapshot in hand once its seq is durable."""
        taken = self._taken
        if taken is None or taken.seq > durable_seq:
            return
        self._taken = None
        self._writing = self._thread.submit(self._write, taken)

    def _write(self, body: SnapshotFile) -> None:
        """Write one snapshot (in the snapshot thread) and log it; never raise."""
        started = time.perf_counter()
        try:
            name, size = save_snapshot(self.store, body, keep=self.keep)
        except JournalError as exc:
            _log.error("snapshot_failed", seq=body.seq, error=str(exc))
            return
        self.written_seq = max(self.written_seq, body.seq)
        _log.info(
            "snapshot_written",
            seq=body.seq,
            path=name,
            bytes=size,
            seconds=round(time.perf_counter() - started, 4),
        )
