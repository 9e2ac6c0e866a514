"""Durability tracking and group commit, shared by every journal backend.

:class:`DurableJournal` keeps ``last_seq``, ``durable_seq`` and the pending
batch, resolves ``wait_durable`` futures and ``on_durable`` listeners, and
runs group commit. A backend supplies four I/O hooks: ``_write`` (frame one
record), ``_flush`` (hand buffered bytes to the OS), ``_fsync`` (blocking
fsync) and ``_fsync_job`` (a callable that fsyncs what was flushed, safe to
run in a worker thread, or None with nothing to fsync), plus ``_release``
(close files).

Threading: a journal belongs to one thread, the event loop's in the server.
Only the fsync of a batch commit leaves it, for the journal's own fsync
thread: the owner flushes the buffer (a cheap ``write``), the fsync thread
fsyncs a duplicate of the file descriptor, and the owner keeps appending the
next batch meanwhile (one commit is in flight at a time; records appended
meanwhile wait for the next, so batches grow when fsync is slow). The owner
collects a finished commit, advancing ``durable_seq``, at its next
``maybe_sync`` or ``sync``, or in the commit task, which awaits it. A failed
write or fsync poisons the journal: after an fsync error the page cache can
no longer be trusted, so every later call raises.

How the server should commit. Run ``run_group_commit`` as the task
``paperx.journal`` *and* call ``maybe_sync`` after each burst of appends. With
slack on the loop, the task's timer starts the commits; on a saturated loop,
``maybe_sync`` starts one as soon as a batch is full or ``batch_ms`` old and
collects the last. Either way the fsync never blocks the loop (an inline
fsync cost ~3 ms per batch on this kind of machine, a third of the journaled
throughput).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Self, get_args

from exchange.errors import JournalError, JournalMismatch, JournalSeqError
from exchange.journal.base import FsyncPolicy, JournalHeader, Recovery

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from types import TracebackType

__all__ = ["DurableJournal", "check_header", "check_settings"]

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
        # when the last commit started: under "batch", commits start at most
        # once per batch_ms, and at once when the last is that long ago
        self._last_commit = _monotonic()
        self._usable = True
        self._closed = False
        self._failure: JournalError | None = None
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._tiebreak = itertools.count()
        self._listeners: list[Callable[[int], None]] = []
        self._wake: asyncio.Event | None = None
        # The batch commit whose fsync is in flight, and the seq it makes durable.
        self._inflight: Future[None] | None = None
        self._inflight_seq = 0
        # Set by the fsync thread when the commit in flight ends: a plain flag
        # is far cheaper to poll on every maybe_sync than Future.done().
        self._inflight_ended = False
        self._fsync_thread: ThreadPoolExecutor | None = None
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

    def _fsync_job(self) -> Callable[[], None] | None:
        """Return a callable that fsyncs what is flushed now, safe in a thread.

        None: the backend keeps nothing on disk, so a flush is the commit.
        """
        return None

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
        """Wake the committer: a batch started, or grew (it may be full)."""
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
        self._collect()  # a finished commit's fsync error surfaces here
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
        """Commit if ``batch_records`` wait or the last commit began ``batch_ms`` ago.

        This is the group-commit hook for synchronous callers; it does nothing
        unless the policy is "batch". It first collects a commit whose fsync
        has finished (advancing ``durable_seq``), then starts the due batch's
        fsync in the journal's fsync thread, unless one is still in flight,
        and returns without waiting: call it again (or ``sync``) to collect.

        Raises:
            JournalError: If a write or the last commit's fsync failed.
        """
        self._collect()
        pending = self._pending
        if (
            pending
            and self._inflight is None
            and (
                pending >= self._batch_records
                or _monotonic() - self._last_commit >= self._batch_s
            )
        ):
            self._start_commit()

    def _start_commit(self) -> None:
        """Flush the pending batch and start its fsync off this thread."""
        target = self._last_seq
        self._pending = 0
        self._last_commit = _monotonic()
        try:
            self._flush()
        except OSError as exc:
            raise self._fail(exc) from exc
        job = self._fsync_job() if self._policy != "off" else None
        if job is None:
            self._advance(target)
            return
        if self._fsync_thread is None:
            self._fsync_thread = ThreadPoolExecutor(1, "paperx-fsync")
        self._inflight_ended = False
        self._inflight = self._fsync_thread.submit(job)
        self._inflight_seq = target
        self._inflight.add_done_callback(self._commit_ended)
        if self._wake is not None:
            self._wake.set()  # the commit task awaits it

    def _commit_ended(self, _: Future[None]) -> None:
        """Note (in the fsync thread) that the commit in flight has ended."""
        self._inflight_ended = True

    def _collect(self, *, wait: bool = False) -> None:
        """Advance ``durable_seq`` past the commit in flight once its fsync ended.

        ``wait``: block until it ends (the commit task awaits it instead).
        """
        inflight = self._inflight
        if inflight is None or not (wait or self._inflight_ended):
            return
        self._inflight = None
        try:
            inflight.result()
        except OSError as exc:
            raise self._fail(exc) from exc
        self._advance(self._inflight_seq)

    async def _commit_async(self) -> None:
        """Commit everything appended before the call, awaiting fsyncs off the loop.

        A commit in flight (``maybe_sync`` may have started it, or collected
        it and started the next meanwhile) is awaited, never doubled.
        """
        target = self._last_seq
        while self._durable_seq < target and self._failure is None:
            if self._inflight is None:
                self._start_commit()
            else:
                await asyncio.wait((asyncio.wrap_future(self._inflight),))
                self._collect()

    async def run_group_commit(self) -> None:
        """Commit pending batches until the journal closes; run it as a named task.

        Under "batch", a batch is committed as soon as ``batch_ms`` passed
        since the last commit started (at once after a quiet spell: a lone
        record waits only for its fsync), or as soon as it holds
        ``batch_records``: under load, commits start at most once per
        ``batch_ms`` and each takes all that waits. The fsync
        runs in the fsync thread, so the loop keeps appending meanwhile, and
        the task awaits it (a commit ``maybe_sync`` started too). Pair it
        with ``maybe_sync`` calls (see the module docstring). Under "always"
        and "off" there is nothing to do and it returns at once.

        Raises:
            JournalError: If a write or fsync fails (the journal is then poisoned).
        """
        if not self._batched:
            return
        wake = self._wake = asyncio.Event()
        try:
            while not self._closed and self._failure is None:
                wake.clear()
                if self._inflight is not None:
                    await self._commit_async()
                    continue
                if not self._pending:
                    await wake.wait()
                    continue
                delay = self._last_commit + self._batch_s - _monotonic()
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
                self._collect(wait=True)
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
        if self._fsync_thread is not None:
            # a commit still in flight here failed already or will not be used
            self._fsync_thread.shutdown(wait=True)
            self._fsync_thread = None
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


def check_header(location: str, stored: JournalHeader, given: JournalHeader) -> None:
    """Raise unless ``given`` has the stored schema version and config hash.

    ``location`` names the journal (a directory, a stream URL) in the error.

    Raises:
        JournalMismatch: Naming the first field that differs.
    """
    for field in ("schema_version", "config_hash"):
        if getattr(stored, field) != getattr(given, field):
            raise JournalMismatch(
                location, field, getattr(stored, field), getattr(given, field)
            )
