"""The gateway's MQTT client against a real broker: a Mosquitto of the test's own.

Never the shared broker: each test starts Mosquitto on a free port, so a
kill or a persistent session touches nothing else.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from serve_rig import TIMEOUT_S, Mosquitto
from services import missing

from exchange.gateway.mqtt_client import ConnectRefused, LinkLost, MqttClient

pytestmark = pytest.mark.broker

PASSWORD = "pw-for-tests"  # noqa: S105 -- a throwaway broker's


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """Run an anonymous Mosquitto on a free port; kill it after the test."""
    broker = Mosquitto(tmp_path).start()
    try:
        yield broker
    finally:
        broker.kill()


class Inbox:
    """Collects messages; `wait` returns once ``n`` arrived."""

    def __init__(self) -> None:
        """Start empty."""
        self.messages: list[tuple[str, bytes]] = []
        self._grew = asyncio.Event()

    def __call__(self, topic: str, payload: bytes) -> None:
        """Keep one message."""
        self.messages.append((topic, payload))
        self._grew.set()

    async def wait(self, n: int) -> list[tuple[str, bytes]]:
        """Return every message once ``n`` arrived."""
        async with asyncio.timeout(TIMEOUT_S):
            while len(self.messages) < n:
                self._grew.clear()
                await self._grew.wait()
        return self.messages


async def test_qos_1_messages_round_trip_in_order_with_pubacks(
    mosquitto: Mosquitto,
) -> None:
    """A thousand QoS 1 publishes are all confirmed and arrive in order."""
    inbox = Inbox()
    reader = await MqttClient.connect("127.0.0.1", mosquitto.port, "r", inbox)
    writer = await MqttClient.connect("127.0.0.1", mosquitto.port, "w", print)
    assert await reader.subscribe("t/+", 1) == 1
    confirms = [
        await writer.publish_wait(f"t/{n % 3}", b"%d" % n, 1) for n in range(1000)
    ]
    await writer.drain()
    await asyncio.gather(*confirms)
    assert writer.inflight == 0
    got = await inbox.wait(1000)
    assert [payload for _, payload in got] == [b"%d" % n for n in range(1000)]
    assert got[1][0] == "t/1"
    await writer.close()
    await reader.close()


async def test_a_persistent_session_gets_what_was_sent_while_away(
    mosquitto: Mosquitto,
) -> None:
    """With clean_session off, QoS 1 messages sent while disconnected arrive later."""
    away = await MqttClient.connect(
        "127.0.0.1", mosquitto.port, "p", print, clean_session=False
    )
    await away.subscribe("q/#", 1)
    await away.close()
    writer = await MqttClient.connect("127.0.0.1", mosquitto.port, "w", print)
    confirm = writer.publish("q/x", b"queued", 1)
    assert confirm is not None
    await confirm
    inbox = Inbox()
    back = await MqttClient.connect(
        "127.0.0.1", mosquitto.port, "p", inbox, clean_session=False
    )
    assert await inbox.wait(1) == [("q/x", b"queued")]
    await back.close()
    await writer.close()


async def test_a_killed_broker_is_a_lost_link_for_every_waiter(
    mosquitto: Mosquitto,
) -> None:
    """SIGKILL on the broker raises LinkLost from wait_lost and from publish."""
    client = await MqttClient.connect("127.0.0.1", mosquitto.port, "k", print)
    await client.subscribe("k", 1)
    lost = asyncio.create_task(client.wait_lost())
    mosquitto.kill()
    with pytest.raises(LinkLost):
        await asyncio.wait_for(lost, TIMEOUT_S)
    with pytest.raises(LinkLost):
        client.publish("k", b"late", 1)
    with pytest.raises(LinkLost):
        await MqttClient.connect("127.0.0.1", mosquitto.port, "k", print)
    await client.close()


async def test_a_password_broker_takes_the_right_login_and_refuses_others(
    tmp_path: Path,
) -> None:
    """Username and password log in; a wrong password gets CONNACK code 5."""
    passwd = shutil.which("mosquitto_passwd")
    if passwd is None:
        missing("mosquitto_passwd is not installed")
    store = tmp_path / "passwd"
    subprocess.run(  # noqa: S603, ASYNC221 -- the test's own broker tool, before any I/O
        [passwd, "-c", "-b", str(store), "paperx", PASSWORD], check=True
    )
    settings = f"allow_anonymous false\npassword_file {store}\n"
    broker = Mosquitto(tmp_path, settings).start()
    try:
        client = await MqttClient.connect(
            "127.0.0.1", broker.port, "a", print, username="paperx", password=PASSWORD
        )
        await client.close()
        with pytest.raises(ConnectRefused) as refused:
            await MqttClient.connect(
                "127.0.0.1",
                broker.port,
                "b",
                print,
                username="paperx",
                password="no",  # noqa: S106
            )
        assert refused.value.code == 5
    finally:
        broker.kill()
