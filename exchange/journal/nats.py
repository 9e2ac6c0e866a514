"""NatsJournal: the journal in a NATS JetStream stream, ``nats://host:port/STREAM``.

Layout. A journal is one JetStream stream (file storage, ``?replicas=N``
for a clustered server, default 1) with two subjects: ``paperx.STREAM.header``
holds the :class:`~exchange.journal.base.JournalHeader` (msgpack) as the
stream's first message, and ``paperx.STREAM.records`` holds every record's
payload, unchanged, one message per record. Record ``seq`` is stream
sequence ``seq - first_seq + 2``, so the stream itself is the seq index: no
frame, no CRC of our own (JetStream checksums its blocks). The header is a
message rather than stream metadata because metadata needs nats-server 2.10
and any server (and ``nats stream get STREAM 1``) can read a message.

Publishing. Each record goes out with two headers: ``Nats-Msg-Id:
<seq>.<writer>`` (the seq and a token drawn when the journal is opened;
JetStream drops a second message with the same id inside the duplicate
window, 2 minutes, answering with the first one's ack) and
``Nats-Expected-Last-Sequence`` (the stream sequence before it: the stream
refuses the message unless it lands exactly at its own seq, so two writers
on one stream cannot interleave, and the writer token keeps one writer's
resend from being taken for another's record). An ack must name the stream
sequence the seq maps to; anything else poisons the journal. A record not
acked while no ack at all arrives for ``ack_timeout`` is published again
with the same id, and every record after it with it (the server checks the
id before the expected sequence, so a copy of a stored record is answered
as a duplicate, not refused); after ``retries`` such stalls in a row the
journal fails. At most 8192 records are in flight (published, not acked),
so a slow server slows the publisher instead of queueing without bound.

What "durable" means here. A JetStream publish ack says the stream has
stored the message: with one replica, written by the nats-server process to
its store (it survives the exchange and the nats-server process crashing,
not a power cut before the server's own periodic sync); with ``replicas=3``,
stored by a quorum of servers (it survives losing a machine). The policies:

* ``"always"``: ``append`` returns once the record's ack is back (one round
  trip per record).
* ``"batch"`` (group commit): ``append`` only buffers; a commit publishes the
  batch pipelined and its acks are awaited in the journal's commit thread, as
  a file journal's fsync is; ``durable_seq`` is the highest contiguously
  acked seq.
* ``"off"``: a record counts as durable once handed to the NATS client in
  this process; acks are still collected, and a refusal poisons the journal
  at the next call, but a crash of the exchange process can lose records the
  client had not yet written to its socket (weaker than a file's "off").

Threading. nats-py is asyncio-only, while the :class:`Journal` protocol is
synchronous where the exchange's hot path is (``append``, ``maybe_sync``,
``sync``, ``read``) and the server's event loop must never wait on the
network. So each journal owns a dedicated thread running its own asyncio loop
and NATS connection (:class:`_IoLoop`). The owner thread appends into a
plain list; a flush hands the list over with one ``call_soon_threadsafe``;
the loop thread publishes and matches acks (:class:`_Publisher`); a commit
waits for the acks on a ``concurrent.futures.Future``, in the caller
(``always``, ``sync``) or in the commit thread of
:class:`~exchange.journal.durability.DurableJournal` (``batch``), which
``wait_durable`` and ``aclose`` await without blocking the server's loop.
The protocol needs no change: a NATS failure surfaces as the
:class:`NatsPublishError` (a ``ConnectionError``) that the shared
durability code turns into a poisoned journal, as it does a failed fsync.

Reading. :meth:`NatsJournal.read` and :class:`NatsJournalReader` (the
read-only view ``paperx replay`` uses) read the records in stream order
through an ephemeral pull consumer (memory state, no acks, deleted
afterwards), pulled in batches over a plain connection of their own
(:mod:`exchange.journal.nats_wire`: nats-py's per-message machinery made
reads 10x slower), checking that each message's msg id names the seq due.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import threading
import time
import uuid
from collections import deque
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, Final, TypeVar
from urllib.parse import parse_qs, urlsplit

import msgspec

from exchange.errors import JournalCorrupt, JournalError
from exchange.journal.base import FsyncPolicy, JournalHeader, Recovery
from exchange.journal.durability import DurableJournal, check_header, check_settings
from exchange.journal.nats_wire import NatsReadError, PullReader, WireMessage
from exchange.journal.reader import ReadStop
from exchange.logs import get_logger

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Generator, Iterator

    from nats.aio.client import Client
    from nats.aio.msg import Msg

__all__ = [
    "NatsAddress",
    "NatsJournal",
    "NatsJournalReader",
    "NatsPublishError",
    "delete_nats_journal",
    "parse_nats_url",
]

_log = get_logger(__name__)
_T = TypeVar("_T")

_HEADER_ENCODER: Final = msgspec.msgpack.Encoder()
_HEADER_DECODER: Final = msgspec.msgpack.Decoder(JournalHeader)
_MSG_ID: Final = "Nats-Msg-Id"
_EXPECTED_LAST: Final = "Nats-Expected-Last-Sequence"
_WRONG_LAST_SEQUENCE: Final = 10071  # JetStream's err_code for a refused expectation
_DUPLICATE_WINDOW_S: Final = 120.0
_READ_BATCH: Final = 8192  # messages per pull request of a read
_IN_FLIGHT: Final = 8192  # records published and not yet acked, at most
_API_TIMEOUT_S: Final = 10.0
_READERS: Final = itertools.count()  # names the reading threads
_INSTALL_HINT: Final = (
    "the NATS journal needs nats-py: pip install 'paperx[nats]' (or nats-py)"
)


class NatsPublishError(ConnectionError):
    """Raised when JetStream refuses a record, or does not ack it in time."""


class NatsAddress(msgspec.Struct, frozen=True, kw_only=True):
    """Where a NATS journal lives, parsed from ``nats://host:port/STREAM``."""

    url: str
    """The URL as given, to name the journal in messages."""
    server: str
    """The server to connect to, ``nats://host:port``."""
    stream: str
    """The JetStream stream name."""
    replicas: int = 1
    """Replicas of a stream this journal creates (``?replicas=N``)."""

    @property
    def header_subject(self) -> str:
        """Return the subject of the header message."""
        return f"paperx.{self.stream}.header"

    @property
    def records_subject(self) -> str:
        """Return the subject every record is published on."""
        return f"paperx.{self.stream}.records"

    @property
    def snapshot_bucket(self) -> str:
        """Return the object store bucket of the journal's snapshots."""
        return f"{self.stream}_snapshots"


