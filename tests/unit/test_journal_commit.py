"""Tests of group commit on the file journal: batching, fsync off the loop, failures."""

from __future__ import annotations

import asyncio
import errno
import threading
import time
from typing import TYPE_CHECKING

import pytest

from exchange.errors import JournalError
from exchange.journal import FileJournal, JournalHeader, durability
from exchange.journal import file as file_module
from exchange.journal.segment import list_segments

if TYPE_CHECKING:
    from pathlib import Path

HEADER = JournalHeader(schema_version=1, config_hash="h1", config={})
TIMEOUT = 5.0


class FsyncSpy:
    """Stands in for fdatasync: counts calls per thread and can hold worker threads."""

    def __init__(self, real: object) -> None:
        """Wrap the real fdatasync; worker threads pass freely until ``hold``."""
        self.real = real
        self.main = threading.get_ident()
        self.on_main = 0
        self.in_workers = 0
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.error: OSError | None = None

    def reset(self) -> None:
        """Forget the calls so far (opening a journal fsyncs its last segment)."""
        self.on_main = self.in_workers = 0

    def hold(self) -> None:
        """Make the next worker-thread fsyncs wait until ``release``."""
        self.gate.clear()

    def release(self) -> None:
        """Let held worker-thread fsyncs finish."""
        self.gate.set()

    def __call__(self, fd: int) -> None:
        """Record the call, wait at the gate in a worker, then fsync or fail."""
        if threading.get_ident() == self.main:
            self.on_main += 1
        else:
            self.in_workers += 1
            self.entered.set()
            self.gate.wait(TIMEOUT)
        if self.error is not None:
            raise self.error
        self.real(fd)  # type: ignore[operator]


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> FsyncSpy:
    """Replace the journal's fdatasync with a spy."""
    fake = FsyncSpy(file_module._fdatasync)
    monkeypatch.setattr(file_module, "_fdatasync", fake)
    return fake


def append_range(journal: FileJournal, first: int, last: int) -> None:
    """Append records ``first .. last`` with small payloads."""
    for seq in range(first, last + 1):
        journal.append(seq, b"%08d" % seq)


class TestFsyncCounts:
    """Each policy fsyncs exactly when it says it does."""

    def test_always_fsyncs_every_append(self, tmp_path: Path, spy: FsyncSpy) -> None:
        """Under "always", each append is one fsync before it returns."""
        with FileJournal.open(tmp_path, HEADER, fsync="always") as journal:
            spy.reset()
            append_range(journal, 1, 7)
            assert spy.on_main == 7

    def test_off_never_fsyncs(self, tmp_path: Path, spy: FsyncSpy) -> None:
        """Under "off", nothing is ever fsynced, not even on close."""
        with FileJournal.open(
            tmp_path, HEADER, fsync="off", segment_bytes=100
        ) as journal:
            append_range(journal, 1, 20)
        assert spy.on_main == spy.in_workers == 0

    def test_batch_fsyncs_once_per_commit(self, tmp_path: Path, spy: FsyncSpy) -> None:
        """Under "batch", appends do not fsync; a sync does, once."""
        with FileJournal.open(tmp_path, HEADER, fsync="batch") as journal:
            spy.reset()
            append_range(journal, 1, 50)
            assert spy.on_main == 0
            journal.sync()
            assert spy.on_main == 1
        assert spy.on_main == 2

    def test_reopen_makes_what_it_found_durable(
        self, tmp_path: Path, spy: FsyncSpy
    ) -> None:
        """Opening an existing journal fsyncs its last segment before trusting it."""
        with FileJournal.open(tmp_path, HEADER, fsync="off") as journal:
            append_range(journal, 1, 3)
        assert spy.on_main == 0
        with FileJournal.open(tmp_path, HEADER, fsync="batch") as journal:
            assert spy.on_main == 1
            assert journal.durable_seq == 3


