"""The MQTT adapter: commands from ``paperx/v1/cmd/{acct}`` in, the outbox out.

A thin transport on the session layer. The intake task reads every message
of ``paperx/v1/cmd/+``; the topic's last level is the account (the broker's
ACL keeps a client to its own topic, the session's signature check does the
rest). It decodes the payload, offers the commands to the sequencer without
ever waiting on it, and answers OVERLOADED for any the sequencer's inbox or
the outbox cannot take, so the reader never blocks on the core. Two
publisher tasks empty the `Outbox`: private messages at QoS 1, market data
at QoS 0, many publishes in flight at once (QoS 1 waits for the broker's
PUBACK, so one at a time would cost a round trip each).

The link survives the broker. When the connection drops, the intake and
publisher tasks of that connection end, and `MqttAdapter.run` connects again
with jittered exponential backoff and subscribes again, while the core, the
journal and the feeds go on (nothing in them waits for MQTT). A private
message counts as sent only once the broker acknowledged it (PUBACK); every
other one of the lost connection goes back to the front of the outbox and is
published after the reconnect, so no acknowledged record's answer is lost
(a message whose PUBACK was lost with the link is sent twice: QoS 1 is at
least once). Market data of the lost connection is dropped: the next
snapshot resyncs the books. The session is persistent (``clean_session``
off, one client id per process), so commands a broker queued for the
exchange while the link was down are delivered after it; a clean stop
discards the session, so a stopped exchange leaves nothing queued behind.

Every client socket sets TCP_NODELAY: paho leaves Nagle on, and a QoS 1
request/response then costs ~40 ms of delayed ACKs instead of ~0.3 ms.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import aiomqtt

from exchange.codes import RejectCode
from exchange.errors import ConfigError
from exchange.gateway.outbox import Outbox
from exchange.gateway.session import Session
from exchange.gateway.wire import Outbound, topic
from exchange.logs import get_logger
from exchange.messages import Command

__all__ = [
    "CMD_PREFIX",
    "CMD_SUBSCRIPTION",
    "NODELAY",
    "Backoff",
    "MqttAdapter",
    "client_for",
    "parse_broker_url",
]

CMD_PREFIX = "paperx/v1/cmd/"
CMD_SUBSCRIPTION = CMD_PREFIX + "+"
NODELAY = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),)
_PUBLISH_BATCH = 256  # publishes in flight at once per publisher task
_INFLIGHT = 1024  # paho's QoS 1 window (its default of 20 throttles acks)

_log = get_logger(__name__)

ClientFactory = Callable[[bool], aiomqtt.Client]
"""Returns a new, unconnected client; the argument is MQTT's ``clean_session``."""


def parse_broker_url(url: str) -> tuple[str, int]:
    """Return ``(host, port)`` of an ``mqtt://host[:port]`` URL (port 1883).

    Raises:
        ConfigError: if the URL is not ``mqtt://``.
    """
    parts = urlsplit(url)
    if parts.scheme != "mqtt" or not parts.hostname:
        msg = f"broker URL {url!r}: expected mqtt://host:port"
        raise ConfigError(msg)
    try:
        port = parts.port or 1883
    except ValueError as exc:
        msg = f"broker URL {url!r}: {exc}"
        raise ConfigError(msg) from exc
    return parts.hostname, port


# aiomqtt warns on every publish while more than ten are pending, which under
# load is almost every publish: 14 us each through the server's JSON logging
# (BENCHMARKS.md). Its client logs here, errors only; paperx logs what matters.
_CLIENT_LOG = logging.getLogger("exchange.gateway.mqtt.client")
_CLIENT_LOG.setLevel(logging.ERROR)


def client_for(
    url: str,
    identifier: str,
    username: str | None = None,
    password: str | None = None,
    *,
    clean_session: bool = True,
) -> aiomqtt.Client:
    """Return an aiomqtt client for ``url`` with TCP_NODELAY and a wide window."""
    host, port = parse_broker_url(url)
    return aiomqtt.Client(
        host,
        port,
        identifier=identifier,
        username=username,
        password=password,
        socket_options=NODELAY,
        max_inflight_messages=_INFLIGHT,
        clean_session=clean_session,
        logger=_CLIENT_LOG,
    )


