"""The bulk NATS reader against a scripted server: framing, statuses, failures.

The real JetStream server is in tests/integration/test_journal_nats.py;
here a scripted one says exactly what a test needs, in pieces of a few
bytes so every message is split across reads.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from exchange.journal.nats_wire import NatsReadError, PullReader

INFO = b'INFO {"server_id":"scripted","headers":true,"max_payload":1048576}\r\n'


class Conversation:
    """What the client said to the scripted server."""

    def __init__(self) -> None:
        """Start with nothing heard; the server thread sets ``sock``."""
        self.sock: socket.socket | None = None
        self.heard = b""

    def wait_for(self, text: bytes) -> None:
        """Read until the client has said ``text`` (fails after 5 s)."""
        assert self.sock is not None
        deadline = time.monotonic() + 5
        while text not in self.heard:
            assert time.monotonic() < deadline, f"never heard {text!r}"
            self.heard += self.sock.recv(65536)

    def pulls(self) -> list[dict[str, object]]:
        """Return the pull requests heard so far."""
        bodies = self.heard.split(b"PUB $JS.API.CONSUMER.MSG.NEXT.S.C ")[1:]
        return [json.loads(body.split(b"\r\n")[1]) for body in bodies]


Script = Callable[[socket.socket, Conversation], None]


class Scripted:
    """A server that takes one client through a script, on a thread of its own."""

    def __init__(self, script: Script, info: bytes) -> None:
        """Listen on a free port and wait for the client there."""
        self.talk = Conversation()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.host, self.port = self._listener.getsockname()
        self._thread = threading.Thread(
            target=self._run, args=(script, info), daemon=True
        )
        self._thread.start()

    def _run(self, script: Script, info: bytes) -> None:
        """Accept one client, send INFO and run the script."""
        sock, _ = self._listener.accept()
        with sock:
            self.talk.sock = sock
            sock.sendall(info)
            script(sock, self.talk)
            time.sleep(0.1)  # let the client read everything before the close

    def done(self) -> Conversation:
        """Wait for the script to end; return what the client said."""
        self._thread.join(5)
        self._listener.close()
        return self.talk


def send_in_pieces(sock: socket.socket, data: bytes, piece: int = 7) -> None:
    """Send ``data`` a few bytes at a time, so the reader sees it split anywhere."""
    for at in range(0, len(data), piece):
        sock.sendall(data[at : at + piece])
        time.sleep(0.0005)


@pytest.fixture
def server() -> Iterator[Callable[..., Scripted]]:
    """Start scripted servers; each is stopped after the test."""
    started: list[Scripted] = []

    def start(script: Script, *, info: bytes = INFO) -> Scripted:
        started.append(Scripted(script, info))
        return started[-1]

    yield start
    for scripted in started:
        scripted.done()


def handshake(sock: socket.socket, talk: Conversation) -> None:
    """Answer the client's CONNECT/SUB/PING and wait for its first pull."""
    talk.wait_for(b"PING\r\n")
    sock.sendall(b"PONG\r\n")
    talk.wait_for(b"PUB ")


def hmsg(msg_id: bytes, payload: bytes, *, inbox: bytes = b"_INBOX.x") -> bytes:
    """Return a JetStream message as delivered: headers, then the payload."""
    head = b"NATS/1.0\r\nNats-Msg-Id: " + msg_id + b"\r\nOther: 1\r\n\r\n"
    reply = b"$JS.ACK.S.C.1.5.5.1700000000000000000.0"
    return (
        b"HMSG %s 1 %s %d %d\r\n" % (inbox, reply, len(head), len(head) + len(payload))
        + head
        + payload
        + b"\r\n"
    )


def status(code: bytes, text: bytes) -> bytes:
    """Return a JetStream status message (headers only)."""
    head = b"NATS/1.0 " + code + b" " + text + b"\r\n\r\n"
    return b"HMSG _INBOX.x 1 %d %d\r\n" % (len(head), len(head)) + head + b"\r\n"


def read_all(
    host: str, port: int, count: int, **kw: float
) -> list[tuple[bytes, bytes]]:
    """Read ``count`` messages of consumer C of stream S through a PullReader."""
    with PullReader(host, port, **kw) as reader:  # type: ignore[arg-type]
        return [m for chunk in reader.read("S", "C", count) for m in chunk]


