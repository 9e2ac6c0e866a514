"""A server config for the tests, and plain aiomqtt bots that talk to the server.

The server runs as a child process (`exchange.cli.server_process`). The
bots use no SDK: they sign with `exchange.gateway.auth`'s recipe and read
the wire's JSON, as a bot author in any language would.
"""

from __future__ import annotations

import asyncio
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from services import missing

from clients.sdk import PaperxClient, client_for
from exchange.cli import server_process
from exchange.cli.server_process import TIMEOUT_S, free_port
from exchange.cli.server_process import ServerProcess as Server
from exchange.gateway.answers import Answer
from exchange.gateway.auth import signed_payload
from exchange.gateway.wire import Codec, topic

__all__ = [
    "PASSWORD",
    "REPO",
    "TIMEOUT_S",
    "Bot",
    "Mosquitto",
    "Server",
    "Start",
    "free_port",
    "sdk_client",
    "serving",
    "write_config",
]

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "pw-for-tests"  # noqa: S105 -- a throwaway broker's
"""Every login's password on a test's locked broker: paperx, alice and bob."""


def write_config(
    directory: Path, accounts: list[str], broker_login: str = "", extra: str = ""
) -> Path:
    """Write a server config for ``accounts`` (secret: NAME-secret) and return it.

    ``broker_login`` is the exchange's MQTT password as user ``paperx``;
    ``extra`` is more TOML, appended (a ``[stress]`` table, say).
    """
    lines = [
        "[server]",
        'journal = "journal"',
        "[feed.start]",
        'BTC-PERP = "65000"',
        "[markets.BTC-PERP]",
        'tick_size = "0.1"',
        'lot_size = "0.001"',
    ]
    for name in accounts:
        lines += [
            f'[accounts."{name}"]',
            f'api_key = "{name}-key"',
            f'secret = "{name}-secret"',
            'deposit = "100000"',
        ]
    if broker_login:
        lines += ["[broker]", 'username = "paperx"', f'password = "{broker_login}"']
    path = directory / "paperx.toml"
    path.write_text("\n".join(lines) + "\n" + extra, encoding="utf-8")
    return path


class Mosquitto(server_process.Mosquitto):
    """A Mosquitto of the test's own (never the shared one); missing() if absent."""

    def __init__(self, directory: Path, settings: str = "") -> None:
        """Write the config; skip the test (fail under CI) without Mosquitto."""
        if shutil.which("mosquitto") is None:
            missing("mosquitto is not installed")
        super().__init__(directory, settings)


@contextmanager
def serving(config: Path, broker: str, settings: str = "") -> Iterator[str]:
    """Run ``paperx serve`` with ``config`` on a broker of its own; yield its URL.

    ``broker`` is "own-mosquitto" (a test-started Mosquitto with the extra
    config lines ``settings``), "embedded" (amqtt) or "embedded-KIND" (the
    embedded broker of that kind: mosquitto, amqtt, auto).
    """
    mosquitto: Mosquitto | None = None
    if broker == "own-mosquitto":
        mosquitto = Mosquitto(config.parent, settings).start()
        server = Server(config, mosquitto.url, 0)
        url = mosquitto.url
    else:
        port = free_port()
        kind = broker.removeprefix("embedded").removeprefix("-") or "amqtt"
        server = Server(config, None, port, extra=("--embedded-broker", kind))
        url = f"mqtt://127.0.0.1:{port}"
    try:
        server.wait_for("server_ready")
        yield url
    finally:
        server.kill()
        if mosquitto is not None:
            mosquitto.kill()


def sdk_client(url: str, account: str, **settings: Any) -> PaperxClient:
    """Return an SDK client of an account write_config made (paperx symbols)."""
    options: dict[str, Any] = {"timeout": 3.0, "retries": 2} | settings
    return PaperxClient(
        account,
        f"{account}-key",
        f"{account}-secret",
        broker=url,
        unified_symbols=False,
        **options,
    )


Start = Callable[[Path], Server]
"""``start(directory)``: a ready server with that config directory (conftest)."""


class Bot:
    """One account's plain MQTT client: signed requests out, its topics in."""

    def __init__(
        self,
        url: str,
        account: str,
        *,
        topics: tuple[str, ...] = (),
        password: str | None = None,
        secret: str | None = None,
    ) -> None:
        """Prepare a client for ``account``; enter it to connect and subscribe.

        With ``password`` it logs in to the broker as the account; ``secret``
        is its API secret (default: write_config's, NAME-secret).
        """
        self.account = account
        self.secret = secret or f"{account}-secret"
        self.codec = Codec("json")
        self.client = client_for(
            url,
            identifier=f"bot-{uuid.uuid4().hex[:12]}",
            username=account if password else None,
            password=password,
        )
        self.topics = topics or (topic("ack", account), topic("acct", account))
        self.received: list[tuple[str, Answer]] = []
        self._inbox: asyncio.Queue[tuple[str, Answer]] = asyncio.Queue()
        self._reader: asyncio.Task[None] | None = None
        self._counter = 0

    async def __aenter__(self) -> Self:
        """Connect, subscribe and start reading."""
        await self.client.__aenter__()
        for name in self.topics:
            await self.client.subscribe(name, qos=1)
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop reading and disconnect."""
        if self._reader is not None:
            self._reader.cancel()
        await self.client.__aexit__(exc_type, exc, tb)

    async def _read(self) -> None:
        """Decode every message into the inbox."""
        async for message in self.client.messages:
            assert isinstance(message.payload, bytes)
            item = (message.topic.value, self.codec.answer(message.payload))
            self.received.append(item)
            self._inbox.put_nowait(item)

    def request(self, op: str, **fields: Any) -> dict[str, Any]:
        """Return a request with a fresh id and the current time."""
        self._counter += 1
        body = {"op": op, "id": f"{self.account}-{self._counter}"}
        body["ts_ms"] = time.time_ns() // 1_000_000
        return body | fields

    async def publish(self, payload: bytes, account: str | None = None) -> None:
        """Publish raw bytes on a command topic (default: this account's)."""
        name = f"paperx/v1/cmd/{account or self.account}"
        await self.client.publish(name, payload, qos=1)

    async def send(self, op: str, **fields: Any) -> str:
        """Sign and publish one request; return its id."""
        request = self.request(op, **fields)
        await self.publish(signed_payload(self.codec, self.secret, request))
        return str(request["id"])

    async def expect(self, match: Callable[[str, Answer], bool]) -> Answer:
        """Return the next message that ``match``es (others stay in `received`)."""
        async with asyncio.timeout(TIMEOUT_S):
            while True:
                name, answer = await self._inbox.get()
                if match(name, answer):
                    return answer

    async def answer(self, request_id: str) -> Answer:
        """Return the answer to one request (accepted, rejected, a query's)."""
        return await self.expect(lambda _, a: getattr(a, "id", None) == request_id)