def parse_nats_url(url: str) -> NatsAddress:
    """Parse ``nats://host[:port]/STREAM[?replicas=N]``.

    Raises:
        JournalError: If the URL is not of that form or the stream name is invalid.
    """
    parts = urlsplit(url)
    stream = parts.path.strip("/")
    if parts.scheme != "nats" or not parts.hostname or not stream:
        msg = f"{url!r} is not a NATS journal URL: nats://host:port/STREAM"
        raise JournalError(msg)
    if not stream.replace("-", "").replace("_", "").isalnum():
        msg = f"stream name {stream!r}: use letters, digits, '-' and '_'"
        raise JournalError(msg)
    query = parse_qs(parts.query)
    try:
        replicas = int(query.pop("replicas", ["1"])[-1])
    except ValueError:
        replicas = 0
    if query or not 1 <= replicas <= 5:  # JetStream allows 1 to 5 replicas
        msg = f"{url!r}: the only option is replicas=1..5"
        raise JournalError(msg)
    server = f"nats://{parts.hostname}:{parts.port or 4222}"
    return NatsAddress(url=url, server=server, stream=stream, replicas=replicas)


def _stream_seq(seq: int, first_seq: int) -> int:
    """Return the stream sequence of record ``seq`` (the header is stream seq 1)."""
    return seq - first_seq + 2


