"""The JetStream journal on the real NATS server: replay, writers, resends, damage."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest
from services import NATS_URL
from window_rig import check_window_starts, write_stamped

from clients.orderflow import generate
from exchange import DEFAULT_MARKETS, Exchange
from exchange.cli import main
from exchange.errors import JournalCorrupt, JournalError, JournalMismatch
from exchange.journal import JournalHeader, read_journal
from exchange.journal import nats as nats_journal
from exchange.journal.nats import NatsJournal, delete_nats_journal
from exchange.journal.nats_wire import NatsReadError
from replay.log import ExchangeLog
from replay.verify import verify

if TYPE_CHECKING:
    from collections.abc import Iterator

    from nats.aio.msg import Msg

pytestmark = pytest.mark.nats

HEADER = JournalHeader(schema_version=2, config_hash="h", config={"markets": {}})


@pytest.fixture
def url(nats_journal: str) -> str:
    """Return the URL of a fresh stream on the server, deleted afterwards."""
    return nats_journal


async def _stream_messages(stream: str) -> int:
    """Return how many messages the stream holds (header included)."""
    import nats  # noqa: PLC0415 -- require_nats has checked it is installed

    client = await nats.connect(NATS_URL)
    try:
        info = await client.jetstream().stream_info(stream)
        return info.state.messages
    finally:
        await client.close()


async def _consumers(stream: str) -> int:
    """Return how many consumers the stream has."""
    import nats  # noqa: PLC0415 -- require_nats has checked it is installed

    client = await nats.connect(NATS_URL)
    try:
        info = await client.jetstream().stream_info(stream)
        return info.state.consumer_count
    finally:
        await client.close()


async def _delete_message(stream: str, stream_seq: int) -> None:
    """Delete one message of the stream, as an operator's mistake would."""
    import nats  # noqa: PLC0415 -- require_nats has checked it is installed

    client = await nats.connect(NATS_URL)
    try:
        await client.jetstream().delete_msg(stream, stream_seq)
    finally:
        await client.close()


def _stream(url: str) -> str:
    """Return the stream name of a journal URL."""
    return url.rsplit("/", 1)[1]


