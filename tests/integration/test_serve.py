"""``paperx serve`` over a real broker: Mosquitto on 127.0.0.1:1883, and embedded.

Each test starts the server as a child process with a journal of its own and
accounts named for the test (the shared Mosquitto may carry other traffic),
and trades through plain aiomqtt clients that sign their requests.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import time
from pathlib import Path

import pytest
from serve_rig import TIMEOUT_S, Bot, Server, Start, free_port, write_config
from services import missing

from exchange.gateway.answers import (
    Accepted,
    OpenOrdersInfo,
    OrderUpdate,
    Rejected,
    TradeFill,
)
from exchange.gateway.auth import signed_payload
from exchange.messages import Deposit
from exchange.shell.loopback import listening
from replay.log import ExchangeLog
from replay.verify import verify

pytestmark = pytest.mark.broker


def _limit(side: str, price: str, qty: str = "0.01") -> dict[str, str]:
    """Return the fields of a GTC limit order in BTC-PERP."""
    return {
        "symbol": "BTC-PERP",
        "side": side,
        "type": "limit",
        "qty": qty,
        "price": price,
    }


async def test_two_accounts_trade_and_each_hears_only_of_its_own_orders(
    start: Start, tmp_path: Path, url: str, names: tuple[str, str]
) -> None:
    """A maker and a taker get their acks and fills, each on its own topics only."""
    start(tmp_path)
    alice, bob = names
    async with Bot(url, alice) as a, Bot(url, bob) as b:
        ask = await a.answer(await a.send("new", **_limit("sell", "65000")))
        assert isinstance(ask, Accepted)
        bid = await b.answer(await b.send("new", **_limit("buy", "65000")))
        assert isinstance(bid, Accepted)
        assert bid.seq > ask.seq
        a_fill = await a.expect(lambda _, m: isinstance(m, TradeFill))
        b_fill = await b.expect(lambda _, m: isinstance(m, TradeFill))
    assert isinstance(a_fill, TradeFill)
    assert isinstance(b_fill, TradeFill)
    assert (a_fill.order_id, a_fill.liquidity) == (ask.order_id, "maker")
    assert (b_fill.order_id, b_fill.liquidity) == (bid.order_id, "taker")
    assert a_fill.trade_id == b_fill.trade_id
    for bot, own in ((a, ask.order_id), (b, bid.order_id)):
        assert {t for t, _ in bot.received} <= set(bot.topics)
        ids = {
            m.order_id
            for _, m in bot.received
            if isinstance(m, OrderUpdate | TradeFill)
        }
        assert ids == {own}


async def test_a_malformed_payload_gets_a_coded_reject(
    start: Start, tmp_path: Path, url: str, names: tuple[str, str]
) -> None:
    """Bytes that are not a request are answered MALFORMED on the sender's ack topic."""
    start(tmp_path)
    async with Bot(url, names[0]) as a:
        await a.publish(b'{"req": {"op": "new", "id": "x1"')
        reject = await a.expect(lambda _, m: isinstance(m, Rejected))
        assert isinstance(reject, Rejected)
        assert (reject.name, reject.code) == ("MALFORMED", 1001)
        # the gateway still answers after it
        ok = await a.answer(await a.send("new", **_limit("buy", "60000")))
        assert isinstance(ok, Accepted)


async def test_an_account_cannot_act_for_another(
    start: Start, tmp_path: Path, url: str, names: tuple[str, str]
) -> None:
    """With no ACL in the way, Alice's signature fails on Bob's topic, any request."""
    start(tmp_path)
    alice, bob = names
    async with Bot(url, alice) as a, Bot(url, bob) as b:
        order = await b.answer(await b.send("new", **_limit("buy", "60000")))
        assert isinstance(order, Accepted)
        for op, fields in (
            ("new", _limit("buy", "61000")),
            ("cancel", {"order_id": order.order_id}),
            ("cancel_all", {}),
            ("open_orders", {"symbol": "BTC-PERP"}),
            ("balance", {}),
        ):
            forged = a.request(op, **fields)
            await a.publish(signed_payload(a.codec, a.secret, forged), account=bob)
            refused = await b.answer(str(forged["id"]))
            assert isinstance(refused, Rejected), op
            assert refused.name == "BAD_SIGNATURE"
        stolen = await a.answer(await a.send("cancel", order_id=order.order_id))
        assert isinstance(stolen, Rejected)
        assert stolen.name == "UNKNOWN_ORDER"
        still = await b.answer(await b.send("open_orders", symbol="BTC-PERP"))
    assert isinstance(still, OpenOrdersInfo)
    assert [o.order_id for o in still.orders] == [order.order_id]