class Backoff:
    """Jittered exponential delays: ``first`` doubling up to ``most``, each +-50%."""

    __slots__ = ("_jitter", "_next", "first", "most")

    def __init__(self, first: float = 0.1, most: float = 5.0) -> None:
        """Start at ``first`` seconds; never wait more than ``most`` * 1.5."""
        self.first = first
        self.most = most
        self._next = first
        self._jitter = random.Random()  # noqa: S311 -- spreading retries, not a secret

    def delay(self) -> float:
        """Return the next delay in seconds, and double the one after it."""
        base, self._next = self._next, min(self._next * 2, self.most)
        return base * self._jitter.uniform(0.5, 1.5)

    def reset(self) -> None:
        """Start again from ``first`` (after a success)."""
        self._next = self.first


class MqttAdapter:
    """Reads commands from MQTT into the session, and publishes the outbox."""

    def __init__(
        self,
        connect: ClientFactory,
        session: Session,
        offer: Callable[[Command], bool],
        outbox: Outbox,
        clock: Callable[[], int] = time.time_ns,
        backoff: Backoff | None = None,
    ) -> None:
        """Serve ``session`` over the clients ``connect`` makes, one per connection.

        ``offer`` queues a command for the sequencer without waiting and
        returns False when it cannot (then the command is refused OVERLOADED).
        """
        self.connect_client = connect
        self.session = session
        self.offer = offer
        self.outbox = outbox
        self.clock = clock
        self.backoff = backoff or Backoff()
        self.received = 0
        self.reconnects = 0
        self._client: aiomqtt.Client | None = None
        self._accepting = True
        self._intake: asyncio.Task[None] | None = None

    # ------------------------------------------------------------ the link

    async def connect(self) -> None:
        """Connect and subscribe to every account's command topic, once.

        Called before traffic is promised, so nothing sent after it is lost.

        Raises:
            aiomqtt.MqttError: the broker is unreachable or refuses the login.
        """
        self._client = await self._subscribed()

    async def run(self) -> None:
        """Serve until the outbox is closed and empty, reconnecting on every drop.

        Call `connect` first. Once drained it disconnects and discards the
        broker's session of this client id.
        """
        while True:
            client = self._client or await self._reconnect()
            self._client = None
            if await self._serve_until_drop(client):
                await self._leave(client)
                return

    def stop_intake(self) -> None:
        """Read no more commands (shutdown); publishing goes on until drained."""
        self._accepting = False
        if self._intake is not None:
            self._intake.cancel()

    async def _subscribed(self) -> aiomqtt.Client:
        """Return a new connected client subscribed to the command topics."""
        client = self.connect_client(False)  # noqa: FBT003 -- clean_session off
        await client.__aenter__()
        try:
            await client.subscribe(CMD_SUBSCRIPTION, qos=1)
        except aiomqtt.MqttError:
            with contextlib.suppress(aiomqtt.MqttError):
                await client.__aexit__(None, None, None)
            raise
        return client

    async def _reconnect(self) -> aiomqtt.Client:
        """Connect again with jittered backoff until the broker takes us back."""
        attempts = 0
        while True:
            attempts += 1
            await asyncio.sleep(self.backoff.delay())
            try:
                client = await self._subscribed()
            except aiomqtt.MqttError as exc:
                _log.debug("broker_retry", attempts=attempts, error=str(exc))
                continue
            self.backoff.reset()
            self.reconnects += 1
            _log.info(
                "broker_reconnected",
                attempts=attempts,
                unpublished=self.outbox.pending,
            )
            return client

    async def _serve_until_drop(self, client: aiomqtt.Client) -> bool:
        """Serve one connection; True once drained, False when the link dropped."""
        error: BaseException | None = None
        try:
            await self._serve(client)
        except* aiomqtt.MqttError as lost:
            error = lost
            while isinstance(error, BaseExceptionGroup):  # the first MqttError
                error = error.exceptions[0]
        if error is None:
            return True
        _log.warning("broker_lost", error=str(error), unpublished=self.outbox.pending)
        # the link may be gone already: nothing left to close then
        with contextlib.suppress(aiomqtt.MqttError):
            await client.__aexit__(None, None, None)
        return False

    async def _serve(self, client: aiomqtt.Client) -> None:
        """Run one connection's tasks until the outbox drains or the link drops.

        Raises:
            ExceptionGroup: of `aiomqtt.MqttError` when the link drops.
        """
        try:
            async with asyncio.TaskGroup() as group:
                if self._accepting:
                    self._intake = group.create_task(
                        self._read(client), name="paperx.gateway"
                    )
                publishers = [
                    group.create_task(
                        self._publish_private(client), name="paperx.publish.private"
                    ),
                    group.create_task(
                        self._publish_market(client), name="paperx.publish.market"
                    ),
                ]
                await asyncio.wait(publishers)
                if self._intake is not None:  # drained: stop reading too
                    self._intake.cancel()
        finally:
            self._intake = None

    async def _leave(self, client: aiomqtt.Client) -> None:
        """Disconnect, then discard the persistent session (a clean login does)."""
        with contextlib.suppress(aiomqtt.MqttError):
            await client.__aexit__(None, None, None)
            async with self.connect_client(True):  # noqa: FBT003 -- clean_session on
                pass

    # ------------------------------------------------------------ intake

    async def _read(self, client: aiomqtt.Client) -> None:
        """Handle each message of the command topics until the link drops."""
        async for message in client.messages:
            payload = message.payload
            if not isinstance(payload, bytes | bytearray):
                payload = str(payload).encode()
            self.handle(message.topic.value, bytes(payload))

    def handle(self, topic_name: str, payload: bytes) -> None:
        """Decode one message of a command topic; queue its commands and answers."""
        self.received += 1
        account = topic_name.removeprefix(CMD_PREFIX)
        session = self.session
        decoded = session.decode(account, payload, self.clock())
        answers = decoded.answers
        for command in decoded.commands:
            if self.outbox.overloaded or not self.offer(command):
                answers += session.refuse(
                    command,
                    RejectCode.OVERLOADED,
                    "the exchange is busy or stopping: retry later",
                )
        self.outbox.put(answers)

    # ------------------------------------------------------------ publishing

    async def _publish_private(self, client: aiomqtt.Client) -> None:
        """Publish acks and account updates at QoS 1 until the outbox closes."""
        outbox = self.outbox
        while batch := await outbox.take_private(_PUBLISH_BATCH):
            await self._publish(client, batch, 1, outbox.requeue_private)

    async def _publish_market(self, client: aiomqtt.Client) -> None:
        """Publish market data at QoS 0 until the outbox closes."""
        outbox = self.outbox
        while batch := await outbox.take_market(_PUBLISH_BATCH):
            await self._publish(client, batch, 0, outbox.drop)

    async def _publish(
        self,
        client: aiomqtt.Client,
        batch: list[Outbound],
        qos: int,
        unsent: Callable[[list[Outbound]], None],
    ) -> None:
        """Publish a batch, all in flight together; hand back what was not sent.

        A message is sent once the broker acknowledged it (QoS 1) or took it
        (QoS 0); when the link drops, ``unsent`` gets the others, in order.
        """
        encode = self.session.codec.encode
        sent = [False] * len(batch)

        async def one(index: int, message: Outbound) -> None:
            await client.publish(
                topic(message.kind, message.key), encode(message.message), qos=qos
            )
            sent[index] = True

        try:
            async with asyncio.TaskGroup() as group:
                for index, message in enumerate(batch):
                    group.create_task(one(index, message))
        finally:
            if not all(sent):
                unsent([m for m, done in zip(batch, sent, strict=True) if not done])
