"""The MQTT adapter: commands from ``paperx/v1/cmd/{acct}`` in, the outbox out.

A thin transport on the session layer, over the lean asyncio client of
`exchange.gateway.mqtt_client` (issue #8: aiomqtt cost 106 us of CPU per
answered request, this client 12). The client's read loop hands every
message of ``paperx/v1/cmd/+`` to `MqttAdapter.handle`; the topic's last
level is the account (the broker's ACL keeps a client to its own topic, the
session's signature check does the rest). It decodes the payload, offers the
commands to the sequencer without ever waiting on it, and answers OVERLOADED
for any the sequencer's inbox or the outbox cannot take, so reading never
blocks on the core; the broker gets its PUBACK once the message was handled.
Two publisher tasks empty the `Outbox`: private messages at QoS 1, streamed
within the client's in-flight window (one at a time would cost a round trip
each), market data at QoS 0.

The link survives the broker. When the connection drops, the publisher tasks
of that connection end, and `MqttAdapter.run` connects again with jittered
exponential backoff and subscribes again, while the core, the journal and
the feeds go on (nothing in them waits for MQTT). A private message counts
as sent only once the broker acknowledged it (PUBACK); every other one of
the lost connection goes back to the front of the outbox and is published
after the reconnect, so no acknowledged record's answer is lost (a message
whose PUBACK was lost with the link is sent twice: QoS 1 is at least once).
Market data of the lost connection is dropped: the next snapshot resyncs
the books. The session is persistent (``clean_session`` off), so commands a
broker queued for the exchange while the link was down are delivered after
it; a clean stop discards the session, so a stopped exchange leaves nothing
queued behind.

Every client socket sets TCP_NODELAY: without it a QoS 1 request/response
costs ~40 ms of delayed ACKs instead of ~0.3 ms.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from exchange.codes import RejectCode
from exchange.errors import ConfigError
from exchange.gateway.mqtt_client import MessageHandler, MqttClient, MqttError
from exchange.gateway.outbox import Outbox
from exchange.gateway.session import Session
from exchange.gateway.wire import Outbound, topic
from exchange.logs import get_logger
from exchange.messages import Command

__all__ = [
    "CMD_PREFIX",
    "CMD_SUBSCRIPTION",
    "Backoff",
    "MqttAdapter",
    "connect_lean",
    "parse_broker_url",
]

CMD_PREFIX = "paperx/v1/cmd/"
CMD_SUBSCRIPTION = CMD_PREFIX + "+"
_PUBLISH_BATCH = 256  # messages taken from the outbox at once
_INFLIGHT = 1024  # QoS 1 window (paho's default of 20 throttles acks)

_log = get_logger(__name__)

ClientFactory = Callable[[bool, MessageHandler], Awaitable[MqttClient]]
"""Connects a new client: MQTT's ``clean_session``, then the handler of its messages."""


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