async def test_a_restart_recovers_the_state_from_the_journal(
    start: Start, tmp_path: Path, url: str, names: tuple[str, str]
) -> None:
    """A restarted server has the state hash it stopped with, resting orders too."""
    server = start(tmp_path)
    alice, bob = names
    async with Bot(url, alice) as a, Bot(url, bob) as b:
        rest = await a.answer(await a.send("new", **_limit("sell", "66000")))
        assert isinstance(rest, Accepted)
        await a.answer(await a.send("new", **_limit("sell", "65000")))
        await b.answer(await b.send("new", **_limit("buy", "65000")))
    stopped = server.stop()
    restarted = start(tmp_path)
    ready = restarted.log[-1]
    assert ready["state_hash"] == stopped["state_hash"]
    assert ready["seq"] == stopped["seq"]
    async with Bot(url, alice) as a:
        orders = await a.answer(await a.send("open_orders", symbol="BTC-PERP"))
    assert isinstance(orders, OpenOrdersInfo)
    assert [o.order_id for o in orders.orders] == [rest.order_id]


@pytest.mark.parametrize("broker", ["mosquitto"], indirect=True)
async def test_commands_sent_while_the_exchange_is_down_are_served_after_its_restart(
    start: Start, tmp_path: Path, url: str, names: tuple[str, str]
) -> None:
    """A killed exchange takes back its broker session: what waited there is served.

    The exchange's MQTT client id is the same at every start (derived from
    the journal), so the broker queues a bot's command while it is down.
    Not with the embedded broker: it dies with the exchange.
    """
    start(tmp_path).kill()  # SIGKILL: no clean stop discards the session
    async with Bot(url, names[0]) as bot:
        request = await bot.send("new", **_limit("buy", "60000"))
        start(tmp_path)
        answer = await bot.answer(request)
    assert isinstance(answer, Accepted)


async def test_sigterm_under_traffic_leaves_a_journal_that_verifies(
    start: Start, tmp_path: Path, url: str, names: tuple[str, str]
) -> None:
    """Orders in flight at SIGTERM are drained; replay verify accepts the journal."""
    server = start(tmp_path)
    async with Bot(url, names[0]) as a:
        sent = [await a.send("new", **_limit("buy", str(60000 + i))) for i in range(50)]
        await a.answer(sent[0])
        server.stop(signal.SIGTERM)
    report = verify(ExchangeLog(tmp_path / "journal"))
    assert report.ok, report
    assert report.checkpoints >= 1


def test_an_unreachable_broker_exits_1_and_leaves_a_journal_that_verifies(
    tmp_path: Path,
) -> None:
    """No broker at the URL: the log says so, the exit code is 1, nothing is lost.

    The first deposit went into the journal before the broker was tried.
    """
    config = write_config(tmp_path, ["carol"])
    with Server(config, f"mqtt://127.0.0.1:{free_port()}") as server:
        entry = server.wait_for("broker_unreachable")
        assert server.process.wait(TIMEOUT_S) == 1
    assert "127.0.0.1" in entry["error"]
    entries = ExchangeLog(tmp_path / "journal").entries()
    assert [type(e.record.command) for e in entries] == [Deposit]  # kept, synced


async def test_the_embedded_broker_is_the_installed_mosquitto_by_default(
    tmp_path: Path,
) -> None:
    """The installed Mosquitto by default; a bot trades on it; a kill -9 ends it too."""
    if shutil.which("mosquitto") is None:
        missing("mosquitto is not installed")
    config = write_config(tmp_path, ["erin"])
    port = free_port()
    with Server(config, None, port) as server:
        started = server.wait_for("broker_started")
        server.wait_for("server_ready")
        async with Bot(f"mqtt://127.0.0.1:{port}", "erin") as bot:
            answer = await bot.answer(await bot.send("new", **_limit("buy", "60000")))
        server.process.kill()  # no clean stop: the broker must die with it
        server.process.wait(TIMEOUT_S)
    assert started["embedded"] == "mosquitto"
    assert isinstance(answer, Accepted)
    deadline = time.monotonic() + TIMEOUT_S
    while listening(port):
        assert time.monotonic() < deadline, "the embedded Mosquitto outlived the server"
        await asyncio.sleep(0.01)
