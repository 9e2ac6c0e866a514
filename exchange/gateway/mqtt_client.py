"""An MQTT 3.1.1 client on asyncio streams: the gateway's link to the broker.

It speaks what the exchange's server needs and nothing more: CONNECT (with
username, password and ``clean_session``) / CONNACK, SUBSCRIBE / SUBACK,
PUBLISH at QoS 0 and 1 both ways, PINGREQ / PINGRESP, DISCONNECT. No QoS 2,
no TLS, no reconnect and no session state kept across connections: the
adapter (`exchange.gateway.mqtt`) reconnects, and its outbox publishes again
what a lost connection did not confirm.

The contract the adapter builds on:

* **sending**: `MqttClient.publish` at QoS 1 returns a future that the
  broker's PUBACK resolves, or that fails with `LinkLost` when the
  connection ends first; at most ``max_inflight`` await their PUBACK
  (`publish_wait` waits for room). At QoS 0 a message is sent once handed to
  the socket (`drain`).
* **receiving**: every message is handed to ``on_message(topic, payload)``
  from the read loop, in order; a QoS 1 message is acknowledged (PUBACK)
  only after the handler returned, so one the handler never saw is sent
  again by the broker (persistent session).
* **losing the link**: `wait_lost` raises `LinkLost` once the connection
  ended (end of stream, socket error, a packet this client does not speak,
  or no packet for a whole keepalive period). Every call after that raises
  `LinkLost` too; nothing ever waits on a dead connection. An exception
  from ``on_message`` also ends the connection (unacknowledged), and
  `wait_lost` raises that exception itself: a bug is not a lost link.

Two choices make it cheap (issue #8, docs/benchmarks-notes.md: 12 us of CPU per answered
request against aiomqtt's 106). Received messages go to a plain callback
from the read loop, which parses every whole packet of a read in one pass
(no task, queue or future per message). Everything written during one turn
of the event loop (answers, PUBACKs) is gathered into one buffer and handed
to the socket once, at the end of the turn, so a burst of N messages costs a
few system calls rather than 2N. The socket sets TCP_NODELAY.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Callable
from typing import Any, NoReturn

__all__ = [
    "ConnectRefused",
    "LinkLost",
    "MessageHandler",
    "MqttClient",
    "MqttError",
    "decode_length",
    "encode_length",
]

CONNECT = 0x10
CONNACK = 0x20
PUBLISH = 0x30
PUBACK = 0x40
SUBSCRIBE = 0x82  # type 8, flags 0b0010 as MQTT 3.1.1 requires
SUBACK = 0x90
PINGREQ = b"\xc0\x00"
PINGRESP = 0xD0
DISCONNECT = b"\xe0\x00"
_READ_SIZE = 1 << 16
_MAX_PACKET_ID = 0xFFFF
_MAX_LENGTH = 268_435_455  # four length bytes: MQTT's largest packet
_CLEAN_SESSION = 0x02
_PASSWORD = 0x40
_USERNAME = 0x80
_SUBSCRIBE_FAILED = 0x80

_U16 = struct.Struct("!H")

MessageHandler = Callable[[str, bytes], None]
"""Called with (topic, payload) for each message received, in order."""


class MqttError(Exception):
    """The root of this client's errors."""


class LinkLost(MqttError):
    """The connection ended, or could not be made; connect again to go on."""


class ConnectRefused(MqttError):
    """The broker answered CONNECT with a non-zero code (5: not authorised)."""

    def __init__(self, code: int) -> None:
        """Record CONNACK's return ``code``."""
        super().__init__(f"the broker refused the connection, CONNACK code {code}")
        self.code = code


def encode_length(size: int) -> bytes:
    """Return MQTT's variable-length encoding of ``size`` (remaining length).

    Raises:
        ValueError: ``size`` is negative or over MQTT's 268,435,455.
    """
    if not 0 <= size <= _MAX_LENGTH:
        msg = f"remaining length {size} is outside 0..{_MAX_LENGTH}"
        raise ValueError(msg)
    out = bytearray()
    while True:
        size, digit = divmod(size, 128)
        if size:
            out.append(digit | 0x80)
        else:
            out.append(digit)
            return bytes(out)


def decode_length(data: bytes, start: int) -> tuple[int, int] | None:
    """Return (remaining length, index after it) read at ``data[start]``.

    Returns None when ``data`` ends inside the encoding.

    Raises:
        LinkLost: the encoding runs over four bytes (not MQTT).
    """
    size = 0
    shift = 0
    cursor = start
    end = len(data)
    while True:
        if cursor >= end:
            return None
        digit = data[cursor]
        cursor += 1
        size |= (digit & 0x7F) << shift
        if digit < 0x80:  # no continuation bit
            return size, cursor
        shift += 7
        if shift > 21:  # four bytes of seven bits
            msg = "malformed remaining length: over four bytes"
            raise LinkLost(msg)


