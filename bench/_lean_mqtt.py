"""A minimal MQTT 3.1.1 client on asyncio streams, for measuring (issue #8).

It speaks only what the exchange's server needs: CONNECT/CONNACK,
SUBSCRIBE/SUBACK, PUBLISH at QoS 0 and 1 both ways (PUBACK sent for every
QoS 1 message received, awaited for every QoS 1 message sent), PINGREQ at
half the keepalive, and DISCONNECT. No reconnect, no QoS 2, no TLS, no
session state kept across connections: it exists to show what a protocol
layer costs when it does nothing else, against aiomqtt (paho) and gmqtt, in
``bench/mqtt_clients.py``.

Two choices make it cheap. Received messages are handed to a plain callback
from the read loop, which parses every whole packet of a read in one pass
(no task, queue or future per message). Everything written during one turn
of the event loop (answers, PUBACKs) is gathered into one buffer and handed
to the socket once, at the end of the turn, so a burst of N messages costs a
few system calls rather than 2N.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Callable

__all__ = ["LeanClient", "MqttProtocolError"]

_CONNECT = 0x10
_CONNACK = 0x20
_PUBLISH = 0x30
_PUBACK = 0x40
_SUBSCRIBE = 0x82  # type 8, flags 0b0010 as MQTT 3.1.1 requires
_SUBACK = 0x90
_PINGREQ = b"\xc0\x00"
_PINGRESP = 0xD0
_DISCONNECT = b"\xe0\x00"
_READ_SIZE = 1 << 16
_MAX_PACKET_ID = 0xFFFF

_U16 = struct.Struct("!H")

MessageHandler = Callable[[str, bytes], None]
"""Called with (topic, payload) for each message received, in order."""


class MqttProtocolError(RuntimeError):
    """The broker refused us or sent something this client does not speak."""


def _length(size: int) -> bytes:
    """Return MQTT's variable-length encoding of ``size`` (remaining length)."""
    out = bytearray()
    while True:
        size, digit = divmod(size, 128)
        if size:
            out.append(digit | 0x80)
        else:
            out.append(digit)
            return bytes(out)


def _string(text: str) -> bytes:
    """Return a UTF-8 string with its two-byte length prefix."""
    raw = text.encode()
    return _U16.pack(len(raw)) + raw