class TestGroupCommit:
    """The run_group_commit task batches commits and keeps fsync off the loop."""

    async def test_durable_seq_lags_until_the_batch_is_full(
        self, tmp_path: Path, spy: FsyncSpy
    ) -> None:
        """With a long batch_ms, the commit waits for batch_records records."""
        journal = FileJournal.open(tmp_path, HEADER, batch_records=5, batch_ms=60_000)
        spy.reset()
        committer = asyncio.create_task(journal.run_group_commit())
        try:
            append_range(journal, 1, 4)
            waiter = asyncio.create_task(journal.wait_durable(4))
            for _ in range(5):
                await asyncio.sleep(0)
            assert not waiter.done()
            assert journal.durable_seq == 0
            append_range(journal, 5, 5)
            await asyncio.wait_for(waiter, TIMEOUT)
            assert journal.durable_seq == 5
            assert spy.in_workers == 1
        finally:
            await journal.aclose()
            await asyncio.wait_for(committer, TIMEOUT)

    async def test_a_lone_record_is_committed_after_batch_ms(
        self, tmp_path: Path
    ) -> None:
        """A record that never fills a batch is still committed by the timer."""
        journal = FileJournal.open(tmp_path, HEADER, batch_records=1000, batch_ms=1.0)
        committer = asyncio.create_task(journal.run_group_commit())
        try:
            append_range(journal, 1, 1)
            await asyncio.wait_for(journal.wait_durable(1), TIMEOUT)
            assert journal.durable_seq == 1
        finally:
            await journal.aclose()
            await asyncio.wait_for(committer, TIMEOUT)

    async def test_fsync_runs_off_the_loop_while_appends_continue(
        self, tmp_path: Path, spy: FsyncSpy
    ) -> None:
        """While a worker thread fsyncs, the loop appends; durability follows later."""
        journal = FileJournal.open(tmp_path, HEADER, batch_records=3, batch_ms=60_000)
        spy.reset()
        committer = asyncio.create_task(journal.run_group_commit())
        try:
            spy.hold()
            append_range(journal, 1, 3)
            await asyncio.wait_for(
                asyncio.to_thread(spy.entered.wait, TIMEOUT), TIMEOUT
            )
            append_range(journal, 4, 6)
            assert journal.durable_seq == 0
            spy.release()
            await asyncio.wait_for(journal.wait_durable(6), TIMEOUT)
            assert spy.on_main == 0
            assert spy.in_workers >= 2
        finally:
            spy.release()
            await journal.aclose()
            await asyncio.wait_for(committer, TIMEOUT)

    async def test_rotation_during_a_commit_loses_nothing(
        self, tmp_path: Path, spy: FsyncSpy
    ) -> None:
        """A segment rotating while its fsync is in flight keeps every record."""
        journal = FileJournal.open(
            tmp_path, HEADER, segment_bytes=150, batch_records=2, batch_ms=60_000
        )
        committer = asyncio.create_task(journal.run_group_commit())
        try:
            spy.hold()
            append_range(journal, 1, 2)
            await asyncio.wait_for(
                asyncio.to_thread(spy.entered.wait, TIMEOUT), TIMEOUT
            )
            append_range(journal, 3, 30)
            assert len(list_segments(tmp_path)) > 2
            spy.release()
            await asyncio.wait_for(journal.wait_durable(30), TIMEOUT)
            assert [seq for seq, _ in journal.read()] == list(range(1, 31))
        finally:
            spy.release()
            await journal.aclose()
            await asyncio.wait_for(committer, TIMEOUT)

    async def test_maybe_sync_starts_a_commit_off_the_loop_the_task_collects(
        self, tmp_path: Path, spy: FsyncSpy
    ) -> None:
        """With the task running, maybe_sync starts a full batch's fsync and returns.

        The fsync runs in the journal's thread while the loop goes on; the task
        awaits it and advances durable_seq. Nothing fsyncs on the loop.
        """
        journal = FileJournal.open(tmp_path, HEADER, batch_records=2, batch_ms=60_000)
        spy.reset()
        committer = asyncio.create_task(journal.run_group_commit())
        try:
            await asyncio.sleep(0)
            spy.hold()
            append_range(journal, 1, 4)
            journal.maybe_sync()
            assert journal.durable_seq == 0
            await asyncio.wait_for(
                asyncio.to_thread(spy.entered.wait, TIMEOUT), TIMEOUT
            )
            spy.release()
            await asyncio.wait_for(journal.wait_durable(4), TIMEOUT)
            assert (spy.on_main, spy.in_workers) == (0, 1)
            append_range(journal, 5, 6)
            await asyncio.wait_for(journal.wait_durable(6), TIMEOUT)
        finally:
            spy.release()
            await journal.aclose()
            await asyncio.wait_for(committer, TIMEOUT)

    async def test_group_commit_returns_at_once_unless_batching(
        self, tmp_path: Path
    ) -> None:
        """Under "always" and "off" the commit task has nothing to do and ends."""
        for policy in ("always", "off"):
            journal = FileJournal.open(tmp_path / policy, HEADER, fsync=policy)
            await asyncio.wait_for(journal.run_group_commit(), TIMEOUT)
            journal.close()


