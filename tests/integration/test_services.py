"""Smoke tests of the real services the integration suite and CI rely on."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable

import pytest

# MQTT 3.1.1 CONNECT: clean session, keep-alive 10 s, client id "paperx-smoke".
_CLIENT_ID = b"paperx-smoke"
_CONNECT = (
    bytes([0x10, 10 + 2 + len(_CLIENT_ID)])
    + b"\x00\x04MQTT\x04\x02\x00\x0a"
    + len(_CLIENT_ID).to_bytes(2, "big")
    + _CLIENT_ID
)


@pytest.mark.broker
def test_mosquitto_accepts_an_mqtt_connection(
    require_service: Callable[[str, str, int], None],
) -> None:
    """The broker answers an MQTT 3.1.1 CONNECT with CONNACK 'accepted'."""
    require_service("mosquitto", "127.0.0.1", 1883)
    with socket.create_connection(("127.0.0.1", 1883), timeout=5) as sock:
        sock.sendall(_CONNECT)
        connack = sock.recv(4)
    assert connack == b"\x20\x02\x00\x00"


@pytest.mark.nats
def test_nats_announces_jetstream(
    require_service: Callable[[str, str, int], None],
) -> None:
    """The NATS server greets with INFO and has JetStream enabled."""
    require_service("nats", "127.0.0.1", 4222)
    with socket.create_connection(("127.0.0.1", 4222), timeout=5) as sock:
        greeting = sock.recv(4096).decode()
    assert greeting.startswith("INFO ")
    info = json.loads(greeting[5:].strip())
    assert info.get("jetstream") is True
