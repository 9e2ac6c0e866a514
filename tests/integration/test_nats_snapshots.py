"""Snapshots of a JetStream journal, on the real NATS server: recovery, replay, serve.

The same contract as the file snapshots (tests/unit/test_recover.py): the
newest valid snapshot plus the stream's tail gives the live state; a
corrupt one is skipped with its reason; one past the journal's end is set
aside; pruning keeps the newest few. Plus what only a stream has: a
snapshot of an earlier stream of the same name is refused.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from recovery_rig import open_exchange, session, snapshot_rounds, trade
from serve_rig import Bot, Server, free_port, write_config
from services import NATS_URL

from exchange.journal.snapshots import snapshot_store
from replay.log import ExchangeLog
from replay.recover import recover
from replay.state_at import rebuild_until
from replay.verify import verify

pytestmark = pytest.mark.nats


@pytest.fixture
def url(nats_journal: str) -> str:
    """Return the URL of a fresh journal stream (deleted with its bucket after)."""
    return nats_journal


def stored(url: str) -> list[tuple[int, str]]:
    """Return the journal's snapshots, newest first."""
    store = snapshot_store(url)
    try:
        return store.snapshots()
    finally:
        store.close()


def overwrite(url: str, seq: int, data: bytes) -> None:
    """Store ``data`` as the snapshot of ``seq``, as a damaged writer would."""
    store = snapshot_store(url)
    try:
        store.write(seq, data)
    finally:
        store.close()


def read(url: str, name: str) -> bytes:
    """Return a stored snapshot's bytes."""
    store = snapshot_store(url)
    try:
        return store.read(name)
    finally:
        store.close()


class TestRecovery:
    """Recovery of a stream: newest valid snapshot in its bucket plus the tail."""

    def test_recovery_from_the_newest_snapshot_equals_the_live_state(
        self, url: str
    ) -> None:
        """The live hash, from the newest snapshot; only the tail is replayed."""
        live = session(url)
        newest, name = stored(url)[0]
        core, report = recover(url)
        assert core.state_hash() == live == report.state_hash
        assert (report.snapshot_seq, report.snapshot_path) == (newest, name)
        assert name.endswith(f"_snapshots/snapshot-{newest:020d}.msgpack")
        assert report.records_replayed == core.last_seq - newest
        assert report.journal.clean

    def test_a_corrupt_newest_snapshot_falls_back_to_the_older_then_to_none(
        self, url: str
    ) -> None:
        """A flipped bit is skipped with its reason; with both bad, a full replay."""
        live = session(url)
        (newest, name), (older, older_name) = stored(url)
        data = read(url, name)
        overwrite(url, newest, data[:-1] + bytes([data[-1] ^ 1]))
        core, report = recover(url)
        assert core.state_hash() == live
        assert report.snapshot_seq == older
        assert [(s.path, s.reason) for s in report.skipped] == [(name, "crc mismatch")]
        overwrite(url, older, b"PAPERXS\x01 and then nothing")
        core, report = recover(url)
        assert core.state_hash() == live
        assert report.snapshot_seq is None
        assert report.records_replayed == core.last_seq
        assert [s.path for s in report.skipped] == [name, older_name]

    def test_a_snapshot_past_the_end_is_set_aside_not_used(self, url: str) -> None:
        """A snapshot of seq 10**6 (records the stream does not hold) goes to .stale."""
        live = session(url, snapshots=1)
        overwrite(url, 10**6, read(url, stored(url)[0][1]))
        core, report = recover(url)
        assert core.state_hash() == live
        (skip,) = report.skipped
        assert skip.reason.startswith("newer than the journal's last seq")
        assert skip.reason.endswith(f"snapshot-{10**6:020d}.msgpack.stale")
        assert [seq for seq, _ in stored(url)] == [report.snapshot_seq]

    def test_a_snapshot_of_an_earlier_stream_of_the_same_name_is_refused(
        self, url: str
    ) -> None:
        """The stream deleted and made again: its old bucket's snapshot is refused."""
        session(url, snapshots=1)
        asyncio.run(_delete_stream_only(url.rsplit("/", 1)[1]))
        with open_exchange(url) as ex:
            trade(ex, 30)  # more records than before: the old seq is inside
        (_, name), *_ = stored(url)
        core, report = recover(url)
        assert report.snapshot_seq is None
        (skip,) = report.skipped
        assert skip.path == name
        assert "taken of another stream of this name" in skip.reason
        assert core.state_hash() == verify(ExchangeLog(url)).live_hash

    def test_pruning_keeps_the_newest_k(self, url: str) -> None:
        """Each store keeps only the newest ``keep`` objects in the bucket."""
        seqs = snapshot_rounds(url, 4, keep=2)
        assert [seq for seq, _ in stored(url)] == seqs[:-3:-1]


