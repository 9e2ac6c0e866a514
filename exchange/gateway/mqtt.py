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

Every client socket sets TCP_NODELAY: paho leaves Nagle on, and a QoS 1
request/response then costs ~40 ms of delayed ACKs instead of ~0.3 ms.
"""

from __future__ import annotations

import asyncio
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
from exchange.messages import Command

__all__ = [
    "CMD_PREFIX",
    "CMD_SUBSCRIPTION",
    "NODELAY",
    "MqttAdapter",
    "client_for",
    "parse_broker_url",
]

CMD_PREFIX = "paperx/v1/cmd/"
CMD_SUBSCRIPTION = CMD_PREFIX + "+"
NODELAY = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),)
_PUBLISH_BATCH = 256  # publishes in flight at once per publisher task
_INFLIGHT = 1024  # paho's QoS 1 window (its default of 20 throttles acks)


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


def client_for(
    url: str,
    identifier: str,
    username: str | None = None,
    password: str | None = None,
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
        clean_session=True,
    )


class MqttAdapter:
    """Reads commands from MQTT into the session, and publishes the outbox."""

    def __init__(
        self,
        client: aiomqtt.Client,
        session: Session,
        offer: Callable[[Command], bool],
        outbox: Outbox,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        """Serve ``session`` over ``client`` (connected by the caller).

        ``offer`` queues a command for the sequencer without waiting and
        returns False when it cannot (then the command is refused OVERLOADED).
        """
        self.client = client
        self.session = session
        self.offer = offer
        self.outbox = outbox
        self.clock = clock
        self.received = 0

    async def subscribe(self) -> None:
        """Subscribe to every account's command topic (before traffic is promised)."""
        await self.client.subscribe(CMD_SUBSCRIPTION, qos=1)

    async def intake(self) -> None:
        """Handle each message of the command topics until cancelled."""
        async for message in self.client.messages:
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

    async def publish_private(self) -> None:
        """Publish acks and account updates at QoS 1 until the outbox closes."""
        while batch := await self.outbox.take_private(_PUBLISH_BATCH):
            await self._publish(batch, qos=1)

    async def publish_market(self) -> None:
        """Publish market data at QoS 0 until the outbox closes."""
        while batch := await self.outbox.take_market(_PUBLISH_BATCH):
            await self._publish(batch, qos=0)

    async def _publish(self, batch: list[Outbound], qos: int) -> None:
        """Publish a batch in order, all in flight together."""
        encode = self.session.codec.encode
        await asyncio.gather(
            *[
                self.client.publish(topic(m.kind, m.key), encode(m.message), qos=qos)
                for m in batch
            ]
        )
