"""Durability tracking and group commit, shared by every journal backend.

:class:`DurableJournal` keeps ``last_seq``, ``durable_seq`` and the pending
batch, resolves ``wait_durable`` futures and ``on_durable`` listeners, and
runs group commit. A backend supplies four I/O hooks: ``_write`` (frame one
record), ``_flush`` (hand buffered bytes to the OS), ``_fsync`` (blocking
fsync) and ``_fsync_job`` (a callable that fsyncs what was flushed, safe to
run in a worker thread), plus ``_release`` (close files).

Threading: a journal belongs to one thread, the event loop's in the server.
Only the fsync itself leaves it, through ``asyncio.to_thread``: the loop
flushes the buffer (a cheap ``write``), a worker thread fsyncs a duplicate of
the file descriptor, and the loop keeps appending the next batch meanwhile.
A failed write or fsync poisons the journal: after an fsync error the page
cache can no longer be trusted, so every later call raises.

How the server should commit (measured; see the journal's report). Run
``run_group_commit`` as the task ``paperx.journal`` *and* call ``maybe_sync``
after each burst of appends. With slack on the loop, the task's timer commits
with the fsync in a worker thread, off the loop. On a saturated loop a worker
thread's result waits for the loop to come round (and for the GIL), so the
task alone let acks wait for hundreds of ms; ``maybe_sync`` then commits
inline as soon as a batch is full or ``batch_ms`` old, paying one ~0.2 ms
fsync per batch on the loop and keeping acks within a few ms.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from typing import TYPE_CHECKING, Self, get_args

from exchange.errors import JournalError, JournalSeqError
from exchange.journal.base import FsyncPolicy, JournalHeader, Recovery

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from types import TracebackType

__all__ = ["DurableJournal", "check_settings"]

_monotonic = time.monotonic


class DurableJournal:
    """The policy-driven bookkeeping of a journal, with the I/O left to subclasses."""

    def __init__(
        self,
        header: JournalHeader,
        fsync: FsyncPolicy,
        batch_records: int,
        batch_ms: float,
    ) -> None:
        """Start empty at ``header.first_seq - 1``, committing per ``fsync``.

        Raises:
            JournalError: If the policy, the batch limits or first_seq are invalid.
        """
        check_settings(header, fsync, batch_records, batch_ms)
        self._header = header
        self._policy: FsyncPolicy = fsync
        self._batched = fsync == "batch"
        self._batch_records = batch_records
        self._batch_s = batch_ms / 1000.0
        self._last_seq = header.first_seq - 1
        self._durable_seq = self._last_seq
        self._pending = 0
        self._pending_since = 0.0
        self._usable = True
        self._closed = False
        self._failure: JournalError | None = None
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._tiebreak = itertools.count()
        self._listeners: list[Callable[[int], None]] = []
        self._wake: asyncio.Event | None = None
        self._recovery = Recovery(
            segments=0, records=0, first_seq=header.first_seq, last_seq=self._last_seq
        )

    # ------------------------------------------------------------ I/O hooks

    def _write(self, seq: int, payload: bytes) -> None:
        """Store one record's frame (buffered); called only with a valid seq."""
        raise NotImplementedError

    def _flush(self) -> None:
        """Hand every buffered byte to the OS."""

    def _fsync(self) -> None:
        """Block until every flushed byte is on stable storage."""

    def _fsync_job(self) -> Callable[[], None]:
        """Return a callable that fsyncs what is flushed now, safe in a thread."""
        return _nothing

    def _release(self) -> None:
        """Close whatever the backend holds open."""

    # ------------------------------------------------------------ state

    @property
    def header(self) -> JournalHeader:
        """Return the header the journal was created with."""
        return self._header

    @property
    def recovery(self) -> Recovery:
        """Return what opening the journal found (and cut)."""
        return self._recovery

    @property
    def fsync(self) -> FsyncPolicy:
        """Return the durability policy."""
        return self._policy

    @property
    def last_seq(self) -> int:
        """Return the last appended seq, or ``header.first_seq - 1`` when empty."""
        return self._last_seq

    @property
    def durable_seq(self) -> int:
        """Return the highest seq durable under the policy."""
        return self._durable_seq

    # ------------------------------------------------------------ appending

    def append(self, seq: int, payload: bytes) -> None:
        """Append one record; durable per the policy (see ``exchange.journal.base``).

        Raises:
            JournalSeqError: If ``seq`` is not ``last_seq + 1``.
            JournalError: If the journal is closed or failed, or a write failed.
        """
        if seq != self._last_seq + 1 or not self._usable:
            raise self._refusal(seq)
        self._write(seq, payload)
        self._last_seq = seq
        if self._batched:
            self._pending += 1
            if self._pending in (1, self._batch_records):
                self._batch_grew()
        else:
            self._commit_one(seq)

    def _refusal(self, seq: int) -> JournalError:
        """Return the error for an append the journal cannot take."""
        if self._failure is not None:
            return self._failure
        if self._closed:
            return JournalError("journal is closed")
        return JournalSeqError(self._last_seq + 1, seq)

    def _batch_grew(self) -> None:
        """Note when a batch starts, and wake the committer on start or when full."""
        if self._pending == 1:
            self._pending_since = _monotonic()
        if self._wake is not None:
            self._wake.set()

    def _commit_one(self, seq: int) -> None:
        """Make the record just written durable under "always" or "off"."""
        try:
            self._flush()
            if self._policy == "always":
                self._fsync()
        except OSError as exc:
            raise self._fail(exc) from exc
        self._advance(seq)

    # ------------------------------------------------------------ committing

    def sync(self) -> None:
        """Make every appended record durable now (write, and fsync unless off).

        Raises:
            JournalError: If the journal failed before, or the write or fsync fails.
        """
        if self._failure is not None:
            raise self._failure
        if self._closed:
            return
        target = self._last_seq
        self._pending = 0
        try:
            self._flush()
            if self._policy != "off":
                self._fsync()
        except OSError as exc:
            raise self._fail(exc) from exc
        self._advance(target)

    def maybe_sync(self) -> None:
        """Commit if ``batch_records`` are pending or the oldest is ``batch_ms`` old.

        This is the group-commit hook for synchronous callers; it does nothing
        unless the policy is "batch" and something is pending. Its fsync
        blocks the caller; see ``run_group_commit`` for how the two combine.
        """
        pending = self._pending
        if pending and (
            pending >= self._batch_records
            or _monotonic() - self._pending_since >= self._batch_s
        ):
            self.sync()

    async def _commit_async(self) -> None:
        """Commit the pending batch, fsyncing in a worker thread."""
        target = self._last_seq
        self._pending = 0
        try:
            self._flush()
            if self._policy != "off":
                await asyncio.to_thread(self._fsync_job())
        except OSError as exc:
            raise self._fail(exc) from exc
        self._advance(target)

    async def run_group_commit(self) -> None:
        """Commit pending batches until the journal closes; run it as a named task.

        Under "batch", a commit happens ``batch_ms`` after the first record of
        a batch, or as soon as the batch holds ``batch_records``; the fsync
        runs in a worker thread, so the loop keeps appending meanwhile. Pair
        it with ``maybe_sync`` calls (see the module docstring). Under
        "always" and "off" there is nothing to do and it returns at once.

        Raises:
            JournalError: If a write or fsync fails (the journal is then poisoned).
        """
        if not self._batched:
            return
        wake = self._wake = asyncio.Event()
        try:
            while not self._closed and self._failure is None:
                wake.clear()
                if not self._pending:
                    await wake.wait()
                    continue
                delay = self._pending_since + self._batch_s - _monotonic()
                if self._pending < self._batch_records and delay > 0:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(delay):
                            await wake.wait()
                    continue
                await self._commit_async()
        finally:
            self._wake = None

    def _advance(self, seq: int) -> None:
        """Move ``durable_seq`` up to ``seq``, resolving waiters and listeners."""
        if seq <= self._durable_seq:
            return
        self._durable_seq = seq
        waiters = self._waiters
        while waiters and waiters[0][0] <= seq:
            future = heapq.heappop(waiters)[2]
            if not future.done():
                future.set_result(None)
        for listener in self._listeners:
            listener(seq)

    def _fail(self, exc: OSError) -> JournalError:
        """Poison the journal after an I/O error and return the error to raise."""
        if self._failure is None:
            self._failure = JournalError(f"journal write or fsync failed: {exc}")
            self._usable = False
            self._fail_waiters(self._failure)
        return self._failure

    def _fail_waiters(self, error: JournalError) -> None:
        """Raise ``error`` in every pending ``wait_durable``."""
        waiters, self._waiters = self._waiters, []
        for _, _, future in waiters:
            if not future.done():
                future.set_exception(error)

    # ------------------------------------------------------------ waiting

    async def wait_durable(self, seq: int) -> None:
        """Return once ``seq`` is durable (at once under "always" and "off").

        Under "batch" someone must commit: the ``run_group_commit`` task, or a
        caller of ``sync``/``maybe_sync``.

        Raises:
            JournalError: If the journal fails or closes before ``seq`` is durable.
        """
        if seq <= self._durable_seq:
            return
        if self._failure is not None:
            raise self._failure
        if self._closed:
            msg = f"journal closed before seq {seq} became durable"
            raise JournalError(msg)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (seq, next(self._tiebreak), future))
        await future

    def on_durable(self, callback: Callable[[int], None]) -> None:
        """Call ``callback(durable_seq)`` on this thread whenever it advances.

        The callback runs inside whichever call advanced it (append, sync, or
        the commit task) and must not raise.
        """
        self._listeners.append(callback)

    # ------------------------------------------------------------ reading

    def read(self, from_seq: int = 1) -> Iterator[tuple[int, bytes]]:
        """Yield every stored ``(seq, payload)`` with ``seq >= from_seq``, in order."""
        raise NotImplementedError

    # ------------------------------------------------------------ closing

    def close(self) -> None:
        """Sync and close; later appends raise. Closing twice is harmless.

        Raises:
            JournalError: If the final sync fails (the files are closed anyway).
        """
        if self._closed:
            return
        try:
            if self._failure is None:
                self.sync()
        finally:
            self._finish()

    async def aclose(self) -> None:
        """Sync with the fsync off the event loop, then close.

        Raises:
            JournalError: If the final sync fails (the files are closed anyway).
        """
        if self._closed:
            return
        try:
            if self._failure is None:
                await self._commit_async()
        finally:
            self._finish()

    def _finish(self) -> None:
        """Release the backend, stop the commit task and fail leftover waiters."""
        self._closed = True
        self._usable = False
        self._pending = 0
        self._release()
        if self._wake is not None:
            self._wake.set()
        self._fail_waiters(JournalError("journal closed before the seq was appended"))

    def __enter__(self) -> Self:
        """Return the journal itself."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Sync and close."""
        self.close()

    async def __aenter__(self) -> Self:
        """Return the journal itself."""
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Sync (off the event loop) and close."""
        await self.aclose()


def check_settings(
    header: JournalHeader | None, fsync: str, batch_records: int, batch_ms: float
) -> None:
    """Raise unless the policy, the batch limits and ``header.first_seq`` are valid.

    Raises:
        JournalError: Naming the invalid setting.
    """
    if fsync not in get_args(FsyncPolicy):
        msg = f"fsync policy must be one of {get_args(FsyncPolicy)}, not {fsync!r}"
        raise JournalError(msg)
    if batch_records < 1 or batch_ms <= 0:
        msg = f"need batch_records >= 1, batch_ms > 0: {batch_records}, {batch_ms}"
        raise JournalError(msg)
    if header is not None and header.first_seq < 1:
        msg = f"first_seq must be positive, got {header.first_seq}"
        raise JournalError(msg)


def _nothing() -> None:
    """Do nothing: the fsync job of a backend with nothing to fsync."""
