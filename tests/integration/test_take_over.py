"""Forced disconnects by client-id take-over, on Mosquitto and the embedded broker.

The take-over must drop the victim and must not eat what the broker queued
for it: the victim's next connection (same client id, persistent session)
gets the QoS 1 messages published while it was away, also when the broker
checks logins and the ACL (the exchange may read the private topics for
exactly this reason).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from typing import NamedTuple

import pytest
from serve_rig import PASSWORD, TIMEOUT_S, free_port

from exchange.gateway.acl import EXCHANGE_USER, mosquitto_hash
from exchange.gateway.mqtt import parse_broker_url
from exchange.gateway.mqtt_client import LinkLost, MqttClient
from exchange.gateway.wire import topic
from exchange.shell.broker import EmbeddedBroker
from exchange.shell.disconnects import take_over

pytestmark = pytest.mark.broker


class Broker(NamedTuple):
    """A broker to test on: its URL and the logins of the victim and the exchange."""

    url: str
    alice: tuple[str | None, str | None]
    exchange: tuple[str | None, str | None]


@pytest.fixture(params=["shared-mosquitto", "locked-mosquitto", "locked-embedded"])
def broker(
    request: pytest.FixtureRequest,
    require_service: Callable[[str, str, int], None],
) -> Iterator[Broker]:
    """Yield a broker: the shared Mosquitto, or a locked one of the test's own."""
    anonymous = (None, None)
    if request.param == "shared-mosquitto":
        require_service("mosquitto", "127.0.0.1", 1883)
        yield Broker("mqtt://127.0.0.1:1883", anonymous, anonymous)
        return
    logins = (("alice", PASSWORD), (EXCHANGE_USER, PASSWORD))
    if request.param == "locked-mosquitto":
        url = request.getfixturevalue("locked_broker")
        yield Broker(url, *logins)
        return
    users = {name: mosquitto_hash(PASSWORD) for name in ("alice", EXCHANGE_USER)}
    embedded = EmbeddedBroker(free_port(), users=users)
    embedded.start()
    try:
        yield Broker(embedded.url, *logins)
    finally:
        embedded.stop()


class Inbox:
    """What a client received, and an event set on each arrival."""

    def __init__(self) -> None:
        """Start empty."""
        self.payloads: list[bytes] = []
        self.arrived = asyncio.Event()

    def __call__(self, topic_name: str, payload: bytes) -> None:
        """Keep one message (the client's ``on_message``)."""
        del topic_name
        self.payloads.append(payload)
        self.arrived.set()

    async def wait_for(self, payload: bytes) -> None:
        """Return once ``payload`` arrived (fail after the timeout)."""
        async with asyncio.timeout(TIMEOUT_S):
            while payload not in self.payloads:
                self.arrived.clear()
                await self.arrived.wait()


async def _connect(
    url: str, client_id: str, login: tuple[str | None, str | None], inbox: Inbox
) -> MqttClient:
    """Connect a persistent session whose messages go to ``inbox``."""
    host, port = parse_broker_url(url)
    username, password = login
    return await MqttClient.connect(
        host,
        port,
        client_id,
        inbox,
        clean_session=False,
        username=username,
        password=password,
    )


async def _published(sender: MqttClient, name: str, payload: bytes) -> None:
    """Publish at QoS 1 and wait for the broker's PUBACK."""
    done = sender.publish(name, payload, 1)
    assert done is not None
    async with asyncio.timeout(TIMEOUT_S):
        await done


async def test_a_take_over_drops_the_client_and_keeps_its_session(
    broker: Broker,
) -> None:
    """Dropped, the client reconnects to its session and gets what came meanwhile."""
    victim_id = f"victim-{uuid.uuid4().hex[:12]}"
    name = topic("ack", "alice")
    received = Inbox()
    victim = await _connect(broker.url, victim_id, broker.alice, received)
    await victim.subscribe(name, 1)
    sender = await _connect(broker.url, f"s-{victim_id}", broker.exchange, Inbox())
    try:
        await take_over(broker.url, victim_id, *broker.exchange)
        with pytest.raises(LinkLost):
            async with asyncio.timeout(TIMEOUT_S):
                await victim.wait_lost()
        await _published(sender, name, b"while away")
        again = await _connect(broker.url, victim_id, broker.alice, received)
        try:
            await received.wait_for(b"while away")
        finally:
            await again.close()
    finally:
        await sender.close()
        await victim.close()
    assert received.payloads == [b"while away"]


@pytest.mark.parametrize(
    "broker", ["shared-mosquitto", "locked-mosquitto"], indirect=True
)
async def test_a_take_over_leaves_queued_messages_unacknowledged(
    broker: Broker,
) -> None:
    """Taken over while a message waits for it, the client still gets it once.

    Not on amqtt: it forgets a QoS 1 message in flight on any connection
    that drops, the take-over's included (docs/stress.md).
    """
    victim_id = f"victim-{uuid.uuid4().hex[:12]}"
    name = topic("ack", "alice")
    received = Inbox()
    victim = await _connect(broker.url, victim_id, broker.alice, received)
    await victim.subscribe(name, 1)
    await victim.close()
    sender = await _connect(broker.url, f"s-{victim_id}", broker.exchange, Inbox())
    try:
        await _published(sender, name, b"queued")
        await take_over(broker.url, victim_id, *broker.exchange)
        again = await _connect(broker.url, victim_id, broker.alice, received)
        try:
            await _published(sender, name, b"after")
            await received.wait_for(b"after")
        finally:
            await again.close()
    finally:
        await sender.close()
    assert received.payloads == [b"queued", b"after"]


async def test_a_take_over_of_the_anonymous_embedded_broker_drops_the_client() -> None:
    """Without logins amqtt keeps nothing for a session, but the drop still works."""
    embedded = EmbeddedBroker(free_port())
    embedded.start()
    try:
        victim_id = f"victim-{uuid.uuid4().hex[:12]}"
        victim = await _connect(embedded.url, victim_id, (None, None), Inbox())
        await take_over(embedded.url, victim_id)
        with pytest.raises(LinkLost):
            async with asyncio.timeout(TIMEOUT_S):
                await victim.wait_lost()
        await victim.close()
    finally:
        embedded.stop()
