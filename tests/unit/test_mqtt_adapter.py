"""Tests of the MQTT adapter's link handling that need no broker."""

from __future__ import annotations

import aiomqtt
import pytest

from exchange.core import ExchangeCore
from exchange.gateway.answers import Accepted
from exchange.gateway.auth import KeyStore
from exchange.gateway.mqtt import Backoff, MqttAdapter
from exchange.gateway.outbox import Outbox
from exchange.gateway.session import Session
from exchange.gateway.wire import Outbound
from exchange.markets import DEFAULT_MARKETS


class _FailingClient:
    """A client whose link drops at its ``fail_at``-th publish."""

    def __init__(self, fail_at: int) -> None:
        self.fail_at = fail_at
        self.published: list[str] = []

    async def publish(self, topic: str, payload: bytes, qos: int) -> None:
        if len(self.published) == self.fail_at:
            msg = "the link dropped"
            raise aiomqtt.MqttError(msg)
        self.published.append(topic + str(qos) + payload.decode())


def _ack(n: int) -> Outbound:
    return Outbound("ack", "alice", Accepted(id=f"r{n}", op="new", seq=n))


class TestMqttAdapter:
    """Publishing across a dropped link, and the reconnect backoff."""

    async def test_private_messages_not_acknowledged_before_a_drop_are_requeued(
        self,
    ) -> None:
        """A drop mid-batch puts the unsent acks back in front, in order."""
        outbox = Outbox()
        session = Session(ExchangeCore(DEFAULT_MARKETS), KeyStore({}))
        adapter = MqttAdapter(lambda _: None, session, lambda _: True, outbox)  # type: ignore[arg-type,return-value]
        client = _FailingClient(fail_at=2)
        outbox.put([_ack(n) for n in range(5)])
        with pytest.raises(ExceptionGroup) as lost:
            await adapter._publish_private(client)  # type: ignore[arg-type]
        assert lost.group_contains(aiomqtt.MqttError)
        assert len(client.published) == 2
        outbox.close()
        left = await outbox.take_private(10)
        assert [m.message.seq for m in left] == [2, 3, 4]

    def test_backoff_doubles_up_to_its_ceiling_with_jitter_and_resets(self) -> None:
        """Delays grow twofold to the ceiling within +-50%, and start over on reset."""
        backoff = Backoff(first=0.1, most=0.4)
        delays = [backoff.delay() for _ in range(5)]
        for delay, base in zip(delays, (0.1, 0.2, 0.4, 0.4, 0.4), strict=True):
            assert base * 0.5 <= delay <= base * 1.5
        backoff.reset()
        assert backoff.delay() <= 0.15