class TestFraming:
    """Messages come out whole and in order however the bytes arrive."""

    def test_messages_split_anywhere_come_out_whole_and_the_end_stops(
        self, server: Callable[..., Scripted]
    ) -> None:
        """Headers, payloads with CRLFs inside, a heartbeat, a PING, then 404."""

        def script(sock: socket.socket, talk: Conversation) -> None:
            handshake(sock, talk)
            send_in_pieces(
                sock,
                hmsg(b"1.w", b"one\r\nHMSG fake")
                + status(b"100", b"Idle Heartbeat")
                + b"PING\r\n"
                + hmsg(b"2.w", b"")
                + b"MSG _INBOX.x 1 5\r\nplain\r\n"
                + status(b"404", b"No Messages"),
            )
            talk.wait_for(b"PONG\r\n")

        scripted = server(script)
        got = read_all(scripted.host, scripted.port, 10)
        talk = scripted.done()
        assert got == [(b"1.w", b"one\r\nHMSG fake"), (b"2.w", b""), (b"", b"plain")]
        assert b"PONG\r\n" in talk.heard
        assert talk.pulls()[0] == {"batch": 10, "no_wait": True}

    def test_a_read_asks_in_batches_two_at_a_time_and_stops_at_the_count(
        self, server: Callable[..., Scripted]
    ) -> None:
        """Seven messages in batches of three: pulls of 3, 3, then 1; no more read."""

        def script(sock: socket.socket, talk: Conversation) -> None:
            handshake(sock, talk)
            send_in_pieces(sock, b"".join(hmsg(b"%d.w" % n, b"p") for n in range(1, 7)))
            talk.wait_for(b'"batch": 1,')  # the third pull, once a batch is in
            sock.sendall(hmsg(b"7.w", b"p") + hmsg(b"8.w", b"beyond the count"))

        scripted = server(script)
        got = read_all(scripted.host, scripted.port, 7, batch=3)
        talk = scripted.done()
        assert [m for m, _ in got] == [b"%d.w" % n for n in range(1, 8)]
        assert [p["batch"] for p in talk.pulls()] == [3, 3, 1]


class TestFailures:
    """Trouble is a NatsReadError naming it, never a hang or a short read."""

    @pytest.mark.parametrize(
        ("said", "match"),
        [
            (status(b"409", b"Consumer Deleted"), "409 Consumer Deleted"),
            (status(b"503", b""), "503"),
            (b"-ERR 'Permissions Violation'\r\n", "Permissions Violation"),
            (b"", "closed the connection"),
        ],
    )
    def test_a_refusal_or_a_close_raises(
        self,
        server: Callable[..., Scripted],
        said: bytes,
        match: str,
    ) -> None:
        """One message arrives, then the server refuses (or hangs up)."""

        def script(sock: socket.socket, talk: Conversation) -> None:
            handshake(sock, talk)
            sock.sendall(hmsg(b"1.w", b"x") + said)

        scripted = server(script)
        with (
            PullReader(scripted.host, scripted.port) as reader,
            pytest.raises(NatsReadError, match=match),
        ):
            for _ in reader.read("S", "C", 5):
                pass

    def test_silence_raises_after_the_timeout(
        self, server: Callable[..., Scripted]
    ) -> None:
        """A server that never answers a pull fails the read after ``timeout``."""

        def script(sock: socket.socket, talk: Conversation) -> None:
            handshake(sock, talk)
            time.sleep(0.5)

        scripted = server(script)
        with pytest.raises(NatsReadError, match="went silent"):
            read_all(scripted.host, scripted.port, 5, timeout=0.2)

    @pytest.mark.parametrize(
        ("info", "match"),
        [
            (b'INFO {"headers":true,"auth_required":true}\r\n', "authentication"),
            (b'INFO {"headers":false}\r\n', "headers"),
            (b"HTTP/1.1 400 Bad Request\r\n", "not a NATS server"),
        ],
    )
    def test_a_server_it_cannot_use_is_refused_on_connect(
        self,
        server: Callable[..., Scripted],
        info: bytes,
        match: str,
    ) -> None:
        """Authentication, no header support, or not NATS at all."""
        scripted = server(lambda _sock, _talk: None, info=info)
        with pytest.raises(NatsReadError, match=match):
            PullReader(scripted.host, scripted.port)

    def test_no_server_at_all_is_a_read_error(self) -> None:
        """A closed port fails at once with the address named."""
        with socket.create_server(("127.0.0.1", 0)) as probe:
            port = probe.getsockname()[1]
        with pytest.raises(NatsReadError, match=f"127.0.0.1:{port}"):
            PullReader("127.0.0.1", port)
