"""A broker that dies mid-run: the server and the SDK clients ride it out.

The broker is the test's own Mosquitto on a free port (never the shared
one), killed with SIGKILL while two SDK clients trade through ``paperx
serve`` and started again on the same port. The journal is the judge: every
order a client saw acknowledged is in it, exactly once, and it verifies.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from pathlib import Path

import pytest
from serve_rig import TIMEOUT_S, Mosquitto, Server, sdk_client, write_config

from clients.sdk import Order, PaperxClient
from exchange.messages import PlaceOrder
from replay.log import ExchangeLog
from replay.verify import verify

pytestmark = pytest.mark.broker

ORDERS = 30  # per account; the broker dies after a third of them are answered


def _client(url: str, account: str) -> PaperxClient:
    """Return an SDK client that retries for long enough to outlive a restart."""
    return sdk_client(
        url,
        account,
        timeout=1.0,
        retries=20,
        reconnect_delay=0.05,
        max_reconnect_delay=0.5,
    )


async def _trade(
    client: PaperxClient, side: str, placed: list[Order], progress: asyncio.Event
) -> None:
    """Place ORDERS crossing limit orders one after another, keeping each result."""
    for _ in range(ORDERS):
        placed.append(
            await client.create_order("BTC-PERP", "limit", side, "0.001", "65000")
        )
        if len(placed) >= ORDERS // 3:
            progress.set()


async def test_a_broker_restart_loses_no_acknowledged_order_and_runs_none_twice(
    tmp_path: Path,
) -> None:
    """Clients reconnect after a broker restart; each acked order is journaled once."""
    tag = uuid.uuid4().hex[:8]
    alice, bob = f"alice-{tag}", f"bob-{tag}"
    broker = Mosquitto(tmp_path).start()
    write_config(tmp_path, [alice, bob])
    server = Server(tmp_path / "paperx.toml", broker.url, 0)
    try:
        server.wait_for("server_ready")
        placed: dict[str, list[Order]] = {alice: [], bob: []}
        async with _client(broker.url, alice) as a, _client(broker.url, bob) as b:
            progress = asyncio.Event()
            async with asyncio.timeout(TIMEOUT_S * 2), asyncio.TaskGroup() as group:
                group.create_task(_trade(a, "sell", placed[alice], progress))
                group.create_task(_trade(b, "buy", placed[bob], progress))
                await progress.wait()
                broker.kill()
                broker.start()
            assert a.reconnects >= 1
            assert b.reconnects >= 1
        assert server.wait_for("broker_reconnected")["attempts"] >= 1
        server.stop()
    finally:
        server.kill()
        broker.kill()
    journal = ExchangeLog(tmp_path / "journal")
    executed = Counter(
        (entry.record.command.account, entry.record.command.client_order_id)
        for entry in journal.entries()
        if isinstance(entry.record.command, PlaceOrder)
    )
    acked = Counter(
        (account, order["clientOrderId"])
        for account, orders in placed.items()
        for order in orders
    )
    assert sum(acked.values()) == 2 * ORDERS
    assert executed == acked  # each acked order journaled, and only once
    report = verify(ExchangeLog(tmp_path / "journal"))
    assert report.ok, report