def _string(text: str) -> bytes:
    """Return a UTF-8 string with its two-byte length prefix."""
    raw = text.encode()
    return _U16.pack(len(raw)) + raw


def connect_packet(
    client_id: str,
    *,
    keepalive: int,
    clean_session: bool,
    username: str | None,
    password: str | None,
) -> bytes:
    """Return the CONNECT packet of MQTT 3.1.1 (protocol level 4)."""
    flags = _CLEAN_SESSION if clean_session else 0
    payload = _string(client_id)
    if username is not None:
        flags |= _USERNAME
        payload += _string(username)
    if password is not None:
        flags |= _PASSWORD
        payload += _string(password)
    body = _string("MQTT") + bytes([4, flags]) + _U16.pack(keepalive) + payload
    return bytes([CONNECT]) + encode_length(len(body)) + body


def publish_packet(topic: str, payload: bytes, packet_id: int | None) -> bytes:
    """Return a PUBLISH packet: QoS 1 with ``packet_id``, QoS 0 without one."""
    raw_topic = topic.encode()
    if packet_id is None:
        size = 2 + len(raw_topic) + len(payload)
        return b"%c%s%s%s%s" % (
            PUBLISH,
            encode_length(size),
            _U16.pack(len(raw_topic)),
            raw_topic,
            payload,
        )
    size = 4 + len(raw_topic) + len(payload)
    return b"%c%s%s%s%s%s" % (
        PUBLISH | 0x02,
        encode_length(size),
        _U16.pack(len(raw_topic)),
        raw_topic,
        _U16.pack(packet_id),
        payload,
    )


def subscribe_packet(packet_id: int, topic_filter: str, qos: int) -> bytes:
    """Return a SUBSCRIBE packet of one topic filter."""
    body = _U16.pack(packet_id) + _string(topic_filter) + bytes([qos])
    return bytes([SUBSCRIBE]) + encode_length(len(body)) + body