class TestReplay:
    """``paperx replay verify`` and ``rebuild`` use a stream's snapshots too."""

    def test_verify_checks_the_newest_snapshot_against_the_rebuild(
        self, url: str
    ) -> None:
        """The snapshot's hash is the rebuild's at its seq, and its tail ends equal."""
        session(url)
        report = verify(ExchangeLog(url))
        assert report.ok
        assert report.snapshot_seq == stored(url)[0][0]
        assert report.snapshot_hash == report.snapshot_rebuild_hash
        assert report.snapshot_tail_hash == report.final_rebuild_hash

    def test_rebuild_at_a_seq_starts_from_the_snapshot_before_it(
        self, url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Reading starts after the newest snapshot at or before the seq asked for."""
        session(url)
        newest, older = (seq for seq, _ in stored(url))
        log = ExchangeLog(url)
        full = rebuild_until(ExchangeLog(url), seq=newest - 1)
        starts: list[int] = []
        entries = log.entries

        def spy(from_seq: int = 1) -> Iterator[object]:
            starts.append(from_seq)
            return entries(from_seq)

        monkeypatch.setattr(log, "entries", spy)
        core = rebuild_until(log, seq=newest - 1)
        assert starts == [older + 1]
        assert core.state_hash() == full.state_hash()
        assert core.last_seq == newest - 1


async def _delete_stream_only(stream: str) -> None:
    """Delete the journal's stream but not its snapshot bucket."""
    import nats  # noqa: PLC0415 -- require_nats has checked it is installed

    client = await nats.connect(NATS_URL)
    try:
        await client.jetstream().delete_stream(stream)
    finally:
        await client.close()


def test_serve_snapshots_a_stream_and_a_restart_recovers_from_it(
    tmp_path: Path, url: str
) -> None:
    """``serve --journal nats://`` snapshots as it goes and on stop; restarts use it."""
    name = f"alice-{uuid.uuid4().hex[:8]}"
    config = write_config(tmp_path, [name])
    text = config.read_text(encoding="utf-8")
    config.write_text(
        text.replace('journal = "journal"', f'journal = "{url}"\nsnapshot_every = 3'),
        encoding="utf-8",
    )
    port = free_port()
    server = Server(config, None, port)
    server.wait_for("server_ready")
    try:
        asyncio.run(_trade(f"mqtt://127.0.0.1:{port}", name))
        server.wait_for("snapshot_written")
        stopped = server.stop()
    finally:
        server.kill()
    last_written = max(
        entry["seq"] for entry in server.log if entry["event"] == "snapshot_written"
    )
    assert last_written == stopped["seq"]  # the final snapshot, on stop
    # the stream named on the command line, as an operator would override it
    restarted = Server(config, None, port, extra=("--journal", url))
    try:
        recovered = restarted.wait_for("journal_recovered")
        ready = restarted.wait_for("server_ready")
    finally:
        restarted.kill()
    assert recovered["snapshot_seq"] == stopped["seq"]
    assert recovered["records_replayed"] == 0
    assert ready["state_hash"] == stopped["state_hash"]


async def _trade(broker: str, account: str) -> None:
    """Rest a few orders through the server."""
    async with Bot(broker, account) as bot:
        for n in range(5):
            order = {
                "symbol": "BTC-PERP",
                "side": "buy",
                "type": "limit",
                "qty": "0.01",
                "price": str(60000 + n),
            }
            await bot.answer(await bot.send("new", **order))
