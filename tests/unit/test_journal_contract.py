"""The journal contract suite: the behaviours every backend must have, per policy."""

from __future__ import annotations

import asyncio
import inspect
import time
import uuid
from typing import TYPE_CHECKING, Any, ClassVar

import pytest
from services import NATS_URL, require_nats

from exchange.errors import JournalError, JournalSeqError
from exchange.journal import (
    FileJournal,
    Journal,
    JournalHeader,
    MemoryJournal,
    durability,
)
from exchange.journal.base import Recovery
from exchange.journal.nats import NatsJournal, delete_nats_journal

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from exchange.journal.base import FsyncPolicy

HEADER = JournalHeader(schema_version=1, config_hash="h1", config={"markets": []})
TIMEOUT = 5.0
# What the protocol declares (typing adds __init__ and __subclasshook__ itself).
PROTOCOL_MEMBERS = sorted(
    name
    for name, value in vars(Journal).items()
    if isinstance(value, property)
    or (inspect.isfunction(value) and name not in {"__init__", "__subclasshook__"})
)


def parameters(function: Callable[..., object]) -> list[tuple[str, object, object]]:
    """Return a function's parameters as (name, kind, default), annotations aside."""
    return [
        (p.name, p.kind, p.default)
        for p in inspect.signature(function).parameters.values()
    ]


def payload(seq: int) -> bytes:
    """Return a distinct, binary-looking payload for ``seq``."""
    return seq.to_bytes(4, "little") + b"\x00\xff" * (seq % 7)


def collected(journal: Journal, seq: int) -> int:
    """Call maybe_sync until ``seq`` is durable; return durable_seq, or fail.

    A commit's fsync runs in a thread, and the next call collects it.
    """
    deadline = time.monotonic() + TIMEOUT
    while journal.durable_seq < seq and time.monotonic() < deadline:
        journal.maybe_sync()
        time.sleep(0.001)
    return journal.durable_seq


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        """Start at zero seconds."""
        self.now = 0.0

    def __call__(self) -> float:
        """Return the current fake time in seconds."""
        return self.now