class TestReplayFromJetStream:
    """A session journaled to JetStream replays like one journaled to files."""

    @pytest.mark.parametrize("fsync", ["batch", "always"])
    def test_a_session_verifies_live_rebuild_and_rerun(
        self, url: str, fsync: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The facade journals to a stream; verify and the CLI prove all three equal."""
        ex = Exchange(journal=url, fsync=fsync, margin=False)  # type: ignore[arg-type]
        n = 1500 if fsync == "batch" else 300
        for command in generate(n, 11, list(DEFAULT_MARKETS)):
            ex.submit(command)
        ex.checkpoint()
        ex.close()
        live = ex.state_hash()
        report = verify(ExchangeLog(url))
        assert report.ok, report
        assert report.live_hash == live == report.rebuild_hash == report.rerun_hash
        assert report.records == ex.core.last_seq
        assert main(["replay", "verify", url]) == 0
        assert "OK: live == rebuild == rerun" in capsys.readouterr().out

    def test_a_deleted_record_stops_replay_with_the_damage_named(
        self, url: str
    ) -> None:
        """A record deleted from the stream ends reading there, and opening refuses."""
        with NatsJournal.open(url, HEADER) as journal:
            for seq in range(1, 11):
                journal.append(seq, b"r%d" % seq)
        asyncio.run(_delete_message(_stream(url), 7))  # record seq 6
        reader = read_journal(url)
        assert [seq for seq, _ in reader.read()] == [1, 2, 3, 4, 5]
        assert reader.stop is not None
        assert (reader.stop.reason, reader.stop.last_seq) == ("seq", 5)
        with pytest.raises(JournalCorrupt, match="purged or deleted"):
            NatsJournal.open(url, HEADER)


class TestBulkReads:
    """Reads pull the stream in batches and check every record's place."""

    def test_reads_over_many_pulls_return_every_record_and_leave_no_consumer(
        self, url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Pulls of 4 over 23 records: all, a tail, an abandoned read, the writer's."""
        monkeypatch.setattr(nats_journal, "_READ_BATCH", 4)
        payloads = [b"r%d" % seq * seq for seq in range(1, 24)]
        with NatsJournal.open(url, HEADER) as journal:
            for seq, payload in enumerate(payloads, 1):
                journal.append(seq, payload)
            assert list(journal.read(20)) == list(enumerate(payloads, 1))[19:]
        reader = read_journal(url)
        assert list(reader.read()) == list(enumerate(payloads, 1))
        assert reader.stop is not None
        assert reader.stop.clean
        assert [seq for seq, _ in reader.read(from_seq=9)] == list(range(9, 24))
        records = reader.read()
        assert [next(records) for _ in range(6)][-1] == (6, payloads[5])
        records.close()  # abandoned halfway: its consumer goes with it
        assert asyncio.run(_consumers(_stream(url))) == 0

    def test_a_connection_lost_mid_read_goes_on_from_the_next_record(
        self, url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The first connection fails after one chunk: the read resumes, whole.

        A failure before any record is not retried: it is the caller's error.
        """
        monkeypatch.setattr(nats_journal, "_READ_BATCH", 4)
        with NatsJournal.open(url, HEADER) as journal:
            for seq in range(1, 24):
                journal.append(seq, b"r%d" % seq)
        failures = [1]  # chunks the next connection gives before it fails

        class Flaky(nats_journal.PullReader):
            """A reader whose connection drops after a few chunks, once."""

            def read(
                self, stream: str, consumer: str, count: int
            ) -> Iterator[list[tuple[bytes, bytes]]]:
                chunks = super().read(stream, consumer, count)
                if failures:
                    for _ in range(failures.pop(0)):
                        yield next(chunks)
                    msg = "the NATS server closed the connection"
                    raise NatsReadError(msg)
                yield from chunks

        monkeypatch.setattr(nats_journal, "PullReader", Flaky)
        reader = read_journal(url)
        assert [p for _, p in reader.read()] == [b"r%d" % s for s in range(1, 24)]
        assert reader.stop is not None
        assert reader.stop.clean
        failures[:] = [0]
        with pytest.raises(NatsReadError, match="closed the connection"):
            list(reader.read())
        assert asyncio.run(_consumers(_stream(url))) == 0

    def test_a_deleted_last_record_ends_the_read_with_the_seq_missing(
        self, url: str
    ) -> None:
        """The stream ends early: reading stops after seq 4, saying seq 5 is missing."""
        with NatsJournal.open(url, HEADER) as journal:
            for seq in range(1, 6):
                journal.append(seq, b"r%d" % seq)
        asyncio.run(_delete_message(_stream(url), 6))  # record seq 5, the last
        reader = read_journal(url)
        assert [seq for seq, _ in reader.read()] == [1, 2, 3, 4]
        assert reader.stop is not None
        assert (reader.stop.reason, reader.stop.last_seq) == ("seq", 4)
        assert "seq 5 was due, the stream holds no more records" in str(reader.stop)


class TestWindowStart:
    """A restarted server finds the receive window without reading the stream."""

    def test_the_first_record_at_or_after_a_time_is_found_by_bisection(
        self, url: str
    ) -> None:
        """Records stamped 10 s apart, some sharing a time: each boundary found."""
        write_stamped(NatsJournal.open(url, HEADER))
        check_window_starts(url)


class TestWriters:
    """What JetStream's expectations buy: one writer, records stored once."""

    def test_a_second_writer_is_refused_and_the_first_record_stays(
        self, url: str
    ) -> None:
        """Two writers on one stream: the later append of a seq is refused."""
        first = NatsJournal.open(url, HEADER, fsync="always")
        second = NatsJournal.open(url, HEADER, fsync="always")
        try:
            first.append(1, b"first")
            with pytest.raises(JournalError, match="refused seq 1"):
                second.append(1, b"second")
            assert list(first.read()) == [(1, b"first")]
        finally:
            first.close()
            second.close()

    def test_a_lost_ack_is_resent_and_the_record_stored_once(
        self, url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A record whose first ack is lost is resent; the stream keeps one copy."""
        dropped: set[int] = set()
        on_ack = nats_journal._Publisher._on_ack

        async def lose_first_ack(publisher: nats_journal._Publisher, msg: Msg) -> None:
            """Drop the first ack of each seq, pass the others on."""
            seq = int(msg.subject.rpartition(".")[2])
            if seq not in dropped:
                dropped.add(seq)
                return
            await on_ack(publisher, msg)

        monkeypatch.setattr(nats_journal._Publisher, "_on_ack", lose_first_ack)
        with NatsJournal.open(url, HEADER, ack_timeout=0.2) as journal:
            for seq in range(1, 6):
                journal.append(seq, b"r%d" % seq)
            journal.sync()
            assert journal.durable_seq == 5
        assert dropped == {1, 2, 3, 4, 5}
        assert asyncio.run(_stream_messages(_stream(url))) == 6  # header + 5
        assert [p for _, p in read_journal(url).read()] == [
            b"r%d" % s for s in range(1, 6)
        ]

    def test_records_never_acked_fail_the_journal(
        self, url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """With every ack lost, sync raises once the resends are spent."""

        async def lose(publisher: nats_journal._Publisher, msg: Msg) -> None:
            """Drop the ack."""

        monkeypatch.setattr(nats_journal._Publisher, "_on_ack", lose)
        journal = NatsJournal.open(url, HEADER, ack_timeout=0.1, retries=1)
        journal.append(1, b"x")
        with pytest.raises(JournalError, match="no ack for seq 1 after 2 tries"):
            journal.sync()
        with pytest.raises(JournalError, match="no ack"):
            journal.append(2, b"y")
        journal.close()


class TestOpening:
    """Opening a stream checks what it holds."""

    def test_another_config_is_refused(self, url: str) -> None:
        """A journal reopened under another config hash raises JournalMismatch."""
        NatsJournal.open(url, HEADER).close()
        other = JournalHeader(schema_version=2, config_hash="other", config={})
        with pytest.raises(JournalMismatch):
            NatsJournal.open(url, other)

    def test_reading_a_missing_journal_creates_nothing(self, url: str) -> None:
        """The reader and a header-less open refuse a missing stream and leave none."""
        with pytest.raises(JournalError, match="holds no journal"):
            read_journal(url)
        with pytest.raises(JournalError, match="needs a header"):
            NatsJournal.open(url)
        assert not delete_nats_journal(url)
