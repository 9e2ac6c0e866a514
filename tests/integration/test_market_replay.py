"""``paperx serve --replay``: a recorded flow meets a live SDK bot over MQTT."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import pytest
from market_replay_rig import BTC, record_seller
from serve_rig import TIMEOUT_S, Server, free_port, sdk_client, write_config

from exchange.messages import OrderFilled
from replay.log import ExchangeLog
from replay.verify import verify

pytestmark = pytest.mark.broker


async def test_a_live_bots_quote_is_hit_by_the_recorded_flow(tmp_path: Path) -> None:
    """At max speed the recorded seller fills the live bid; the journal verifies."""
    record_seller(tmp_path / "recorded")
    config = write_config(tmp_path, ["carol"])
    port = free_port()
    options = ("--replay", str(tmp_path / "recorded"), "--speed", "max")
    server = Server(config, None, port, extra=(*options, "--replay-wait-for", "carol"))
    try:
        await asyncio.to_thread(server.wait_for, "server_ready")
        async with sdk_client(f"mqtt://127.0.0.1:{port}", "carol") as carol:
            fills = carol.watch_my_trades(BTC)
            bid = await carol.create_order(BTC, "limit", "buy", "0.01", "65000")
            assert bid["status"] == "open"
            async with asyncio.timeout(TIMEOUT_S):
                fill = await anext(fills)
            finished = await asyncio.to_thread(server.wait_for, "replay_finished")
        await asyncio.to_thread(server.stop)
    finally:
        server.kill()
    assert (fill["order"], fill["takerOrMaker"]) == (bid["id"], "maker")
    assert (fill["price"], fill["amount"]) == (Decimal(65000), Decimal("0.01"))
    assert finished["sent"] == 6  # 2 deposits, the index, 2 orders, the cancel
    assert finished["dropped"] == finished["rejected"] == 0
    log = ExchangeLog(tmp_path / "journal")
    takers = {
        e.taker_account
        for entry in log.entries()
        for e in entry.events
        if isinstance(e, OrderFilled)
    }
    assert takers == {"rec:bob"}
    report = verify(ExchangeLog(tmp_path / "journal"))
    assert report.ok, report