class JournalContract:
    """Behaviours every journal backend has; subclasses pick backend and policy."""

    policy: ClassVar[FsyncPolicy] = "always"

    @pytest.fixture(autouse=True)
    def _directory(self, tmp_path: Path) -> None:
        """Give each test its own journal directory."""
        self.directory = tmp_path / "journal"

    def open_journal(self, header: JournalHeader = HEADER, **kwargs: Any) -> Journal:
        """Return a new empty journal of the backend under test."""
        raise NotImplementedError

    def fill(self, journal: Journal, last: int) -> None:
        """Append records ``first_seq .. last`` to ``journal``."""
        for seq in range(journal.last_seq + 1, last + 1):
            journal.append(seq, payload(seq))

    @pytest.mark.parametrize("name", PROTOCOL_MEMBERS)
    def test_has_the_protocol_member_with_its_kind_and_parameters(
        self, name: str
    ) -> None:
        """Each Journal member is a property, method or coroutine as declared.

        Methods take the protocol's parameters, with the same defaults.
        """
        with self.open_journal() as journal:
            declared = inspect.getattr_static(Journal, name)
            actual = inspect.getattr_static(journal, name)
            if isinstance(declared, property):
                assert isinstance(actual, property)
                return
            assert inspect.iscoroutinefunction(actual) == (
                inspect.iscoroutinefunction(declared)
            )
            assert parameters(actual) == parameters(declared)

    def test_reports_the_header_and_policy_it_was_opened_with(self) -> None:
        """The header and policy are those it was opened with; it recovered clean."""
        header = JournalHeader(
            schema_version=3, config_hash="h2", config={"k": [1]}, first_seq=5
        )
        with self.open_journal(header) as journal:
            assert journal.header == header
            assert journal.fsync == self.policy
            assert (journal.last_seq, journal.durable_seq) == (4, 4)
            assert isinstance(journal.recovery, Recovery)

    async def test_context_managers_yield_the_journal_itself(self) -> None:
        """``with`` and ``async with`` both bind the journal itself."""
        journal = self.open_journal()
        with journal as entered:
            assert entered is journal
        journal = self.open_journal()
        async with journal as entered_async:
            assert entered_async is journal

    def test_read_returns_every_record_in_order(self) -> None:
        """Appended records read back with their seqs and exact bytes."""
        with self.open_journal() as journal:
            self.fill(journal, 30)
            assert list(journal.read()) == [(s, payload(s)) for s in range(1, 31)]
            assert journal.last_seq == 30

    def test_read_from_seq_skips_earlier_records(self) -> None:
        """read(from_seq) starts at that seq."""
        with self.open_journal() as journal:
            self.fill(journal, 10)
            assert [seq for seq, _ in journal.read(7)] == [7, 8, 9, 10]
            assert list(journal.read(11)) == []

    def test_empty_journal_reads_nothing(self) -> None:
        """A new journal holds no records and its last seq is first_seq - 1."""
        with self.open_journal() as journal:
            assert list(journal.read()) == []
            assert journal.last_seq == 0
            assert journal.durable_seq == 0

    def test_empty_and_large_payloads_round_trip(self) -> None:
        """Payloads of zero bytes and of many kilobytes are stored exactly."""
        big = bytes(range(256)) * 300
        with self.open_journal() as journal:
            journal.append(1, b"")
            journal.append(2, big)
            assert list(journal.read()) == [(1, b""), (2, big)]

    def test_first_append_must_be_the_header_first_seq(self) -> None:
        """The first seq is header.first_seq; any other is refused."""
        header = JournalHeader(
            schema_version=1, config_hash="h1", config={}, first_seq=10
        )
        with self.open_journal(header) as journal:
            assert journal.last_seq == 9
            with pytest.raises(JournalSeqError) as info:
                journal.append(1, b"x")
            assert (info.value.expected, info.value.got) == (10, 1)
            journal.append(10, b"x")
            assert list(journal.read()) == [(10, b"x")]

    @pytest.mark.parametrize("bad", [1, 2, 4, 100, 0, -1])
    def test_seq_must_increase_by_exactly_one(self, bad: int) -> None:
        """A repeated, skipped or backward seq raises and changes nothing."""
        with self.open_journal() as journal:
            self.fill(journal, 2)
            with pytest.raises(JournalSeqError, match="expected seq 3"):
                journal.append(bad, b"x")
            assert journal.last_seq == 2
            journal.append(3, b"y")
            assert [seq for seq, _ in journal.read()] == [1, 2, 3]

    def test_durable_seq_follows_the_policy(self) -> None:
        """durable_seq keeps up under always/off and lags until sync under batch."""
        with self.open_journal() as journal:
            self.fill(journal, 5)
            expected = 0 if self.policy == "batch" else 5
            assert journal.durable_seq == expected
            journal.sync()
            assert journal.durable_seq == 5

    def test_maybe_sync_commits_a_full_batch(self) -> None:
        """maybe_sync commits once batch_records are pending, and not before."""
        with self.open_journal(batch_records=3, batch_ms=60_000) as journal:
            self.fill(journal, 2)
            journal.maybe_sync()
            assert journal.durable_seq == (0 if self.policy == "batch" else 2)
            self.fill(journal, 3)
            journal.maybe_sync()
            assert collected(journal, 3) == 3

    def test_maybe_sync_commits_an_old_batch(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """maybe_sync commits once the oldest pending record is batch_ms old."""
        clock = FakeClock()
        monkeypatch.setattr(durability, "_monotonic", clock)
        with self.open_journal(batch_records=1000, batch_ms=5.0) as journal:
            self.fill(journal, 2)
            clock.now = 0.004
            journal.maybe_sync()
            assert journal.durable_seq == (0 if self.policy == "batch" else 2)
            clock.now = 0.005
            journal.maybe_sync()
            assert collected(journal, 2) == 2

    def test_on_durable_reports_each_advance(self) -> None:
        """on_durable listeners see durable_seq each time it moves."""
        seen: list[int] = []
        with self.open_journal() as journal:
            journal.on_durable(seen.append)
            self.fill(journal, 3)
            journal.sync()
        assert seen == ([3] if self.policy == "batch" else [1, 2, 3])

    async def test_wait_durable_resolves_once_synced(self) -> None:
        """wait_durable returns at once when durable, otherwise after the commit."""
        journal = self.open_journal()
        self.fill(journal, 4)
        waiter = asyncio.create_task(journal.wait_durable(4))
        await asyncio.sleep(0)
        assert waiter.done() == (self.policy != "batch")
        journal.sync()
        await asyncio.wait_for(waiter, TIMEOUT)
        await asyncio.wait_for(journal.wait_durable(2), TIMEOUT)
        journal.close()

    async def test_run_group_commit_makes_records_durable(self) -> None:
        """The group-commit task makes every appended record durable on its own."""
        journal = self.open_journal(batch_records=4, batch_ms=1.0)
        committer = asyncio.create_task(journal.run_group_commit())
        try:
            self.fill(journal, 10)
            await asyncio.wait_for(journal.wait_durable(10), TIMEOUT)
            assert journal.durable_seq == 10
        finally:
            await journal.aclose()
            await asyncio.wait_for(committer, TIMEOUT)

    async def test_async_context_manager_syncs_and_closes(self) -> None:
        """Leaving ``async with`` makes everything durable and closes the journal."""
        async with self.open_journal() as journal:
            self.fill(journal, 3)
        assert journal.durable_seq == 3
        with pytest.raises(JournalError, match="closed"):
            journal.append(4, b"x")

    def test_context_manager_syncs_and_closes(self) -> None:
        """Leaving ``with`` makes everything durable and closes the journal."""
        with self.open_journal() as journal:
            self.fill(journal, 3)
        assert journal.durable_seq == 3
        with pytest.raises(JournalError, match="closed"):
            journal.append(4, b"x")
        journal.close()

    async def test_close_fails_waiters_for_unappended_seqs(self) -> None:
        """A wait for a seq that was never appended fails when the journal closes."""
        journal = self.open_journal()
        self.fill(journal, 1)
        waiter = asyncio.create_task(journal.wait_durable(5))
        await asyncio.sleep(0)
        journal.close()
        with pytest.raises(JournalError, match="closed"):
            await asyncio.wait_for(waiter, TIMEOUT)
        with pytest.raises(JournalError, match="closed"):
            await journal.wait_durable(6)

    def test_recovery_of_a_new_journal_is_clean(self) -> None:
        """A new journal reports a clean recovery with no records."""
        with self.open_journal() as journal:
            recovery = journal.recovery
            assert recovery.clean
            assert (recovery.records, recovery.truncated_bytes) == (0, 0)

    def test_invalid_policy_is_refused(self) -> None:
        """An unknown fsync policy raises JournalError."""
        with pytest.raises(JournalError, match="fsync policy"):
            self.open_journal(fsync="sometimes")


class PersistentJournalContract(JournalContract):
    """Extra behaviours of backends that outlive the process."""

    def reopen(self, **kwargs: Any) -> Journal:
        """Return the journal under test opened again from storage."""
        raise NotImplementedError

    def test_reopen_keeps_every_record(self) -> None:
        """Records survive close and reopen, and appends continue after them."""
        with self.open_journal() as journal:
            self.fill(journal, 12)
        with self.reopen() as journal:
            assert journal.last_seq == journal.durable_seq == 12
            assert journal.recovery.records == 12
            journal.append(13, payload(13))
            self.fill(journal, 20)
        with self.reopen() as journal:
            assert list(journal.read()) == [(s, payload(s)) for s in range(1, 21)]


class TestMemoryJournalAlways(JournalContract):
    """MemoryJournal under the default policy."""

    policy = "always"

    def open_journal(self, header: JournalHeader = HEADER, **kwargs: Any) -> Journal:
        """Return a new MemoryJournal."""
        kwargs.setdefault("fsync", self.policy)
        return MemoryJournal(header, **kwargs)


class TestMemoryJournalBatch(TestMemoryJournalAlways):
    """MemoryJournal emulating group commit."""

    policy = "batch"


class TestMemoryJournalOff(TestMemoryJournalAlways):
    """MemoryJournal under "off"."""

    policy = "off"


class TestFileJournalBatch(PersistentJournalContract):
    """FileJournal under group commit (the default)."""

    policy = "batch"

    def open_journal(self, header: JournalHeader = HEADER, **kwargs: Any) -> Journal:
        """Return a new FileJournal in the test's directory."""
        kwargs.setdefault("fsync", self.policy)
        return FileJournal.open(self.directory, header, **kwargs)

    def reopen(self, **kwargs: Any) -> Journal:
        """Return the test's FileJournal opened again."""
        kwargs.setdefault("fsync", self.policy)
        return FileJournal.open(self.directory, HEADER, **kwargs)


class TestFileJournalAlways(TestFileJournalBatch):
    """FileJournal fsyncing every append."""

    policy = "always"


class TestFileJournalOff(TestFileJournalBatch):
    """FileJournal never fsyncing."""

    policy = "off"


@pytest.mark.nats
class TestNatsJournalBatch(PersistentJournalContract):
    """NatsJournal on the real JetStream server, group commit (the default)."""

    policy = "batch"

    @pytest.fixture(autouse=True)
    def _stream(self) -> Iterator[None]:
        """Give each test its own stream, deleted afterwards."""
        require_nats()
        self.url = f"{NATS_URL}/paperx-test-{uuid.uuid4().hex[:12]}"
        yield
        delete_nats_journal(self.url)

    def open_journal(self, header: JournalHeader = HEADER, **kwargs: Any) -> Journal:
        """Return a new NatsJournal on the test's stream."""
        kwargs.setdefault("fsync", self.policy)
        return NatsJournal.open(self.url, header, **kwargs)

    def reopen(self, **kwargs: Any) -> Journal:
        """Return the test's NatsJournal opened again."""
        kwargs.setdefault("fsync", self.policy)
        return NatsJournal.open(self.url, HEADER, **kwargs)


@pytest.mark.nats
class TestNatsJournalAlways(TestNatsJournalBatch):
    """NatsJournal waiting for every record's ack."""

    policy = "always"


@pytest.mark.nats
class TestNatsJournalOff(TestNatsJournalBatch):
    """NatsJournal never waiting for acks."""

    policy = "off"