async def connect_lean(
    url: str,
    identifier: str,
    on_message: MessageHandler,
    username: str | None = None,
    password: str | None = None,
    *,
    clean_session: bool = True,
) -> MqttClient:
    """Connect a lean `MqttClient` to ``url``; ``on_message`` gets what arrives.

    Raises:
        MqttError: the broker is unreachable or refuses the login.
    """
    host, port = parse_broker_url(url)
    return await MqttClient.connect(
        host,
        port,
        identifier,
        on_message,
        clean_session=clean_session,
        username=username,
        password=password,
        max_inflight=_INFLIGHT,
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
        self._client: MqttClient | None = None
        self._accepting = True

    # ------------------------------------------------------------ the link

    async def connect(self) -> None:
        """Connect and subscribe to every account's command topic, once.

        Called before traffic is promised, so nothing sent after it is lost.

        Raises:
            MqttError: the broker is unreachable or refuses the login.
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
        """Take no more commands (shutdown): each one read from now on is refused.

        Publishing goes on until drained, so those refusals are answered too.
        """
        self._accepting = False

    async def _subscribed(self) -> MqttClient:
        """Return a new connected client subscribed to the command topics."""
        client = await self.connect_client(False, self.handle)  # noqa: FBT003 -- clean_session off
        try:
            await client.subscribe(CMD_SUBSCRIPTION, qos=1)
        except MqttError:
            await client.close()
            raise
        return client

    async def _reconnect(self) -> MqttClient:
        """Connect again with jittered backoff until the broker takes us back."""
        attempts = 0
        while True:
            attempts += 1
            await asyncio.sleep(self.backoff.delay())
            try:
                client = await self._subscribed()
            except MqttError as exc:
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

    async def _serve_until_drop(self, client: MqttClient) -> bool:
        """Serve one connection; True once drained, False when the link dropped."""
        error: BaseException | None = None
        try:
            await self._serve(client)
        except* MqttError as lost:
            error = lost
            while isinstance(error, BaseExceptionGroup):  # the first MqttError
                error = error.exceptions[0]
        if error is None:
            return True
        _log.warning("broker_lost", error=str(error), unpublished=self.outbox.pending)
        await client.close()  # the link may be gone already: then a no-op
        return False

    async def _serve(self, client: MqttClient) -> None:
        """Publish the outbox over one connection until it drains or the link drops.

        Commands arrive meanwhile through `handle`, called by the client's
        read loop.

        Raises:
            ExceptionGroup: of `MqttError` when the link drops; of what
                `handle` raised if it failed (a bug: nothing reconnects).
        """
        async with asyncio.TaskGroup() as group:
            watch = group.create_task(client.wait_lost(), name="paperx.mqtt.link")
            publishers = [
                group.create_task(
                    self._publish_private(client), name="paperx.publish.private"
                ),
                group.create_task(
                    self._publish_market(client), name="paperx.publish.market"
                ),
            ]
            await asyncio.wait(publishers)
            watch.cancel()  # drained (a lost link ends the group first)

    async def _leave(self, client: MqttClient) -> None:
        """Disconnect, then discard the persistent session (a clean login does)."""
        await client.close()
        with contextlib.suppress(MqttError):
            clean = await self.connect_client(True, _ignore)  # noqa: FBT003 -- clean_session on
            await clean.close()

    # ------------------------------------------------------------ intake

    def handle(self, topic_name: str, payload: bytes) -> None:
        """Decode one message of a command topic; queue its commands and answers.

        Called by the client's read loop for each message, in order; the
        broker's PUBACK follows once it returns.
        """
        self.received += 1
        account = topic_name.removeprefix(CMD_PREFIX)
        session = self.session
        decoded = session.decode(account, payload, self.clock())
        answers = decoded.answers
        for command in decoded.commands:
            if not self._accepting or self.outbox.overloaded or not self.offer(command):
                answers += session.refuse(
                    command,
                    RejectCode.OVERLOADED,
                    "the exchange is busy or stopping: retry later",
                )
        self.outbox.put(answers)

    # ------------------------------------------------------------ publishing

    async def _publish_private(self, client: MqttClient) -> None:
        """Publish acks and account updates at QoS 1 until the outbox closes.

        Messages stream out within the client's in-flight window; each counts
        as sent once its PUBACK came. When the link drops (or this task is
        canceled), every message not yet confirmed goes back to the front of
        the outbox, in order, for the next connection.
        """
        outbox = self.outbox
        encode = self.session.codec.encode
        unconfirmed: deque[tuple[Outbound, asyncio.Future[None]]] = deque()
        taken: list[Outbound] = []  # this round's messages, the first `handed` sent
        handed = 0
        try:
            while True:
                taken, handed = [], 0
                taken = await outbox.take_private(_PUBLISH_BATCH)
                if not taken:
                    break
                for message in taken:
                    payload = encode(message.message)
                    done = await client.publish_wait(
                        topic(message.kind, message.key), payload, 1
                    )
                    assert done is not None  # QoS 1 has a PUBACK to wait for
                    unconfirmed.append((message, done))
                    handed += 1
                await client.drain()
                while unconfirmed and _confirmed(unconfirmed[0][1]):
                    unconfirmed.popleft()
            await client.settled()
            unconfirmed.clear()
        finally:
            unsent = [m for m, done in unconfirmed if not _confirmed(done)]
            unsent += taken[handed:]
            if unsent:
                outbox.requeue_private(unsent)

    async def _publish_market(self, client: MqttClient) -> None:
        """Publish market data at QoS 0 until the outbox closes.

        A batch the link dropped under is counted as dropped: the next
        snapshot resyncs the subscribers' books.
        """
        outbox = self.outbox
        encode = self.session.codec.encode
        while batch := await outbox.take_market(_PUBLISH_BATCH):
            try:
                for message in batch:
                    client.publish(
                        topic(message.kind, message.key), encode(message.message), 0
                    )
                await client.drain()
            except BaseException:
                outbox.drop(batch)
                raise


def _confirmed(done: asyncio.Future[None]) -> bool:
    """Return True if the broker acknowledged this publish (PUBACK)."""
    return done.done() and not done.cancelled() and done.exception() is None


def _ignore(_topic: str, _payload: bytes) -> None:
    """Drop a message: the session-discarding login subscribes to nothing."""
