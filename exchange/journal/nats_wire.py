r"""Bulk reads of a JetStream pull consumer over a plain NATS connection of its own.

Why not nats-py. nats-py hands each message through its parser, two
coroutines, a header dict, a ``Msg`` object and a queue; a pull ``fetch``
then waits for each message with a timeout task of its own. Reading a
journal that way tops out near 12,000 records/s here, and even a bare
nats-py subscription callback near 30,000. A journal read needs none of it:
one consumer's messages, in order, each a payload and the two numbers that
place it. :class:`PullReader` speaks the handful of protocol operations that
takes (``INFO``, ``CONNECT``, ``SUB``, ``PUB``, ``PING``/``PONG``, ``HMSG``,
``MSG``, ``-ERR``) on a blocking socket in the caller's own thread, and parses
each received chunk of up to 1 MiB in one pass (about 10x the nats-py read).
The JetStream management calls (streams, consumers) stay with nats-py.

Pulling. A pull request ``{"batch": n, "no_wait": true}``
goes to ``$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>`` with our inbox as
its reply subject; the server delivers up to ``n`` messages there, then, when
the stream holds no more, a ``404``/``408`` status (the end). Two requests
are outstanding at a time and the next is sent only once a whole batch has
been handed to the caller, so a slow caller holds at most two batches in
the sockets, never the stream (one that leaves them unread past the
server's write deadline is dropped: the journal's reader then resumes on a
new connection, see ``exchange.journal.nats``). A ``409`` (the consumer is
gone, a limit) or a ``503`` (no such consumer) status, an ``-ERR``, a closed
socket or silence for ``timeout`` seconds raise :class:`NatsReadError`.

Each message comes out as ``(msg_id, payload)``: the value of its
``Nats-Msg-Id`` header (``b""`` if it has none) and its data.
"""

from __future__ import annotations

import json
import socket
import uuid
from typing import TYPE_CHECKING, Final, Self

from exchange.errors import JournalError

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import TracebackType

__all__ = ["NatsReadError", "PullReader", "WireMessage"]

WireMessage = tuple[bytes, bytes]
"""``(msg_id, payload)`` of one delivered message."""

_CRLF: Final = b"\r\n"
_CHUNK: Final = 1 << 20
_MSG_ID: Final = b"Nats-Msg-Id:"
_STATUS_LINE: Final = b"NATS/1.0 "  # a status message's header block starts so
_ENDED: Final = (b"404", b"408")  # no messages (left), request expired
_MAX_LINE: Final = 4096  # a longer control line is not one we asked for
_SID: Final = b"1"


class NatsReadError(JournalError):
    """Raised when a bulk read fails: connection, protocol or consumer trouble."""


