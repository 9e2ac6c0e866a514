"""The MQTT transport: aiomqtt with TCP_NODELAY and a persistent session.

The socket sets TCP_NODELAY: paho leaves Nagle's algorithm on, and a QoS 1
round trip then took 88 ms instead of 0.3 ms. The session is persistent
(``clean_session=False`` under one client id for the transport's lifetime),
so QoS 1 answers the broker queued while the link was down arrive after a
reconnect instead of being lost.

Every call the broker must answer (CONNACK, SUBACK, PUBACK) fails after
``timeout`` seconds: aiomqtt does not fail a call whose link dropped before
the answer came, so a connection dropped during a reconnect's subscribe (a
venue's forced disconnects do that) would otherwise stall the client for
aiomqtt's own 10 s.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import socket
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import aiomqtt

from clients.sdk._transport import Message, TransportError
from exchange.gateway.mqtt import parse_broker_url

__all__ = ["MqttTransport", "client_for"]

_NODELAY = (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
_INFLIGHT = 1024  # QoS 1 window (paho's default of 20 throttles a busy bot)

# aiomqtt warns on every publish while more than ten are pending, which under
# load is almost every publish (14 us each through JSON logging,
# docs/benchmarks-notes.md). Its clients log here, errors only.
_CLIENT_LOG = logging.getLogger("clients.sdk.mqtt")
_CLIENT_LOG.setLevel(logging.ERROR)


def client_for(
    url: str,
    identifier: str,
    username: str | None = None,
    password: str | None = None,
    *,
    clean_session: bool = True,
    max_queued: int = 0,
    timeout: float = 10.0,
) -> aiomqtt.Client:
    """Return an aiomqtt client for ``mqtt://host[:port]``: TCP_NODELAY, a wide window.

    ``max_queued`` bounds the messages waiting to be read (0: no bound);
    ``timeout`` is how long a call waits for the broker's answer.

    Raises:
        ConfigError: the URL is not ``mqtt://host[:port]``.
    """
    host, port = parse_broker_url(url)
    return aiomqtt.Client(
        host,
        port,
        identifier=identifier,
        username=username,
        password=password,
        socket_options=[_NODELAY],
        max_inflight_messages=_INFLIGHT,
        max_queued_incoming_messages=max_queued,
        clean_session=clean_session,
        logger=_CLIENT_LOG,
        timeout=timeout,
    )


class MqttTransport:
    """A `Transport` over an MQTT broker named by ``mqtt://[user[:pass]@]host[:port]``.

    The MQTT username defaults to ``username`` (the account: the broker's ACL
    keys on it); a password in the URL wins over ``password``.
    Incoming messages wait in aiomqtt's queue, bounded by ``max_queued``;
    when it is full aiomqtt drops the newest and logs a warning (the client
    resyncs books on the gap; private messages are QoS 1 and rarely so many).
    """

    def __init__(
        self,
        broker: str,
        *,
        username: str | None = None,
        password: str | None = None,
        client_id: str | None = None,
        max_queued: int = 100_000,
        timeout: float = 10.0,
    ) -> None:
        """Remember where to connect; nothing opens until `connect`.

        ``timeout``: seconds to wait for the broker's answer to a connect,
        subscribe or QoS 1 publish before it fails (`TransportError`).
        """
        url = urlsplit(broker)
        if url.scheme not in ("mqtt", "tcp"):
            msg = f"broker URL {broker!r} is not mqtt://host:port"
            raise ValueError(msg)
        self.host = url.hostname or "127.0.0.1"
        self.port = url.port or 1883
        self.username = url.username or username
        self.password = url.password or password
        self.client_id = client_id or f"paperx-sdk-{secrets.token_hex(6)}"
        self.max_queued = max_queued
        self.timeout = timeout
        self._client: aiomqtt.Client | None = None

    async def connect(self) -> None:
        """Connect (again), resuming the broker-side session of ``client_id``."""
        await self._drop()
        client = client_for(
            f"mqtt://{self.host}:{self.port}",
            self.client_id,
            self.username,
            self.password,
            clean_session=False,
            max_queued=self.max_queued,
            timeout=self.timeout,
        )
        try:
            await client.__aenter__()
        except aiomqtt.MqttError as exc:
            raise TransportError(str(exc)) from exc
        self._client = client

    async def close(self) -> None:
        """Disconnect; the broker keeps nothing more for this transport."""
        await self._drop()

    async def publish(self, topic: str, payload: bytes, qos: int) -> None:
        """Publish ``payload`` on ``topic``."""
        try:
            await self._live().publish(topic, payload, qos=qos)
        except aiomqtt.MqttError as exc:
            raise TransportError(str(exc)) from exc

    async def subscribe(self, topic: str, qos: int) -> None:
        """Subscribe to ``topic``."""
        try:
            await self._live().subscribe(topic, qos=qos)
        except aiomqtt.MqttError as exc:
            raise TransportError(str(exc)) from exc

    async def messages(self) -> AsyncIterator[Message]:
        """Yield received messages until the link drops (`TransportError`)."""
        client = self._live()
        try:
            async for message in client.messages:
                payload = message.payload
                if isinstance(payload, bytes | bytearray):
                    yield Message(str(message.topic), bytes(payload))
        except aiomqtt.MqttError as exc:
            raise TransportError(str(exc)) from exc

    def _live(self) -> aiomqtt.Client:
        """Return the connected client, or raise `TransportError`."""
        if self._client is None:
            msg = "not connected"
            raise TransportError(msg)
        return self._client

    async def _drop(self) -> None:
        """Leave the current connection, if any, ignoring a link already gone."""
        client, self._client = self._client, None
        if client is not None:
            # the link may already be down: then there is nothing left to close
            with contextlib.suppress(aiomqtt.MqttError):
                await client.__aexit__(None, None, None)
