"""The SDK end to end through ``paperx serve``, and hostile bytes over MQTT.

Orders, fills and market data go through the real server and a real broker
(the shared Mosquitto where only private topics are involved, a test's own
Mosquitto where public market data is compared, and the embedded broker).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from serve_rig import TIMEOUT_S, Bot, Start, sdk_client, serving, write_config

from exchange.gateway.answers import Accepted, OpenOrdersInfo, Rejected
from exchange.gateway.auth import signed_payload
from exchange.gateway.wire import Codec
from exchange.messages import Deposit
from replay.log import ExchangeLog

pytestmark = pytest.mark.broker

EXAMPLES = int(os.environ.get("PAPERX_PROPERTY_EXAMPLES", "15"))
BTC = "BTC-PERP"


async def test_an_order_is_acked_and_filled_between_two_sdk_clients(
    start: Start, tmp_path: Path, url: str, names: tuple[str, str]
) -> None:
    """A resting sell and a crossing buy: both acked, the maker told of its fill."""
    start(tmp_path)
    alice, bob = names
    async with sdk_client(url, alice) as a, sdk_client(url, bob) as b:
        fills = a.watch_my_trades(BTC)
        ask = await a.create_order(BTC, "limit", "sell", "0.01", "65000")
        assert ask["status"] == "open"
        bid = await b.create_order(BTC, "limit", "buy", "0.01", "65000")
        assert (bid["status"], bid["filled"]) == ("closed", Decimal("0.01"))
        async with asyncio.timeout(TIMEOUT_S):
            maker = await anext(fills)
        (taker,) = await b.fetch_my_trades(BTC)
        assert await a.fetch_open_orders(BTC) == []
        (position,) = await b.fetch_positions([BTC])
    assert (maker["order"], maker["takerOrMaker"]) == (ask["id"], "maker")
    assert (taker["order"], taker["takerOrMaker"]) == (bid["id"], "taker")
    assert maker["id"] == taker["id"]
    assert position["contracts"] == Decimal("0.01")


@pytest.fixture(params=["own-mosquitto", "embedded"])
def quiet_server(
    request: pytest.FixtureRequest, tmp_path: Path, names: tuple[str, str]
) -> Iterator[str]:
    """Serve on a broker no other test publishes market data on; yield its URL."""
    with serving(write_config(tmp_path, list(names)), request.param) as url:
        yield url


async def test_a_book_kept_from_snapshot_and_deltas_is_the_servers(
    quiet_server: str, names: tuple[str, str]
) -> None:
    """After orders, cancels and a trade, the local book equals a fresh snapshot."""
    alice, bob = names
    async with (
        sdk_client(quiet_server, alice) as a,
        sdk_client(quiet_server, bob) as watcher,
    ):
        books = watcher.watch_order_book(BTC)
        async with asyncio.timeout(TIMEOUT_S):
            await anext(books)  # synced from a snapshot
        placed = [
            await a.create_order(BTC, "limit", side, "0.01", str(price))
            for side, price in [
                ("buy", 64000),
                ("buy", 64100),
                ("buy", 64100),
                ("sell", 66000),
                ("sell", 66100),
                ("sell", 66200),
            ]
        ]
        await a.cancel_order(placed[0]["id"], BTC)
        await a.cancel_order(placed[5]["id"], BTC)
        await watcher.create_order(BTC, "market", "buy", "0.005")
        server = await watcher.fetch_order_book(BTC)
        async with asyncio.timeout(TIMEOUT_S):
            async for book in books:
                if book["nonce"] >= server["nonce"]:
                    break
    assert book["nonce"] == server["nonce"]
    assert (book["bids"], book["asks"]) == (server["bids"], server["asks"])
    assert book["bids"] == [[Decimal(64100), Decimal("0.02")]]
    assert book["asks"][0] == [Decimal(66000), Decimal("0.005")]


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**80), 2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_FIELDS = st.dictionaries(
    st.sampled_from(
        ["symbol", "side", "type", "qty", "price", "order_id", "cid", "tif", "cmds"]
    ),
    _JSON | st.sampled_from(["BTC-PERP", "buy", "limit", "1e400", "-1", "0.00001"]),
    max_size=6,
)
_OPS = st.sampled_from(
    ["new", "cancel", "amend", "cancel_all", "batch", "leverage", "balance", "nope"]
)


@st.composite
def _hostile(draw: st.DrawFn, secret: str) -> bytes:
    """Return one payload no exchange may act on."""
    kind = draw(st.sampled_from(["bytes", "json", "unsigned", "forged", "signed"]))
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    if kind == "json":
        return json.dumps(draw(_JSON)).encode()
    request = {"op": draw(_OPS), "id": draw(st.text(max_size=12)), "ts_ms": 0}
    request |= draw(_FIELDS)
    if kind == "unsigned":
        return json.dumps({"req": request}).encode()
    if kind == "forged":
        return json.dumps({"req": request, "sig": "00" * 32}).encode()
    # correctly signed, but a field no request has: never a valid command
    request["zz_hostile"] = draw(_JSON)
    return signed_payload(Codec("json"), secret, request)


def test_hostile_payloads_over_mqtt_are_refused_and_change_nothing(
    start: Start, tmp_path: Path, url: str, names: tuple[str, str]
) -> None:
    """Each hostile payload is rejected, the server answers, the journal has none."""
    server = start(tmp_path)
    account = names[0]

    async def send(payloads: list[bytes]) -> None:
        async with Bot(url, account) as bot:
            for payload in payloads:
                await bot.publish(payload)
            last = await bot.answer(await bot.send("open_orders", symbol=BTC))
        assert isinstance(last, OpenOrdersInfo)
        assert last.orders == []
        answers = [m for _, m in bot.received if m is not last]
        assert not any(isinstance(m, Accepted) for m in answers)
        assert sum(isinstance(m, Rejected) for m in answers) >= len(payloads)

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(st.lists(_hostile(f"{account}-secret"), min_size=1, max_size=40))
    def fuzz(payloads: list[bytes]) -> None:
        asyncio.run(send(payloads))

    fuzz()
    server.stop()
    touched = [
        entry.record.command
        for entry in ExchangeLog(tmp_path / "journal").entries()
        if getattr(entry.record.command, "account", None) == account
    ]
    assert [type(c) for c in touched] == [Deposit]