class MqttClient:
    """One MQTT 3.1.1 connection; ``on_message`` gets every message received.

    Use: ``client = await MqttClient.connect(host, port, "id", on_message)``,
    ``await client.subscribe("a/+", 1)``, ``client.publish(topic, payload, 1)``
    (returns a future resolved by the PUBACK, or None at QoS 0), ``await
    client.drain()`` now and then when publishing in a loop, ``await
    client.close()``. ``max_inflight`` QoS 1 messages may await their PUBACK at
    once; `publish_wait` waits for room first.
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        on_message: MessageHandler,
        max_inflight: int,
    ) -> None:
        """Wrap an open connection; use `connect` rather than this."""
        self._reader = reader
        self._writer = writer
        self._transport = writer.transport
        self._loop = asyncio.get_running_loop()
        self.on_message = on_message
        self._out = bytearray()
        self._flush_scheduled = False
        self._next_id = 0
        self._inflight: dict[int, asyncio.Future[None]] = {}
        self._max_inflight = max_inflight
        self._room = asyncio.Event()
        self._room.set()
        self._acked: dict[int, asyncio.Future[int]] = {}  # SUBACK; CONNACK at -1
        self._reading: asyncio.Task[None] | None = None
        self._pinging: asyncio.Task[None] | None = None
        self._last_read = self._loop.time()
        self._ended = asyncio.Event()
        self._lost: LinkLost | None = None
        self._failure: Exception | None = None

    @classmethod
    async def connect(
        cls,
        host: str,
        port: int,
        client_id: str,
        on_message: MessageHandler,
        *,
        keepalive: int = 60,
        clean_session: bool = True,
        username: str | None = None,
        password: str | None = None,
        max_inflight: int = 1024,
        connect_timeout: float = 10.0,
    ) -> MqttClient:
        """Connect and log in; return once the broker accepted the session.

        ``keepalive`` seconds (0: none) is the most the connection stays
        silent: a PINGREQ goes out every half of it, and a connection that
        received nothing for a whole period counts as lost.

        Raises:
            ConnectRefused: the broker refused the login (CONNACK code).
            LinkLost: nothing answered at ``host:port`` within ``connect_timeout``
                seconds, or the connection ended before CONNACK.
        """
        try:
            async with asyncio.timeout(connect_timeout):
                reader, writer = await asyncio.open_connection(host, port)
        except (OSError, TimeoutError) as exc:
            msg = f"cannot connect to {host}:{port}: {exc or 'timed out'}"
            raise LinkLost(msg) from exc
        sock = writer.get_extra_info("socket")
        if sock is not None:  # asyncio sets it already; say so for the reader
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client = cls(reader, writer, on_message, max_inflight)
        connack: asyncio.Future[int] = client._loop.create_future()
        client._acked[-1] = connack
        client._send(
            connect_packet(
                client_id,
                keepalive=keepalive,
                clean_session=clean_session,
                username=username,
                password=password,
            )
        )
        client._reading = asyncio.create_task(client._read())
        try:
            async with asyncio.timeout(connect_timeout):
                code = await connack
        except (MqttError, TimeoutError) as exc:
            await client.close()
            if isinstance(exc, MqttError):
                raise
            msg = f"no CONNACK from {host}:{port} within {connect_timeout} s"
            raise LinkLost(msg) from exc
        if code:
            await client.close()
            raise ConnectRefused(code)
        if keepalive:
            client._pinging = asyncio.create_task(client._ping(keepalive))
        return client

    # ------------------------------------------------------------ writing

    def _send(self, packet: bytes) -> None:
        """Queue ``packet``; everything queued in this turn goes out together."""
        self._out += packet
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        """Hand this turn's packets to the transport in one write."""
        self._flush_scheduled = False
        if self._out and not self._transport.is_closing():
            self._transport.write(bytes(self._out))
        self._out.clear()

    def _check_link(self) -> None:
        """Raise `LinkLost` if the connection ended.

        Raises:
            LinkLost: it did.
        """
        if self._lost is not None:
            raise self._lost

    async def drain(self) -> None:
        """Send what is queued; wait while the socket's send buffer is full.

        Raises:
            LinkLost: the connection ended.
        """
        self._check_link()
        self._flush()
        try:
            await self._writer.drain()
        except OSError as exc:
            self._end(exc)
        self._check_link()

    def _packet_id(self) -> int:
        """Return the next packet identifier not in use (1..65535, never 0)."""
        while True:
            self._next_id = self._next_id % _MAX_PACKET_ID + 1
            if self._next_id not in self._inflight and self._next_id not in self._acked:
                return self._next_id

    def publish(
        self, topic: str, payload: bytes, qos: int = 0
    ) -> asyncio.Future[None] | None:
        """Send a message; at QoS 1 return the future its PUBACK resolves.

        The future fails with `LinkLost` if the connection ends first. The
        caller keeps within ``max_inflight`` (see `publish_wait`); past it the
        broker may stop reading from this client until acks come back.

        Raises:
            LinkLost: the connection ended already.
        """
        self._check_link()
        if qos == 0:
            self._send(publish_packet(topic, payload, None))
            return None
        packet_id = self._packet_id()
        self._send(publish_packet(topic, payload, packet_id))
        done: asyncio.Future[None] = self._loop.create_future()
        self._inflight[packet_id] = done
        if len(self._inflight) >= self._max_inflight:
            self._room.clear()
        return done

    async def publish_wait(
        self, topic: str, payload: bytes, qos: int = 0
    ) -> asyncio.Future[None] | None:
        """`publish`, after waiting for room in the QoS 1 window.

        Raises:
            LinkLost: the connection ended.
        """
        if qos and not self._room.is_set():
            await self._room.wait()
        return self.publish(topic, payload, qos)

    @property
    def inflight(self) -> int:
        """Return how many QoS 1 messages sent still await their PUBACK."""
        return len(self._inflight)

    async def subscribe(self, topic_filter: str, qos: int = 1) -> int:
        """Subscribe; return the QoS the broker granted.

        Raises:
            MqttError: the broker refused the subscription (SUBACK 0x80).
            LinkLost: the connection ended first.
        """
        self._check_link()
        packet_id = self._packet_id()
        granted: asyncio.Future[int] = self._loop.create_future()
        self._acked[packet_id] = granted
        self._send(subscribe_packet(packet_id, topic_filter, qos))
        code = await granted
        if code == _SUBSCRIBE_FAILED:
            msg = f"subscription to {topic_filter!r} refused"
            raise MqttError(msg)
        return code

    async def _ping(self, keepalive: int) -> None:
        """PINGREQ every half period; end the link after a silent whole one."""
        while True:
            await asyncio.sleep(keepalive / 2)
            if self._loop.time() - self._last_read > keepalive:
                self._end(LinkLost(f"nothing from the broker for {keepalive} s"))
                self._transport.abort()
                return
            self._send(PINGREQ)

    async def wait_lost(self) -> NoReturn:
        """Wait until the connection ends; then raise why.

        Raises:
            LinkLost: once the connection ended.
            Exception: what ``on_message`` raised, if that ended it: a bug,
                which no reconnect would cure (the broker sends the message
                again).
        """
        await self._ended.wait()
        if self._failure is not None:
            raise self._failure
        raise self._lost or LinkLost("MQTT connection closed")

    async def settled(self) -> None:
        """Return once every QoS 1 message sent so far has its PUBACK.

        Raises:
            LinkLost: the connection ended first.
        """
        while self._inflight:
            await asyncio.gather(*self._inflight.values())

    async def close(self) -> None:
        """Send DISCONNECT and close the connection (no error if it is gone)."""
        if self._pinging is not None:
            self._pinging.cancel()
        if not self._transport.is_closing():
            self._send(DISCONNECT)
            self._flush()
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
        if self._reading is not None:
            self._reading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reading
        self._end(None)

    # ------------------------------------------------------------ reading

    async def _read(self) -> None:
        """Parse packets until the connection ends; then fail what waits on it."""
        buffer = b""
        read = self._reader.read
        loop = self._loop
        try:
            while chunk := await read(_READ_SIZE):
                self._last_read = loop.time()
                buffer = self._parse(buffer + chunk if buffer else chunk)
        except (OSError, MqttError) as exc:
            self._end(exc)
            self._transport.abort()
        except Exception as exc:  # noqa: BLE001 -- wait_lost raises it
            self._failure = exc  # the handler's (or this client's) bug, not the link's
            self._end(exc)
            self._transport.abort()
        finally:
            self._end(None)

    def _end(self, cause: BaseException | None) -> None:
        """Mark the link lost (once); fail every future that waits on it."""
        if self._lost is not None:
            return
        if isinstance(cause, LinkLost):
            lost = cause
        else:
            why = "closed" if cause is None else repr(cause)
            lost = LinkLost(f"MQTT connection lost: {why}")
            lost.__cause__ = cause
        self._lost = lost
        self._ended.set()
        self._room.set()  # publish_wait then raises rather than waits
        if self._pinging is not None:
            self._pinging.cancel()
        waiters: list[asyncio.Future[Any]] = [*self._inflight.values()]
        waiters += self._acked.values()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_exception(lost)
                waiter.exception()  # retrieved: a caller may have left already
        self._inflight.clear()
        self._acked.clear()

    def _parse(self, data: bytes) -> bytes:  # noqa: C901, PLR0912 -- one dispatch
        """Handle every whole packet in ``data``; return the incomplete rest.

        Raises:
            LinkLost: a packet this client does not speak.
        """
        view = memoryview(data)
        end = len(data)
        position = 0
        on_message = self.on_message
        while end - position >= 2:  # the shortest packet
            header = data[position]
            found = decode_length(data, position + 1)
            if found is None:
                break
            size, cursor = found
            stop = cursor + size
            if stop > end:
                break
            kind = header & 0xF0
            if kind == PUBLISH:
                topic_end = cursor + 2 + ((data[cursor] << 8) | data[cursor + 1])
                topic = str(view[cursor + 2 : topic_end], "utf-8")
                qos = (header >> 1) & 0x03
                if qos == 1:
                    # acknowledged once handled: a message the handler never
                    # finished comes again from the broker on the next session
                    on_message(topic, data[topic_end + 2 : stop])
                    self._send(b"\x40\x02" + data[topic_end : topic_end + 2])
                elif qos == 0:
                    on_message(topic, data[topic_end:stop])
                else:  # never subscribed to: the broker must not send it
                    msg = f"PUBLISH at QoS {qos} on {topic!r}"
                    raise LinkLost(msg)
            elif kind == PUBACK:
                self._acknowledged((data[cursor] << 8) | data[cursor + 1])
            elif kind == SUBACK:
                waiter = self._acked.pop((data[cursor] << 8) | data[cursor + 1], None)
                if waiter is not None:
                    waiter.set_result(data[cursor + 2])
            elif kind == CONNACK:
                waiter = self._acked.pop(-1, None)
                if waiter is not None:
                    waiter.set_result(data[cursor + 1])
            elif kind != PINGRESP:
                msg = f"unexpected MQTT packet type 0x{header:02x}"
                raise LinkLost(msg)
            position = stop
        return data[position:]

    def _acknowledged(self, packet_id: int) -> None:
        """Resolve the PUBACK's future; reopen the window when it has room."""
        done = self._inflight.pop(packet_id, None)
        if done is not None and not done.cancelled():
            done.set_result(None)
        if len(self._inflight) < self._max_inflight:
            self._room.set()
