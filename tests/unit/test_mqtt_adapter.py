"""Tests of the MQTT adapter's link handling that need no broker."""

from __future__ import annotations

import asyncio

import pytest

from exchange.core import ExchangeCore
from exchange.gateway.answers import Accepted
from exchange.gateway.auth import KeyStore
from exchange.gateway.mqtt import Backoff, MqttAdapter
from exchange.gateway.mqtt_client import LinkLost
from exchange.gateway.outbox import Outbox
from exchange.gateway.session import Session
from exchange.gateway.wire import Outbound
from exchange.markets import DEFAULT_MARKETS


class _FailingClient:
    """A client whose link drops at its ``fail_at``-th publish.

    The broker acknowledged (PUBACK) only the first ``acked`` publishes.
    """

    def __init__(self, fail_at: int, acked: int) -> None:
        self.fail_at = fail_at
        self.acked = acked
        self.published: list[str] = []

    async def publish_wait(
        self, topic: str, payload: bytes, qos: int
    ) -> asyncio.Future[None]:
        if len(self.published) == self.fail_at:
            msg = "the link dropped"
            raise LinkLost(msg)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if len(self.published) < self.acked:
            done.set_result(None)
        self.published.append(topic + str(qos) + payload.decode())
        return done

    async def drain(self) -> None:
        pass


def _ack(n: int) -> Outbound:
    return Outbound("ack", "alice", Accepted(id=f"r{n}", op="new", seq=n))


class TestMqttAdapter:
    """Publishing across a dropped link, and the reconnect backoff."""

    @pytest.mark.parametrize(("fail_at", "acked"), [(2, 2), (4, 1), (5, 3)])
    async def test_private_messages_not_acknowledged_before_a_drop_are_requeued(
        self, fail_at: int, acked: int
    ) -> None:
        """A drop puts every ack without a PUBACK back in front, in order."""
        outbox = Outbox()
        session = Session(ExchangeCore(DEFAULT_MARKETS), KeyStore({}))
        adapter = MqttAdapter(lambda *_: None, session, lambda _: True, outbox)  # type: ignore[arg-type,return-value]
        client = _FailingClient(fail_at, acked)
        outbox.put([_ack(n) for n in range(5)])
        if fail_at < 5:
            with pytest.raises(LinkLost):
                await adapter._publish_private(client)  # type: ignore[arg-type]
        else:  # every message handed over, some unconfirmed: the task is canceled
            task = asyncio.create_task(adapter._publish_private(client))  # type: ignore[arg-type]
            for _ in range(5):  # one loop turn per publish
                await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        assert len(client.published) == fail_at
        outbox.close()
        left = await outbox.take_private(10)
        assert [m.message.seq for m in left] == list(range(acked, 5))

    def test_backoff_doubles_up_to_its_ceiling_with_jitter_and_resets(self) -> None:
        """Delays grow twofold to the ceiling within +-50%, and start over on reset."""
        backoff = Backoff(first=0.1, most=0.4)
        delays = [backoff.delay() for _ in range(5)]
        for delay, base in zip(delays, (0.1, 0.2, 0.4, 0.4, 0.4), strict=True):
            assert base * 0.5 <= delay <= base * 1.5
        backoff.reset()
        assert backoff.delay() <= 0.15