class PullReader:
    """One connection reading one pull consumer's messages in bulk.

    Use as a context manager (the socket closes on exit) and call
    :meth:`read` once.
    """

    def __init__(
        self, host: str, port: int, *, timeout: float = 30.0, batch: int = 8192
    ) -> None:
        """Connect to ``host:port`` and subscribe to an inbox of our own.

        ``timeout`` bounds every wait for the server; ``batch`` is the number
        of messages per pull request.

        Raises:
            NatsReadError: If the server cannot be reached or refuses us.
        """
        self._batch = batch
        self._inbox = b"_INBOX.paperx." + uuid.uuid4().hex.encode()
        try:
            self._sock = socket.create_connection((host, port), timeout)
        except OSError as exc:
            msg = f"nats://{host}:{port}: cannot connect: {exc}"
            raise NatsReadError(msg) from exc
        self._buf = b""
        self._pos = 0
        try:
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._handshake()
        except BaseException:
            self._sock.close()
            raise

    def __enter__(self) -> Self:
        """Return the reader itself."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the connection."""
        self.close()

    def close(self) -> None:
        """Close the connection (the server drops the subscription with it)."""
        self._sock.close()

    def read(
        self, stream: str, consumer: str, count: int
    ) -> Iterator[list[WireMessage]]:
        """Yield the consumer's next ``count`` messages, a received chunk at a time.

        Fewer come out if the stream ends first (the server says it holds
        no more); the caller sees that from the count.

        Raises:
            NatsReadError: See the module docstring.
        """
        subject = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}".encode()
        asked = got = 0
        due: list[int] = []  # the message counts that complete each pull in flight
        while got < count:
            while asked < count and len(due) < 2:  # two pulls in flight
                asked += self._pull(subject, min(self._batch, count - asked))
                due.append(asked)
            messages, ended = self._receive()
            del messages[count - got :]  # never more than asked for
            got += len(messages)
            while due and got >= due[0]:
                due.pop(0)
            if messages:
                yield messages
            if ended:
                return

    # ------------------------------------------------------------ protocol

    def _handshake(self) -> None:
        """Read INFO, send CONNECT and SUB, and wait for the PONG of a PING."""
        line = self._line()
        if not line.startswith(b"INFO "):
            msg = f"not a NATS server: {line[:80]!r}"
            raise NatsReadError(msg)
        info = json.loads(line[5:])
        if info.get("tls_required") or info.get("auth_required"):
            msg = "bulk reads need a server without TLS or authentication"
            raise NatsReadError(msg)
        if not info.get("headers"):
            msg = "the NATS server does not support headers"
            raise NatsReadError(msg)
        connect = {
            "verbose": False,
            "pedantic": False,
            "headers": True,
            "no_responders": True,
            "protocol": 1,
            "lang": "python",
            "version": "paperx",
            "name": "paperx-journal-reader",
        }
        self._send(
            b"CONNECT " + json.dumps(connect).encode() + _CRLF
            + b"SUB " + self._inbox + b" " + _SID + _CRLF
            + b"PING" + _CRLF
        )  # fmt: skip
        while (line := self._line()) != b"PONG":
            self._control(line)

    def _pull(self, subject: bytes, batch: int) -> int:
        """Send one pull request for ``batch`` messages; return ``batch``."""
        body = json.dumps({"batch": batch, "no_wait": True}).encode()
        self._send(b"PUB %s %s %d\r\n%s\r\n" % (subject, self._inbox, len(body), body))
        return batch

    def _receive(self) -> tuple[list[WireMessage], bool]:
        """Return the messages of the next received chunk, and whether the read ended.

        Blocks until at least one whole message or status is in.
        """
        messages: list[WireMessage] = []
        while True:
            ended = self._parse(messages)
            if messages or ended:
                return messages, ended
            self._fill()

    def _parse(self, out: list[WireMessage]) -> bool:
        """Parse every whole operation in the buffer into ``out``; True at the end.

        The hot loop of a read: one pass over the chunk, a few slices per
        message (the sizes are the last fields of a message's line).
        """
        buf, pos = self._buf, self._pos
        find, rfind, startswith = buf.find, buf.rfind, buf.startswith
        size = len(buf)
        ended = False
        while True:
            eol = find(_CRLF, pos)
            if eol < 0:
                if size - pos > _MAX_LINE:
                    msg = "a control line longer than 4096 bytes"
                    raise NatsReadError(msg)
                break
            headers = startswith(b"HMSG ", pos)
            if headers or startswith(b"MSG ", pos):
                total = rfind(b" ", pos, eol)
                start = eol + 2
                end = start + int(buf[total + 1 : eol])
                if end + 2 > size:
                    break  # the rest of the message is still on its way
                head = start + int(buf[rfind(b" ", pos, total) + 1 : total]) * headers
                pos = end + 2
                if not headers:
                    out.append((b"", buf[start:end]))
                elif startswith(_STATUS_LINE, start):
                    ended = self._status(buf[start:head]) or ended
                else:
                    found = find(_MSG_ID, start, head)
                    msg_id = (
                        buf[found + 12 : find(_CRLF, found, head)].strip()
                        if found >= 0
                        else b""
                    )
                    out.append((msg_id, buf[head:end]))
            else:
                self._control(buf[pos:eol])
                pos = eol + 2
        self._buf, self._pos = buf, pos
        return ended

    def _status(self, header: bytes) -> bool:
        """Handle a status message; return True if it ends the read.

        Raises:
            NatsReadError: For a status that is trouble (409, 503, ...).
        """
        line = header.split(_CRLF, 1)[0]
        code = line[len(_STATUS_LINE) : len(_STATUS_LINE) + 3]
        if code in _ENDED:
            return True
        if code == b"100":  # an idle heartbeat: not asked for, harmless
            return False
        msg = f"JetStream refused the read: {line.decode(errors='replace')}"
        raise NatsReadError(msg)

    def _control(self, line: bytes) -> None:
        """Handle a control line other than a message.

        Raises:
            NatsReadError: For ``-ERR`` or anything unknown.
        """
        if line == b"PING":
            self._send(b"PONG" + _CRLF)
        elif line in (b"PONG", b"+OK") or line.startswith(b"INFO "):
            pass
        else:
            msg = f"the NATS server said {line[:200].decode(errors='replace')!r}"
            raise NatsReadError(msg)

    # ------------------------------------------------------------ socket

    def _line(self) -> bytes:
        """Return the next control line (without its CRLF), reading as needed."""
        while (eol := self._buf.find(_CRLF, self._pos)) < 0:
            self._fill()
        line = self._buf[self._pos : eol]
        self._pos = eol + 2
        return line

    def _fill(self) -> None:
        """Append the next chunk from the socket to what is left of the buffer.

        Raises:
            NatsReadError: If the server closes the connection or stays silent.
        """
        try:
            chunk = self._sock.recv(_CHUNK)
        except TimeoutError:
            msg = "the NATS server went silent"
            raise NatsReadError(msg) from None
        except OSError as exc:
            msg = f"the NATS connection failed: {exc}"
            raise NatsReadError(msg) from exc
        if not chunk:
            msg = "the NATS server closed the connection"
            raise NatsReadError(msg)
        self._buf = self._buf[self._pos :] + chunk
        self._pos = 0

    def _send(self, data: bytes) -> None:
        """Write ``data`` to the socket.

        Raises:
            NatsReadError: If the write fails.
        """
        try:
            self._sock.sendall(data)
        except OSError as exc:
            msg = f"the NATS connection failed: {exc}"
            raise NatsReadError(msg) from exc
