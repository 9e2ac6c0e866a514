"""The SDK's MQTT transport against the real Mosquitto on 127.0.0.1:1883."""

from __future__ import annotations

import asyncio
import secrets
import socket
from collections.abc import Callable

import pytest

from clients.sdk import Message, MqttTransport


@pytest.mark.broker
async def test_the_mqtt_transport_round_trips_a_qos1_message_with_nodelay(
    require_service: Callable[[str, str, int], None],
) -> None:
    """A message published at QoS 1 comes back to a subscriber; Nagle is off."""
    require_service("mosquitto", "127.0.0.1", 1883)
    topic = f"paperx/test/sdk/{secrets.token_hex(4)}"
    link = MqttTransport("mqtt://127.0.0.1:1883")
    await link.connect()
    try:
        await link.subscribe(topic, 1)
        await link.publish(topic, b'{"kind":"probe"}', 1)
        messages = link.messages()
        received = await asyncio.wait_for(anext(messages), 10)  # a guard
        sock = link._live()._client.socket()
        nodelay = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    finally:
        await link.close()
    assert received == Message(topic, b'{"kind":"probe"}')
    assert nodelay
