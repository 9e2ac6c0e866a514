"""The stress modes through ``paperx serve`` and the wire, with the SDK as the client.

Latency shifts the measured ack latency by the configured amount; injected
rejects are coded, journaled, and replay to the same hash; a book flood
leaves a correct client's book in sync; a client forcibly disconnected
again and again reconnects and loses or doubles no order.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import pytest
from serve_rig import TIMEOUT_S, Server, Start, free_port, sdk_client, write_config

from clients.sdk import ExchangeNotAvailable, PaperxClient
from exchange.cli.main import main
from exchange.messages import CommandRejected, DeclareStress, InjectReject, PlaceOrder
from replay.log import ExchangeLog

pytestmark = pytest.mark.broker

BTC = "BTC-PERP"
DELAY_MS = 50


@contextmanager
def _embedded(config: Path) -> Iterator[tuple[Server, str]]:
    """Run ``paperx serve`` on an embedded broker of its own; yield it and its URL."""
    port = free_port()
    server = Server(config, None, port)
    try:
        server.wait_for("server_ready")
        yield server, f"mqtt://127.0.0.1:{port}"
    finally:
        server.kill()


async def _bid(client: PaperxClient, n: int, cid: str = "") -> str:
    """Place a resting bid far below the market; return its status."""
    params = {"clientOrderId": cid} if cid else None
    price = str(60000 - n % 1000)
    order = await client.create_order(BTC, "limit", "buy", "0.001", price, params)
    return str(order["status"])


async def _ack_latency(client: PaperxClient, n: int) -> float:
    """Return the seconds one order takes from the call to its answered result."""
    started = time.perf_counter()
    await _bid(client, n)
    return time.perf_counter() - started


def _journal(directory: Path) -> ExchangeLog:
    return ExchangeLog(directory / "journal")


async def test_a_fixed_delay_shifts_the_measured_ack_latency_by_itself(
    tmp_path: Path, names: tuple[str, str]
) -> None:
    """Alice's acks are 50 ms late, bob's are not: medians differ by about 50 ms."""
    alice, bob = names
    stress = f'[stress.latency.accounts]\n"{alice}" = {{ dist = "fixed", ms = 50 }}\n'
    config = write_config(tmp_path, [alice, bob], extra=stress)
    with _embedded(config) as (_, url):
        async with sdk_client(url, alice) as a, sdk_client(url, bob) as b:
            await _ack_latency(a, 0)  # warm both paths up
            await _ack_latency(b, 0)
            delayed, plain = [], []
            for n in range(1, 21):
                delayed.append(await _ack_latency(a, n))
                plain.append(await _ack_latency(b, n))
    shift = statistics.median(delayed) - statistics.median(plain)
    figures = f"delayed {sorted(delayed)}, plain {sorted(plain)} (s)"
    assert min(delayed) >= DELAY_MS / 1000, figures
    assert DELAY_MS * 0.8 / 1000 <= shift <= 10 * DELAY_MS / 1000, figures


async def test_injected_rejects_are_coded_journaled_and_replay_to_the_same_hash(
    tmp_path: Path, names: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Half of alice's orders are refused 9004; verify and report agree."""
    alice, bob = names
    stress = f'[stress]\nseed = 11\n[stress.reject.accounts]\n"{alice}" = 0.5\n'
    config = write_config(tmp_path, [alice, bob], extra=stress)
    with _embedded(config) as (server, url):
        errors: dict[str, ExchangeNotAvailable] = {}
        placed = []
        async with sdk_client(url, alice) as a, sdk_client(url, bob) as b:
            for n in range(20):
                cid = f"c{n}"
                try:
                    await _bid(a, n, cid)
                except ExchangeNotAvailable as exc:
                    errors[cid] = exc
                else:
                    placed.append(cid)
            assert await _bid(b, 0) == "open"  # bob is never refused
            opened = await a.fetch_open_orders(BTC)
        server.stop()
    (logged,) = [e for e in server.log if e["event"] == "stress_settings"]
    assert logged["reject"]["accounts"] == {alice: 0.5}
    refused = list(errors)
    assert 0 < len(refused) < 20
    assert {(e.code, e.name) for e in errors.values()} == {(9004, "INJECTED_REJECT")}
    assert all(e.seq > 0 for e in errors.values())  # decided by journaled records
    assert sorted(o["clientOrderId"] for o in opened) == sorted(placed)
    commands = [e.record.command for e in _journal(tmp_path).entries()]
    injected = [c for c in commands if isinstance(c, InjectReject)]
    assert [c.command.client_order_id for c in injected] == refused
    assert sum(isinstance(c, DeclareStress) for c in commands) == 1
    assert main(["replay", "verify", str(tmp_path / "journal")]) == 0
    capsys.readouterr()
    assert main(["replay", "report", str(tmp_path / "journal"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["accounts"][alice]["rejects"] == {"INJECTED_REJECT": len(refused)}


async def test_a_book_flood_never_puts_a_following_client_out_of_sync(
    tmp_path: Path, names: tuple[str, str]
) -> None:
    """At 200 no-op deltas a second, the watcher's book has no gap and is right."""
    alice, bob = names
    stress = '[stress.flood]\nrate = 200\nsymbols = ["BTC-PERP"]\n'
    config = write_config(tmp_path, [alice, bob], extra=stress)
    with _embedded(config) as (_, url):
        async with sdk_client(url, alice) as a, sdk_client(url, bob) as watcher:
            books = watcher.watch_order_book(BTC)
            async with asyncio.timeout(TIMEOUT_S):
                first = await anext(books)
            for side, price in [("buy", 64000), ("buy", 64100), ("sell", 66000)]:
                await a.create_order(BTC, "limit", side, "0.01", str(price))
            server = await watcher.fetch_order_book(BTC)
            async with asyncio.timeout(TIMEOUT_S):
                async for book in books:  # a second of flood beyond the snapshot
                    if book["nonce"] >= server["nonce"] + 200:
                        break
            local = watcher.books[BTC]
    assert (local.synced, local.gaps) == (True, 0)
    assert book["nonce"] - first["nonce"] > 200
    assert (book["bids"], book["asks"]) == (server["bids"], server["asks"])
    assert book["bids"][0] == [Decimal(64100), Decimal("0.01")]


async def test_a_client_disconnected_again_and_again_loses_and_doubles_no_order(
    start: Start, tmp_path: Path, url: str, names: tuple[str, str]
) -> None:
    """Random take-overs of its client id: every order exists once, as placed."""
    alice, bob = names
    victim = f"victim-{uuid.uuid4().hex[:12]}"
    stress = f'[stress.disconnect."{victim}"]\nmean_interval_s = 0.4\n'
    write_config(tmp_path, [alice, bob], extra=stress)
    server = start(tmp_path)
    placed: list[str] = []
    client = sdk_client(url, alice, client_id=victim, timeout=2.0, retries=5)
    async with client:
        async with asyncio.timeout(4 * TIMEOUT_S):
            while client.reconnects < 3 or len(placed) < 10:
                cid = f"o{len(placed)}"
                assert await _bid(client, len(placed), cid) == "open"
                placed.append(cid)
        opened = await client.fetch_open_orders(BTC)
    server.stop()
    assert sorted(o["clientOrderId"] for o in opened) == sorted(placed)
    accepted = [
        entry.record.command.client_order_id
        for entry in _journal(tmp_path).entries()
        if isinstance(entry.record.command, PlaceOrder)
        and entry.record.command.account == alice
        and not any(isinstance(e, CommandRejected) for e in entry.events)
    ]
    assert sorted(accepted) == sorted(placed)
    drops = [e for e in server.log if e.get("event") == "client_disconnected"]
    assert len(drops) >= client.reconnects >= 3
    assert {e["client_id"] for e in drops} == {victim}
