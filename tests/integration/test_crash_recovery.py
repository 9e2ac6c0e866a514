"""``paperx serve`` killed with SIGKILL under load, restarted, and checked.

The server runs as a child process on a Mosquitto of the test's own (the
broker outlives the server, and keeps the server's persistent session: the
commands sent while it is down are delivered after the restart). SDK bots
trade through the kills; their clients reconnect and retry under the same
request and client order ids. Afterwards the journal must hold every order
a bot saw acknowledged, no request or client order id may have run twice,
each recovery must have reached the state a full rebuild of the journal
reaches at the same seq, and `replay verify` must pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from serve_rig import Bot, Mosquitto, Server, free_port, sdk_client, write_config

from clients.sdk import PaperxClient, RejectedError, RequestTimeout
from exchange.gateway.answers import Accepted, PositionsInfo
from exchange.gateway.auth import signed_payload
from exchange.messages import CommandRejected, OrderCanceled, PlaceOrder
from replay.log import ExchangeLog
from replay.rebuild import Rebuilder
from replay.verify import verify

pytestmark = pytest.mark.broker

BTC = "BTC-PERP"
SEED = 20_240_611
TEARDOWN_S = 10  # seconds the bots and clients get to end
CYCLES = 3  # kills per run: CI stays fast
SNAPSHOT_EVERY = 150  # records: several snapshots per run, and a tail after each


def _config(directory: Path, accounts: list[str]) -> Path:
    """Write a server config with frequent snapshots and a fixed MQTT client id."""
    path = write_config(directory, accounts)
    text = path.read_text(encoding="utf-8").replace(
        '[server]\njournal = "journal"\n',
        f'[server]\njournal = "journal"\nsnapshot_every = {SNAPSHOT_EVERY}\n',
    )
    text += f'[broker]\nclient_id = "paperx-crash-{uuid.uuid4().hex[:8]}"\n'
    path.write_text(text, encoding="utf-8")
    return path


@dataclass
class _Seen:
    """What one bot was told: orders acknowledged, cancels acknowledged."""

    orders: dict[str, int] = field(default_factory=dict)  # cid -> order id
    canceled: set[int] = field(default_factory=set)
    unanswered: int = 0
    rejected: Counter[str] = field(default_factory=Counter)


async def _trade(client: PaperxClient, rng: random.Random, seen: _Seen) -> None:
    """Place and cancel orders around 65,000 until cancelled (the test's stop)."""
    n = 0
    while True:
        n += 1
        cid = f"{client.account}-{n}"
        try:
            if seen.orders and rng.random() < 0.25:
                order_id = rng.choice(list(seen.orders.values()))
                await client.cancel_order(str(order_id))
                seen.canceled.add(order_id)
                continue
            side = rng.choice(["buy", "sell"])
            price = Decimal(65_000) + Decimal(rng.randint(-20, 20)) / 2
            qty = Decimal(rng.randint(1, 5)) / 1000
            order = await client.create_order(
                BTC, "limit", side, qty, price, {"clientOrderId": cid}
            )
            seen.orders[cid] = int(order["id"])
        except RequestTimeout:
            seen.unanswered += 1
        except RejectedError as exc:
            seen.rejected[type(exc).__name__] += 1


async def _restart(server: Server, config: Path, broker: str) -> tuple[Server, dict]:
    """Kill the server with SIGKILL and start it again; return it and its recovery."""
    server.kill()
    restarted = Server(config, broker, 0)
    recovered = await asyncio.to_thread(restarted.wait_for, "journal_recovered")
    await asyncio.to_thread(restarted.wait_for, "server_ready")
    return restarted, recovered


def _journal_facts(
    directory: Path, recoveries: list[dict[str, Any]]
) -> tuple[dict[tuple[str, str], list[int]], Counter[tuple[str, str]], set[int]]:
    """Fold the journal; check each recovery's hash against the full rebuild's.

    Returns the order ids accepted per (account, client order id), the
    executions per (account, request id), and the orders canceled.
    """
    log = ExchangeLog(directory)
    rebuilder = Rebuilder(log.markets, margin=log.margin)
    at_seq = {r["seq"]: r["state_hash"] for r in recoveries}
    accepted: dict[tuple[str, str], list[int]] = {}
    executed: Counter[tuple[str, str]] = Counter()
    canceled: set[int] = set()
    for entry in log.entries():
        next_id = rebuilder.core.execution.next_order_id
        rebuilder.apply(entry)
        command = entry.record.command
        rejected = any(isinstance(e, CommandRejected) for e in entry.events)
        if entry.origin and not rejected:
            executed[command.account, entry.origin] += 1  # type: ignore[union-attr]
        if isinstance(command, PlaceOrder) and not rejected:
            key = (command.account, command.client_order_id)
            accepted.setdefault(key, []).append(next_id)
        canceled |= {e.order_id for e in entry.events if isinstance(e, OrderCanceled)}
        expected = at_seq.pop(entry.record.seq, None)
        assert expected in (None, rebuilder.state_hash()), entry.record.seq
    assert at_seq == {}, "a recovery reached a seq the journal does not hold"
    return accepted, executed, canceled


async def test_kill_9_under_load_loses_no_acknowledged_order_and_runs_nothing_twice(
    tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    """Bots trade through SIGKILLs; acks, single execution and hashes all hold."""
    rng = random.Random(SEED)  # noqa: S311 -- a seeded schedule, not a secret
    accounts = [f"bot{i}-{uuid.uuid4().hex[:6]}" for i in range(4)]
    config = _config(tmp_path, accounts)
    mosquitto = Mosquitto(tmp_path).start()
    server = Server(config, mosquitto.url, 0)
    recoveries: list[dict[str, Any]] = []
    seen = {a: _Seen() for a in accounts}
    try:
        await asyncio.to_thread(server.wait_for, "server_ready")
        clients = [
            sdk_client(mosquitto.url, a, timeout=1.0, retries=8, reconnect_delay=0.05)
            for a in accounts
        ]
        for client in clients:
            await client.__aenter__()
        bots = [
            asyncio.create_task(_trade(c, random.Random(rng.random()), seen[c.account]))  # noqa: S311
            for c in clients
        ]
        for _ in range(CYCLES):
            await asyncio.sleep(rng.uniform(0.5, 1.5))
            server, recovered = await _restart(server, config, mosquitto.url)
            recoveries.append(recovered)
        await asyncio.sleep(1.0)
        for bot in bots:
            bot.cancel()
        # Bounded: a client stuck in its teardown after the broker's restarts
        # (seen twice in full runs, not alone) must not hang the suite; what
        # this test checks is the server's journal, read after it stops.
        await asyncio.wait(bots, timeout=TEARDOWN_S)
        for client in clients:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(TEARDOWN_S):
                    await client.close()
        stopped = await asyncio.to_thread(server.stop)
    finally:
        server.kill()
        mosquitto.kill()

    journal = tmp_path / "journal"
    accepted, executed, canceled = _journal_facts(journal, recoveries)
    acked = {(a, cid): oid for a, s in seen.items() for cid, oid in s.orders.items()}
    assert len(acked) > 50  # the bots did trade
    for key, order_id in acked.items():
        assert accepted.get(key) == [order_id], key  # journaled, exactly once
    assert all(len(ids) == 1 for (_, cid), ids in accepted.items() if cid)
    assert all(count == 1 for count in executed.values())
    assert set().union(*(s.canceled for s in seen.values())) <= canceled
    report = verify(ExchangeLog(journal))
    assert report.ok, report
    assert report.live_hash == stopped["state_hash"]
    assert any(r["snapshot_seq"] for r in recoveries)  # snapshots were used
    figures = [
        {k: r[k] for k in ("seq", "snapshot_seq", "records_replayed", "seconds")}
        for r in recoveries
    ]
    record_property("recoveries", figures)  # in the JUnit report
    unanswered = sum(s.unanswered for s in seen.values())
    print(f"recoveries {figures}; acked orders {len(acked)}, unanswered {unanswered}")  # noqa: T201 -- shown with -s or -rP


async def test_a_request_retried_after_a_crash_gets_its_answer_and_runs_once(
    tmp_path: Path,
) -> None:
    """The ack of a filled order is lost in a crash; the retry is answered, not run."""
    alice, bob = f"alice-{uuid.uuid4().hex[:6]}", f"bob-{uuid.uuid4().hex[:6]}"
    config = _config(tmp_path, [alice, bob])
    mosquitto = Mosquitto(tmp_path).start()
    server = Server(config, mosquitto.url, 0)
    try:
        await asyncio.to_thread(server.wait_for, "server_ready")
        async with sdk_client(mosquitto.url, bob) as maker:
            await maker.create_order(BTC, "limit", "sell", "0.02", "65000")
        async with Bot(mosquitto.url, alice) as taker:
            request = taker.request(
                "new", symbol=BTC, side="buy", type="limit", qty="0.01",
                price="65000", tif="IOC", cid="a-1",
            )  # fmt: skip
            await taker.publish(signed_payload(taker.codec, taker.secret, request))
            first = await taker.answer(request["id"])  # durable, filled: cid free again
            server, recovered = await _restart(server, config, mosquitto.url)
            retry = request | {"ts_ms": taker.request("new")["ts_ms"]}
            await taker.publish(signed_payload(taker.codec, taker.secret, retry))
            again = await taker.answer(request["id"])
            by_cid = taker.request(
                "new", symbol=BTC, side="buy", type="limit", qty="0.01",
                price="65000", tif="IOC", cid="a-1",
            )  # fmt: skip
            await taker.publish(signed_payload(taker.codec, taker.secret, by_cid))
            same_cid = await taker.answer(by_cid["id"])
            positions_id = await taker.send("positions")
            positions = await taker.answer(positions_id)
        server.stop()
    finally:
        server.kill()
        mosquitto.kill()
    assert recovered["seq"] >= first.seq  # type: ignore[union-attr]
    for answer in (again, same_cid):
        assert isinstance(answer, Accepted)
        assert answer.duplicate
        assert (answer.order_id, answer.seq) == (first.order_id, first.seq)  # type: ignore[union-attr]
    assert isinstance(positions, PositionsInfo)
    assert [p.contracts for p in positions.positions] == [Decimal("0.01")]


async def _traded_journal(directory: Path) -> tuple[Path, Path, dict[str, Any]]:
    """Run a server, trade a little, stop it cleanly; return config, journal, stop."""
    alice, bob = f"alice-{uuid.uuid4().hex[:6]}", f"bob-{uuid.uuid4().hex[:6]}"
    config = _config(directory, [alice, bob])
    mosquitto = Mosquitto(directory).start()
    server = Server(config, mosquitto.url, 0)
    try:
        await asyncio.to_thread(server.wait_for, "server_ready")
        async with (
            sdk_client(mosquitto.url, alice) as a,
            sdk_client(mosquitto.url, bob) as b,
        ):
            for n in range(20):
                await a.create_order(BTC, "limit", "sell", "0.001", str(65_000 + n))
                await b.create_order(BTC, "market", "buy", "0.001")
        stopped = await asyncio.to_thread(server.stop)
    finally:
        server.kill()
        mosquitto.kill()
    return config, directory / "journal", stopped


async def test_a_corrupt_snapshot_is_skipped_reported_and_the_state_still_recovered(
    tmp_path: Path,
) -> None:
    """A truncated newest snapshot: logged as skipped, recovery replays, same hash."""
    config, journal, stopped = await _traded_journal(tmp_path)
    (newest,) = sorted(journal.glob("snapshot-*.msgpack"))[-1:]
    newest.write_bytes(newest.read_bytes()[:-10])
    server = Server(config, None, free_port())
    try:
        skipped = await asyncio.to_thread(server.wait_for, "snapshot_skipped")
        recovered = await asyncio.to_thread(server.wait_for, "journal_recovered")
        await asyncio.to_thread(server.wait_for, "server_ready")
        server.stop()
    finally:
        server.kill()
    assert skipped["path"] == str(newest)
    assert "truncated" in skipped["reason"]
    assert recovered["state_hash"] == stopped["state_hash"]
    assert recovered["snapshot_seq"] != stopped["seq"]


async def test_journal_damage_with_records_after_it_is_refused_with_the_repair_command(
    tmp_path: Path,
) -> None:
    """A flipped byte mid-journal: the server refuses to start and names the repair."""
    config, journal, _ = await _traded_journal(tmp_path)
    (segment,) = journal.glob("*.pxj")
    data = bytearray(segment.read_bytes())
    data[len(data) // 2] ^= 0xFF
    segment.write_bytes(bytes(data))
    server = Server(config, None, free_port())
    try:
        damaged = await asyncio.to_thread(server.wait_for, "journal_damaged")
        code = await asyncio.to_thread(server.process.wait, 15)
    finally:
        server.kill()
    assert code == 2
    assert damaged["hint"] == f"paperx replay repair {journal}"
    assert "intact records follow the damage" in damaged["error"]