class LeanClient:
    """One MQTT 3.1.1 connection; ``on_message`` gets every message received.

    Use: ``client = await LeanClient.connect(host, port, "id", on_message)``,
    ``await client.subscribe("a/+", 1)``, ``client.publish(topic, payload, 1)``
    (returns a future resolved by the PUBACK, or None at QoS 0), ``await
    client.drain()`` now and then when publishing in a loop, ``await
    client.close()``. ``max_inflight`` QoS 1 messages may await their PUBACK at
    once; ``publish_wait`` waits for room first.
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
        self.closed: asyncio.Future[None] = self._loop.create_future()

    @classmethod
    async def connect(
        cls,
        host: str,
        port: int,
        client_id: str,
        on_message: MessageHandler,
        *,
        keepalive: int = 60,
        max_inflight: int = 1024,
        username: str | None = None,
        password: str | None = None,
    ) -> LeanClient:
        """Open a clean session; return once the broker accepted it.

        Raises:
            MqttProtocolError: the broker refused the connection.
            OSError: nothing listens at ``host:port``.
        """
        reader, writer = await asyncio.open_connection(host, port)
        sock = writer.get_extra_info("socket")
        if sock is not None:  # asyncio sets it already; say so for the reader
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client = cls(reader, writer, on_message, max_inflight)
        flags = 0x02  # clean session
        payload = _string(client_id)
        if username is not None:
            flags |= 0x80
            payload += _string(username)
        if password is not None:
            flags |= 0x40
            payload += _string(password)
        body = _string("MQTT") + bytes([4, flags]) + _U16.pack(keepalive) + payload
        connack = client._loop.create_future()
        client._acked[-1] = connack
        client._send(bytes([_CONNECT]) + _length(len(body)) + body)
        client._reading = asyncio.create_task(client._read())
        await connack
        if keepalive:
            client._pinging = asyncio.create_task(client._ping(keepalive / 2))
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

    async def drain(self) -> None:
        """Wait while the socket's send buffer is over its high-water mark."""
        self._flush()
        await self._writer.drain()

    def _packet_id(self) -> int:
        """Return the next packet identifier (1..65535, never 0)."""
        self._next_id = self._next_id % _MAX_PACKET_ID + 1
        return self._next_id

    def publish(
        self, topic: str, payload: bytes, qos: int = 0
    ) -> asyncio.Future[None] | None:
        """Send a message; at QoS 1 return the future its PUBACK resolves.

        The caller keeps within ``max_inflight`` (see `publish_wait`); past it
        the broker may stop reading from this client until acks come back.
        """
        raw_topic = topic.encode()
        if qos == 0:
            size = 2 + len(raw_topic) + len(payload)
            self._send(
                b"%c%s%s%s%s"
                % (
                    _PUBLISH,
                    _length(size),
                    _U16.pack(len(raw_topic)),
                    raw_topic,
                    payload,
                )
            )
            return None
        packet_id = self._packet_id()
        size = 4 + len(raw_topic) + len(payload)
        self._send(
            b"%c%s%s%s%s%s"
            % (
                _PUBLISH | 0x02,
                _length(size),
                _U16.pack(len(raw_topic)),
                raw_topic,
                _U16.pack(packet_id),
                payload,
            )
        )
        done = self._loop.create_future()
        self._inflight[packet_id] = done
        if len(self._inflight) >= self._max_inflight:
            self._room.clear()
        return done

    async def publish_wait(
        self, topic: str, payload: bytes, qos: int = 0
    ) -> asyncio.Future[None] | None:
        """`publish`, after waiting for room in the QoS 1 window."""
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
            MqttProtocolError: the broker refused the subscription (0x80).
        """
        packet_id = self._packet_id()
        body = _U16.pack(packet_id) + _string(topic_filter) + bytes([qos])
        granted: asyncio.Future[int] = self._loop.create_future()
        self._acked[packet_id] = granted
        self._send(bytes([_SUBSCRIBE]) + _length(len(body)) + body)
        code = await granted
        if code == 0x80:  # MQTT's "failure" return code
            msg = f"subscription to {topic_filter!r} refused"
            raise MqttProtocolError(msg)
        return code

    async def _ping(self, every: float) -> None:
        """Send PINGREQ every ``every`` seconds (the broker answers PINGRESP)."""
        while True:
            await asyncio.sleep(every)
            self._send(_PINGREQ)

    async def close(self) -> None:
        """Send DISCONNECT and close the connection."""
        if self._pinging is not None:
            self._pinging.cancel()
        if not self._transport.is_closing():
            self._send(_DISCONNECT)
            self._flush()
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
        if self._reading is not None:
            self._reading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reading

    # ------------------------------------------------------------ reading

    async def _read(self) -> None:
        """Parse packets until the connection closes; resolve ``closed`` then."""
        buffer = b""
        read = self._reader.read
        try:
            while chunk := await read(_READ_SIZE):
                buffer = self._parse(buffer + chunk if buffer else chunk)
        except (OSError, MqttProtocolError) as exc:
            if not self.closed.done():
                self.closed.set_exception(exc)
        finally:
            if not self.closed.done():
                self.closed.set_result(None)
            error = ConnectionError("MQTT connection closed")
            for puback in self._inflight.values():
                if not puback.done():
                    puback.set_exception(error)
            for ack in self._acked.values():
                if not ack.done():
                    ack.set_exception(error)

    def _parse(self, data: bytes) -> bytes:  # noqa: C901, PLR0912 -- one dispatch
        """Handle every whole packet in ``data``; return the incomplete rest."""
        view = memoryview(data)
        end = len(data)
        position = 0
        on_message = self.on_message
        while end - position >= 2:  # the shortest packet
            header = data[position]
            size = 0
            shift = 0
            cursor = position + 1
            while True:
                if cursor >= end:
                    return data[position:]
                digit = data[cursor]
                cursor += 1
                size |= (digit & 0x7F) << shift
                if digit < 0x80:  # no continuation bit
                    break
                shift += 7
            stop = cursor + size
            if stop > end:
                return data[position:]
            kind = header & 0xF0
            if kind == _PUBLISH:
                topic_end = cursor + 2 + ((data[cursor] << 8) | data[cursor + 1])
                topic = str(view[cursor + 2 : topic_end], "utf-8")
                if header & 0x06:  # QoS 1 (QoS 2 is never subscribed to)
                    # acknowledged once handled: a handler that raises gets
                    # the message again from the broker on the next session
                    on_message(topic, data[topic_end + 2 : stop])
                    self._send(b"\x40\x02" + data[topic_end : topic_end + 2])
                else:
                    on_message(topic, data[topic_end:stop])
            elif kind == _PUBACK:
                self._acknowledged((data[cursor] << 8) | data[cursor + 1])
            elif kind == _SUBACK:
                waiter = self._acked.pop((data[cursor] << 8) | data[cursor + 1])
                waiter.set_result(data[cursor + 2])
            elif kind == _CONNACK:
                if data[cursor + 1]:
                    msg = f"CONNACK refused the connection, code {data[cursor + 1]}"
                    raise MqttProtocolError(msg)
                self._acked.pop(-1).set_result(0)
            elif kind != _PINGRESP:
                msg = f"unexpected MQTT packet type 0x{header:02x}"
                raise MqttProtocolError(msg)
            position = stop
        return data[position:]

    def _acknowledged(self, packet_id: int) -> None:
        """Resolve the PUBACK's future; reopen the window when it has room."""
        done = self._inflight.pop(packet_id, None)
        if done is not None and not done.cancelled():
            done.set_result(None)
        if len(self._inflight) < self._max_inflight:
            self._room.set()

    async def settled(self) -> None:
        """Return once every QoS 1 message sent so far has its PUBACK."""
        while self._inflight:
            await asyncio.gather(*self._inflight.values())