class TestSynchronousCallers:
    """Without an event loop, maybe_sync pipelines commits: one fsync in flight."""

    def test_a_record_after_a_quiet_spell_commits_at_once_then_one_per_batch_ms(
        self, tmp_path: Path, spy: FsyncSpy, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Idle: a lone record waits only for its fsync. Busy: a commit per batch_ms."""
        now = [100.0]
        monkeypatch.setattr(durability, "_monotonic", lambda: now[0])
        journal = FileJournal.open(tmp_path, HEADER, batch_records=1000, batch_ms=5.0)
        spy.reset()
        append_range(journal, 1, 1)
        journal.maybe_sync()  # opened 0 ms ago: within batch_ms, it waits
        assert spy.in_workers == 0
        now[0] += 0.010  # quiet for 10 ms, more than batch_ms
        journal.maybe_sync()
        _collect_until(journal, 1)
        now[0] += 0.001  # 1 ms after that commit began
        append_range(journal, 2, 3)
        journal.maybe_sync()
        assert (journal.durable_seq, spy.in_workers) == (1, 1)  # not yet
        now[0] += 0.004  # batch_ms after the last commit began
        journal.maybe_sync()
        _collect_until(journal, 3)
        assert spy.in_workers == 2  # 2..3 as one commit
        journal.close()

    def test_one_commit_in_flight_the_next_batch_waits_and_grows(
        self, tmp_path: Path, spy: FsyncSpy
    ) -> None:
        """While a batch's fsync runs, later batches wait and become one commit."""
        journal = FileJournal.open(tmp_path, HEADER, batch_records=3, batch_ms=60_000)
        spy.reset()
        spy.hold()
        append_range(journal, 1, 3)
        journal.maybe_sync()
        assert spy.entered.wait(TIMEOUT)
        append_range(journal, 4, 9)  # two full batches while the first is in flight
        journal.maybe_sync()
        assert (journal.durable_seq, spy.in_workers) == (0, 1)
        spy.release()
        _collect_until(journal, 3)
        journal.maybe_sync()  # starts 4..9 as one commit
        _collect_until(journal, 9)
        assert (spy.on_main, spy.in_workers) == (0, 2)
        journal.close()
        assert spy.on_main == 1  # close syncs what is left (nothing) inline

    def test_a_failed_fsync_in_the_thread_poisons_the_journal(
        self, tmp_path: Path, spy: FsyncSpy
    ) -> None:
        """The next maybe_sync raises the fsync's error; later appends refuse."""
        journal = FileJournal.open(tmp_path, HEADER, batch_records=2, batch_ms=60_000)
        spy.error = OSError(errno.EIO, "injected")
        append_range(journal, 1, 2)
        journal.maybe_sync()
        with pytest.raises(JournalError, match="injected"):
            _collect_until(journal, 2)
        assert journal.durable_seq == 0
        with pytest.raises(JournalError):
            journal.append(3, b"x")
        journal.close()


def _collect_until(journal: FileJournal, seq: int) -> None:
    """Call maybe_sync until ``seq`` is durable, failing after TIMEOUT."""
    deadline = time.monotonic() + TIMEOUT
    while journal.durable_seq < seq:
        assert time.monotonic() < deadline, f"seq {seq} never became durable"
        journal.maybe_sync()
        time.sleep(0.001)


class TestFailures:
    """A failed fsync poisons the journal: nothing after it is trusted."""

    async def test_failed_fsync_fails_waiters_and_later_appends(
        self, tmp_path: Path, spy: FsyncSpy
    ) -> None:
        """An fsync error ends the commit task and fails every waiter and append."""
        journal = FileJournal.open(tmp_path, HEADER, batch_records=2, batch_ms=60_000)
        spy.error = OSError(errno.EIO, "I/O error")
        committer = asyncio.create_task(journal.run_group_commit())
        waiter = asyncio.create_task(journal.wait_durable(2))
        append_range(journal, 1, 2)
        with pytest.raises(JournalError, match="fsync failed"):
            await asyncio.wait_for(committer, TIMEOUT)
        with pytest.raises(JournalError, match="fsync failed"):
            await asyncio.wait_for(waiter, TIMEOUT)
        with pytest.raises(JournalError, match="fsync failed"):
            journal.append(3, b"x")
        with pytest.raises(JournalError, match="fsync failed"):
            journal.sync()
        assert journal.durable_seq == 0
        journal.close()

    def test_failed_sync_raises_journal_error(
        self, tmp_path: Path, spy: FsyncSpy
    ) -> None:
        """A synchronous sync whose fsync fails raises JournalError."""
        journal = FileJournal.open(tmp_path, HEADER)
        append_range(journal, 1, 1)
        spy.error = OSError(errno.ENOSPC, "no space")
        with pytest.raises(JournalError, match="no space"):
            journal.sync()
        journal.close()