class _IoLoop:
    """An asyncio loop on a daemon thread of its own, driven from other threads."""

    def __init__(self, name: str) -> None:
        """Start the thread and its loop."""
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name=name, daemon=True
        )
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, _T], timeout: float) -> _T:
        """Run ``coroutine`` on the loop and return its result (from another thread).

        Raises:
            NatsPublishError: If it does not finish within ``timeout`` seconds.
        """
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            msg = f"NATS did not answer within {timeout} s"
            raise NatsPublishError(msg) from None

    def stop(self) -> None:
        """Stop the loop, join the thread and close the loop."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


async def _connect(address: NatsAddress) -> Client:
    """Return a connection to the journal's server.

    Raises:
        JournalError: If nats-py is missing or the server cannot be reached.
    """
    try:
        import nats  # noqa: PLC0415 -- an optional dependency
    except ImportError as exc:
        raise JournalError(_INSTALL_HINT) from exc
    try:
        return await nats.connect(
            address.server, connect_timeout=2, max_reconnect_attempts=30
        )
    except (OSError, TimeoutError, nats.errors.Error) as exc:
        msg = f"{address.url}: cannot reach the NATS server: {exc!r}"
        raise JournalError(msg) from exc


def _connected(address: NatsAddress, name: str) -> tuple[_IoLoop, Client]:
    """Start an I/O loop thread and connect on it; stop the thread on failure."""
    io = _IoLoop(name)
    try:
        return io, io.run(_connect(address), _API_TIMEOUT_S)
    except BaseException:
        io.stop()
        raise


def _disconnect(io: _IoLoop, client: Client) -> None:
    """Close the connection (flushing what it holds) and stop the loop thread."""
    try:
        io.run(client.close(), _API_TIMEOUT_S)
    except (OSError, TimeoutError) as exc:
        _log.warning("nats_close_failed", error=repr(exc))
    finally:
        io.stop()


class _StreamState(msgspec.Struct, frozen=True):
    """What the stream holds: its header and the last stored stream sequence."""

    header: JournalHeader | None
    first: int
    last: int
    messages: int


async def _stream_state(client: Client, address: NatsAddress) -> _StreamState | None:
    """Return the stream's header and extent, or None when there is no stream.

    Raises:
        JournalError: If the stream exists but is not a paperx journal.
    """
    import nats.js.errors  # noqa: PLC0415 -- an optional dependency

    js = client.jetstream(timeout=_API_TIMEOUT_S)
    try:
        info = await js.stream_info(address.stream)
    except nats.js.errors.NotFoundError:
        return None
    subjects = set(info.config.subjects or ())
    if subjects != {address.header_subject, address.records_subject}:
        msg = f"{address.url}: stream {address.stream} is not a paperx journal"
        raise JournalError(msg)
    state = info.state
    if state.messages == 0:
        return _StreamState(None, state.first_seq, state.last_seq, 0)
    try:
        first = await js.get_msg(address.stream, 1)
    except nats.js.errors.NotFoundError:
        first = None
    if first is None or first.subject != address.header_subject or not first.data:
        raise JournalCorrupt(address.url, 0, "stream seq 1 is not the journal header")
    try:
        header = _HEADER_DECODER.decode(first.data)
    except msgspec.DecodeError as exc:
        raise JournalCorrupt(address.url, 0, f"header: {exc}") from exc
    return _StreamState(header, state.first_seq, state.last_seq, state.messages)


async def _create(client: Client, address: NatsAddress, header: JournalHeader) -> None:
    """Create the stream and store ``header`` as its first message.

    Raises:
        JournalError: If another writer stored a message first.
    """
    import nats.js.errors  # noqa: PLC0415 -- an optional dependency
    from nats.js.api import StorageType  # noqa: PLC0415

    js = client.jetstream(timeout=_API_TIMEOUT_S)
    await js.add_stream(
        name=address.stream,
        subjects=[address.header_subject, address.records_subject],
        storage=StorageType.FILE,
        num_replicas=address.replicas,
        duplicate_window=_DUPLICATE_WINDOW_S,
    )
    try:
        await js.publish(
            address.header_subject,
            _HEADER_ENCODER.encode(header),
            headers={_MSG_ID: "header", _EXPECTED_LAST: "0"},
        )
    except nats.js.errors.APIError as exc:
        msg = f"{address.url}: another writer created this journal: {exc}"
        raise JournalError(msg) from exc


class _ApiError(msgspec.Struct):
    """The error object of a refused JetStream publish."""

    code: int = 0
    err_code: int = 0
    description: str = ""


class _PubAck(msgspec.Struct):
    """A JetStream publish ack (or refusal), as the server sends it."""

    stream: str = ""
    seq: int = 0
    duplicate: bool = False
    error: _ApiError | None = None


_ACK_DECODER: Final = msgspec.json.Decoder(_PubAck)


class _Publisher:
    """The loop-thread half of a :class:`NatsJournal`: publish, match acks, retry.

    ``hand_over`` and ``wait_acked`` are called from other threads; everything
    else runs on the loop. ``acked`` is the highest seq acked with every seq
    before it; it and ``error`` are read by other threads without a lock
    (single assignments of immutable values).
    """

    def __init__(
        self,
        io: _IoLoop,
        client: Client,
        address: NatsAddress,
        first_seq: int,
        last_seq: int,
        timing: tuple[float, int],
    ) -> None:
        """Prepare to publish the records after ``last_seq``.

        ``timing`` is ``(ack_timeout, retries)``.
        """
        self._io = io
        self._client = client
        self._address = address
        self._subject = address.records_subject
        self._first_seq = first_seq
        self._ack_timeout, self._retries = timing
        self.acked = last_seq
        self.error: str | None = None
        self._sent = last_seq  # the highest seq published
        self._outbox: deque[tuple[int, bytes]] = deque()
        self._kicked = False
        # seq -> payload of every record published and not yet acked, in order
        self._pending: dict[int, bytes] = {}
        self._room = asyncio.Event()  # set while fewer than _IN_FLIGHT are pending
        self._room.set()
        self._progress_at = 0.0  # when acks last advanced (or a wait began)
        self._stalls = 0  # ack timeouts in a row without progress
        self._waiters: list[tuple[int, Future[None]]] = []
        self._sender: asyncio.Task[None] | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._inbox = ""
        self._writer = uuid.uuid4().hex[:12]  # tells this writer's msg ids apart

    async def start(self) -> None:
        """Subscribe to the ack inbox and start the retry watchdog."""
        self._inbox = self._client.new_inbox()
        await self._client.subscribe(f"{self._inbox}.*", cb=self._on_ack)
        self._watchdog = asyncio.get_running_loop().create_task(self._watch())

    # ------------------------------------------------------------ other threads

    def hand_over(self, records: list[tuple[int, bytes]]) -> None:
        """Queue ``records`` (consecutive seqs) for publishing; any thread.

        Raises:
            NatsPublishError: If the journal has already failed.
        """
        if self.error is not None:
            raise NatsPublishError(self.error)
        self._outbox.extend(records)
        if not self._kicked:
            self._kicked = True
            self._io.loop.call_soon_threadsafe(self._kick)

    def wait_acked(self, seq: int) -> None:
        """Block until every seq up to ``seq`` is acked; any thread but the loop's.

        Raises:
            NatsPublishError: If a record is refused or never acked.
        """
        if self.acked >= seq:
            return
        if self.error is not None:
            raise NatsPublishError(self.error)
        future: Future[None] = Future()
        self._io.loop.call_soon_threadsafe(self._add_waiter, seq, future)
        # The watchdog resolves every waiter within the retry budget; the
        # margin only guards against a loop thread that died.
        future.result(self._ack_timeout * (self._retries + 2) + _API_TIMEOUT_S)

    # ------------------------------------------------------------ loop thread

    def _kick(self) -> None:
        """Start the sender unless it is running (it drains the whole outbox)."""
        self._kicked = False
        if self._sender is None or self._sender.done():
            self._sender = asyncio.get_running_loop().create_task(self._send())

    async def _send(self) -> None:
        """Publish every queued record, in seq order."""
        outbox, pending = self._outbox, self._pending
        while outbox and self.error is None:
            if len(pending) >= _IN_FLIGHT:
                self._room.clear()
                await self._room.wait()
                continue
            seq, payload = outbox.popleft()
            if not pending:
                self._progress_at = time.monotonic()
            pending[seq] = payload
            self._sent = seq
            await self._publish(seq, payload)

    async def _publish(self, seq: int, payload: bytes) -> None:
        """Publish one record with its msg id and expected stream position."""
        expected = _stream_seq(seq, self._first_seq) - 1
        try:
            await self._client.publish(
                self._subject,
                payload,
                reply=f"{self._inbox}.{seq}",
                headers={
                    _MSG_ID: f"{seq}.{self._writer}",
                    _EXPECTED_LAST: str(expected),
                },
            )
        except Exception as exc:  # noqa: BLE001 -- any client failure fails the journal
            self._fail(f"publishing seq {seq} failed: {exc!r}")

    async def _on_ack(self, msg: Msg) -> None:
        """Match one ack to its record; a refusal or a wrong position fails all."""
        seq = int(msg.subject.rpartition(".")[2])
        if seq not in self._pending:
            return  # the ack of a copy, already settled
        try:
            ack = _ACK_DECODER.decode(msg.data)
        except msgspec.DecodeError:
            self._fail(f"seq {seq}: unreadable ack {msg.data[:200]!r}")
            return
        if ack.error is not None:
            if (
                ack.error.err_code == _WRONG_LAST_SEQUENCE
                and next(iter(self._pending)) < seq
            ):
                return  # an earlier record is missing: its retry resends this one
            self._fail(f"JetStream refused seq {seq}: {ack.error.description}")
            return
        if ack.seq != _stream_seq(seq, self._first_seq):
            self._fail(
                f"seq {seq} was stored at stream seq {ack.seq}, not "
                f"{_stream_seq(seq, self._first_seq)}: another writer?"
            )
            return
        del self._pending[seq]
        self._settle()

    def _settle(self) -> None:
        """Advance ``acked`` past every record acked in order; resolve waiters."""
        pending = self._pending
        acked = next(iter(pending)) - 1 if pending else self._sent
        if acked > self.acked:
            self._progress_at = time.monotonic()
            self._stalls = 0
        self.acked = acked
        if len(pending) < _IN_FLIGHT:
            self._room.set()
        if self._waiters:
            acked = self.acked
            keep = []
            for seq, future in self._waiters:
                if seq <= acked:
                    future.set_result(None)
                else:
                    keep.append((seq, future))
            self._waiters = keep

    def _add_waiter(self, seq: int, future: Future[None]) -> None:
        """Register a waiter for ``seq``, resolved now if it is already acked."""
        if self.error is not None:
            future.set_exception(NatsPublishError(self.error))
        elif seq <= self.acked:
            future.set_result(None)
        else:
            self._waiters.append((seq, future))

    async def _watch(self) -> None:
        """Resend what is pending once acks stop for ``ack_timeout``; fail at last.

        Timing the stall, not each record, keeps a long queue of records
        being acked in order (a slow server) from counting as lost.
        """
        while self.error is None:
            await asyncio.sleep(self._ack_timeout / 4)
            pending = self._pending
            if not pending or time.monotonic() - self._progress_at < self._ack_timeout:
                continue
            self._stalls += 1
            oldest = next(iter(pending))
            if self._stalls > self._retries:
                self._fail(
                    f"no ack for seq {oldest} after {self._stalls} tries "
                    f"({self._ack_timeout} s each)"
                )
                return
            _log.warning("nats_journal_resend", from_seq=oldest, records=len(pending))
            self._progress_at = time.monotonic()
            for seq, payload in list(pending.items()):
                await self._publish(seq, payload)

    def _fail(self, reason: str) -> None:
        """Fail the journal: every waiter, now and later, gets the error."""
        if self.error is not None:
            return
        self.error = f"{self._address.url}: {reason}"
        _log.error("nats_journal_failed", reason=self.error)
        self._room.set()  # a sender waiting for room sees the error and ends
        waiters, self._waiters = self._waiters, []
        for _, future in waiters:
            future.set_exception(NatsPublishError(self.error))

    async def stop(self) -> None:
        """Stop the watchdog and sender; fail the waiters left (the journal closes)."""
        for task in (self._watchdog, self._sender):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        waiters, self._waiters = self._waiters, []
        for _, future in waiters:
            future.set_exception(NatsPublishError("the journal closed"))


class NatsJournal(DurableJournal):
    """A journal in a JetStream stream; build it with :meth:`open`."""

    def __init__(
        self,
        address: NatsAddress,
        header: JournalHeader,
        last_seq: int,
        *,
        fsync: FsyncPolicy,
        limits: tuple[int, float, float, int],
        connection: tuple[_IoLoop, Client],
    ) -> None:
        """Take over an open connection to a stream whose last record is ``last_seq``.

        ``limits`` is ``(batch_records, batch_ms, ack_timeout, retries)``.
        """
        batch_records, batch_ms, ack_timeout, retries = limits
        super().__init__(header, fsync, batch_records, batch_ms)
        self._address = address
        self._io, self._client = connection
        self._last_seq = self._durable_seq = last_seq
        self._buffer: list[tuple[int, bytes]] = []
        self._handed = last_seq  # the last seq handed to the publisher
        self._publisher = _Publisher(
            self._io,
            self._client,
            address,
            header.first_seq,
            last_seq,
            (ack_timeout, retries),
        )
        self._io.run(self._publisher.start(), _API_TIMEOUT_S)
        self._recovery = Recovery(
            segments=0,
            records=last_seq - header.first_seq + 1,
            first_seq=header.first_seq,
            last_seq=last_seq,
        )

    @classmethod
    def open(
        cls,
        url: str,
        header: JournalHeader | None = None,
        fsync: FsyncPolicy = "batch",
        batch_records: int = 512,
        batch_ms: float = 2.0,
        *,
        ack_timeout: float = 5.0,
        retries: int = 3,
    ) -> NatsJournal:
        """Open the journal at ``url`` (``nats://host:port/STREAM``), creating it.

        Args:
            url: The server and stream; ``?replicas=N`` for a new stream.
            header: Required for a new journal; for an existing one its
                ``schema_version`` and ``config_hash`` must match the stored one.
            fsync: The durability policy (see the module docstring).
            batch_records: Under "batch", commit once this many records wait.
            batch_ms: Under "batch", the least time between two commits.
            ack_timeout: Seconds to wait for a record's ack before resending it.
            retries: Resends of an unacked record before the journal fails.

        Raises:
            JournalError: If nats-py is missing, the server is unreachable, a
                new journal has no header, or a setting is invalid.
            JournalMismatch: If ``header`` does not match the stored one.
            JournalCorrupt: If the stream lost records (purged or deleted).
        """
        check_settings(header, fsync, batch_records, batch_ms)
        if ack_timeout <= 0 or retries < 0:
            msg = f"need ack_timeout > 0, retries >= 0: {ack_timeout}, {retries}"
            raise JournalError(msg)
        address = parse_nats_url(url)
        io, client = _connected(address, f"paperx-nats-{address.stream}")
        try:
            stored, last_seq = cls._prepare(io, client, address, header)
            return cls(
                address,
                stored,
                last_seq,
                fsync=fsync,
                limits=(batch_records, batch_ms, ack_timeout, retries),
                connection=(io, client),
            )
        except BaseException:
            _disconnect(io, client)
            raise

    @staticmethod
    def _prepare(
        io: _IoLoop, client: Client, address: NatsAddress, header: JournalHeader | None
    ) -> tuple[JournalHeader, int]:
        """Create the stream or check the stored one; return its header and last seq."""
        state = io.run(_stream_state(client, address), _API_TIMEOUT_S)
        if state is None:
            if header is None:
                msg = f"{address.url} holds no journal; a new journal needs a header"
                raise JournalError(msg)
            io.run(_create(client, address, header), _API_TIMEOUT_S)
            state = io.run(_stream_state(client, address), _API_TIMEOUT_S)
        if state is None or state.header is None:
            msg = f"{address.url}: the stream holds no journal header"
            raise JournalError(msg)
        stored = state.header
        if header is not None:
            check_header(address.url, stored, header)
        if state.first != 1 or state.messages != state.last:
            detail = (
                f"the stream holds {state.messages} messages in stream seqs "
                f"{state.first}..{state.last}: records were purged or deleted"
            )
            raise JournalCorrupt(address.url, 0, detail)
        last_seq = state.last - 2 + stored.first_seq
        _log.info(
            "journal_opened",
            url=address.url,
            first_seq=stored.first_seq,
            last_seq=last_seq,
        )
        return stored, last_seq

    # ------------------------------------------------------------ I/O hooks

    def _write(self, seq: int, payload: bytes) -> None:
        """Buffer one record until the next flush."""
        self._buffer.append((seq, bytes(payload)))

    def _flush(self) -> None:
        """Hand the buffered records to the loop thread for publishing."""
        if self._buffer:
            records, self._buffer = self._buffer, []
            self._publisher.hand_over(records)
            self._handed = records[-1][0]
        elif self._publisher.error is not None:
            raise NatsPublishError(self._publisher.error)

    def _fsync(self) -> None:
        """Block until every handed-over record is acked by the stream."""
        self._publisher.wait_acked(self._handed)

    def _fsync_job(self) -> Callable[[], None]:
        """Return a wait for the acks of what is handed over now (commit thread)."""
        return functools.partial(self._publisher.wait_acked, self._handed)

    def _release(self) -> None:
        """Collect the acks still due (under "off"), then disconnect."""
        try:
            if self._failure is None and self._publisher.error is None:
                self._publisher.wait_acked(self._handed)
        except (OSError, TimeoutError) as exc:
            _log.warning("journal_close_failed", error=str(exc))
        with contextlib.suppress(NatsPublishError):
            self._io.run(self._publisher.stop(), _API_TIMEOUT_S)
        _disconnect(self._io, self._client)

    # ------------------------------------------------------------ reading

    def read(self, from_seq: int = 1) -> Iterator[tuple[int, bytes]]:
        """Yield every stored ``(seq, payload)`` with ``seq >= from_seq``, in order.

        The records are those appended before the call: they are published
        and acked first (without moving ``durable_seq``); later appends are
        not included.

        Raises:
            JournalCorrupt: If the stream does not hold them in order.
            JournalError: If publishing them failed.
        """
        until = self._last_seq
        span = (from_seq, until)
        if self._closed:  # the connection is gone: read over a new one
            return _read_connected(self._address, span, _raise_stop)
        if self._usable:
            try:
                self._flush()
                self._publisher.wait_acked(until)
            except OSError as exc:
                raise self._fail(exc) from exc
        first_seq = self._header.first_seq
        return _read_records(
            (self._io, self._client), self._address, first_seq, span, _raise_stop
        )


def _raise_stop(stop: ReadStop) -> None:
    """Raise :class:`JournalCorrupt` unless ``stop`` is the clean end.

    Raises:
        JournalCorrupt: For a record missing or out of place.
    """
    if not stop.clean:
        raise JournalCorrupt(stop.path, stop.offset, f"{stop.reason}: {stop.detail}")


def _read_connected(
    address: NatsAddress,
    span: tuple[int, int | None],
    on_stop: Callable[[ReadStop], None],
) -> Iterator[tuple[int, bytes]]:
    """Connect, yield the records of ``span`` (None: up to the last stored), close.

    Raises:
        JournalError: If the server is unreachable or holds no such journal.
    """
    io, client = _connected(address, f"paperx-nats-read-{next(_READERS)}")
    try:
        state = io.run(_stream_state(client, address), _API_TIMEOUT_S)
        if state is None or state.header is None:
            msg = f"{address.url} holds no journal"
            raise JournalError(msg)
        first_seq = state.header.first_seq
        from_seq, until = span
        if until is None:
            until = state.last - 2 + first_seq
        yield from _read_records(
            (io, client), address, first_seq, (from_seq, until), on_stop
        )
    finally:
        _disconnect(io, client)


def _read_records(
    connection: tuple[_IoLoop, Client],
    address: NatsAddress,
    first_seq: int,
    span: tuple[int, int],
    on_stop: Callable[[ReadStop], None],
) -> Iterator[tuple[int, bytes]]:
    """Yield ``(seq, payload)`` for ``span = (from_seq, until)`` from the stream.

    Reads through an ephemeral pull consumer (made and deleted over the
    nats-py ``connection``) in bulk over a connection of its own
    (`PullReader`). A record missing or out of place ends reading with
    ``on_stop`` (which may raise); a clean end calls it with reason ``"end"``.
    A read that fails after records came (the server drops a reader that
    leaves its data unread for its write deadline, 10 s by default: a caller
    that pauses) goes on from the next record over a new connection.

    Raises:
        NatsReadError: If the bulk read fails with no record read since the
            last (re)start (see `PullReader`).
    """
    from_seq, until = span
    expected = max(from_seq, first_seq)
    while expected <= until:
        start = expected
        try:
            with contextlib.closing(
                _pull(connection, address, first_seq, (start, until))
            ) as chunks:
                for messages in chunks:
                    for msg_id, payload in messages:
                        # the consumer delivers in stream order, so the records'
                        # msg ids alone prove nothing is missing or out of place
                        if not msg_id.startswith(b"%d." % expected):
                            on_stop(_gap(address, expected, msg_id))
                            return
                        yield expected, payload
                        expected += 1
            break  # every record asked for, or the stream holds no more
        except NatsReadError as exc:
            if expected == start:
                raise
            _log.info(
                "nats_read_resumed", url=address.url, seq=expected, error=str(exc)
            )
    on_stop(
        ReadStop(
            path=address.url,
            offset=0,
            reason="end",
            detail="",
            last_seq=until,
            dropped_bytes=0,
        )
        if expected > until
        else _gap(address, expected, None)
    )


def _pull(
    connection: tuple[_IoLoop, Client],
    address: NatsAddress,
    first_seq: int,
    span: tuple[int, int],
) -> Generator[list[WireMessage], None, None]:
    """Yield the messages of records ``span`` in chunks, through a consumer.

    Raises:
        NatsReadError: If the bulk read fails.
    """
    io, client = connection
    from_seq, until = span
    name = io.run(_open_consumer(client, address, first_seq, from_seq), 30.0)
    try:
        host, _, port = address.server.removeprefix("nats://").rpartition(":")
        with PullReader(host, int(port), batch=_READ_BATCH) as reader:
            yield from reader.read(address.stream, name, until - from_seq + 1)
    finally:
        io.run(_close_consumer(client, address, name), _API_TIMEOUT_S)


def _gap(address: NatsAddress, expected: int, msg_id: bytes | None) -> ReadStop:
    """Return the stop for a message that is not the record due next (None: no more)."""
    found = (
        "the stream holds no more records"
        if msg_id is None
        else f"the stream gave msg id {msg_id.decode(errors='replace')!r}"
    )
    return ReadStop(
        path=address.url,
        offset=0,
        reason="seq",
        detail=f"seq {expected} was due, {found}",
        last_seq=expected - 1,
        dropped_bytes=0,
    )


async def _open_consumer(
    client: Client, address: NatsAddress, first_seq: int, from_seq: int
) -> str:
    """Create a pull consumer of the records from ``from_seq``; return its name."""
    from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy  # noqa: PLC0415

    js = client.jetstream(timeout=_API_TIMEOUT_S)
    name = f"paperx-read-{uuid.uuid4().hex[:12]}"
    config = ConsumerConfig(
        name=name,
        deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
        opt_start_seq=_stream_seq(from_seq, first_seq),
        ack_policy=AckPolicy.NONE,
        filter_subject=address.records_subject,
        inactive_threshold=60.0,  # the server drops it if a reader dies
        mem_storage=True,
    )
    await js.add_consumer(address.stream, config=config)
    return name


async def _close_consumer(client: Client, address: NatsAddress, name: str) -> None:
    """Delete the consumer (best effort: it also expires)."""
    with contextlib.suppress(Exception):
        js = client.jetstream(timeout=_API_TIMEOUT_S)
        await js.delete_consumer(address.stream, name)


class NatsJournalReader:
    """A read-only view of a NATS journal: it never publishes, creates or deletes.

    The counterpart of :class:`~exchange.journal.reader.JournalReader` for
    ``paperx replay``: :attr:`header`, :meth:`read` and :attr:`stop`. Each
    read connects, reads every record stored when it starts, and disconnects.
    """

    def __init__(self, url: str) -> None:
        """Read the journal's header.

        Raises:
            JournalError: If the server is unreachable or holds no such journal.
            JournalCorrupt: If the stream's first message is not a header.
        """
        self.address = parse_nats_url(url)
        self.stop: ReadStop | None = None
        io, client = _connected(self.address, "paperx-nats-header")
        try:
            state = io.run(_stream_state(client, self.address), _API_TIMEOUT_S)
        finally:
            _disconnect(io, client)
        if state is None or state.header is None:
            msg = f"{url} holds no journal"
            raise JournalError(msg)
        self.header: JournalHeader = state.header

    def read(self, from_seq: int = 1) -> Iterator[tuple[int, bytes]]:
        """Yield every ``(seq, payload)`` stored now with ``seq >= from_seq``, in order.

        Reading ends at the last record stored when it began, or at the first
        record missing or out of place; :attr:`stop` then says which.
        """
        self.stop = None
        return _read_connected(self.address, (from_seq, None), self._record)

    def _record(self, stop: ReadStop) -> None:
        """Keep where reading stopped."""
        self.stop = stop

    def bisect(self, key: Callable[[bytes], int], target: int) -> int:
        """Return the first seq whose payload's ``key`` is ``target`` or more.

        ``key`` must not decrease along the journal (an exchange time does
        not): a binary search fetches about log2(records) single records,
        so a reader can start at a point in time without reading up to it.
        Past the last record if none qualifies.

        Raises:
            JournalError: If the server is unreachable or a record is missing.
        """
        io, client = _connected(self.address, "paperx-nats-bisect")
        try:
            return io.run(self._bisect(client, key, target), _API_TIMEOUT_S * 6)
        finally:
            _disconnect(io, client)

    async def _bisect(
        self, client: Client, key: Callable[[bytes], int], target: int
    ) -> int:
        """Search the stream stored now (see `bisect`)."""
        import nats.js.errors  # noqa: PLC0415 -- an optional dependency

        js = client.jetstream(timeout=_API_TIMEOUT_S)
        first_seq = self.header.first_seq
        state = await _stream_state(client, self.address)
        low = first_seq
        high = first_seq if state is None else state.last - 2 + first_seq + 1
        while low < high:
            middle = (low + high) // 2
            try:
                message = await js.get_msg(
                    self.address.stream, _stream_seq(middle, first_seq)
                )
            except nats.js.errors.NotFoundError as exc:
                msg = f"{self.address.url}: record {middle} is missing"
                raise JournalError(msg) from exc
            if key(message.data or b"") < target:
                low = middle + 1
            else:
                high = middle
        return low


def delete_nats_journal(url: str) -> bool:
    """Delete the journal at ``url``: its stream and its snapshot bucket.

    Returns:
        Whether the stream existed.

    Raises:
        JournalError: If the server cannot be reached.
    """
    address = parse_nats_url(url)
    io, client = _connected(address, "paperx-nats-delete")
    try:
        return io.run(_delete_streams(client, address), _API_TIMEOUT_S)
    finally:
        _disconnect(io, client)


async def _delete_streams(client: Client, address: NatsAddress) -> bool:
    """Delete the journal's stream and its snapshot bucket; return if the first was."""
    import nats.js.errors  # noqa: PLC0415 -- an optional dependency

    js = client.jetstream(timeout=_API_TIMEOUT_S)
    with contextlib.suppress(nats.js.errors.NotFoundError):
        await js.delete_object_store(address.snapshot_bucket)
    try:
        return await js.delete_stream(address.stream)
    except nats.js.errors.NotFoundError:
        return False
