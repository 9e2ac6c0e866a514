"""One load process: many lean bots on one event loop, paced by the schedule.

The bots are lean on purpose: the SDK's `PaperxClient` keeps a full order
cache and decodes every answer into ccxt shapes (Decimals, dicts), which at
thousands of orders per second costs more CPU than the server it measures.
Here each bot is one lean MQTT client (`exchange.gateway.mqtt_client`, as
the gateway's: TCP_NODELAY, a wide QoS 1 window, messages handed to a
callback from the read loop) that signs wire structs with
`exchange.gateway.auth` and decodes answers into a struct of only the
fields it reads (msgspec skips the rest).

A process gets every P-th intended send time of the run and hands them to
its bots in turn; publishes do not wait for the broker's PUBACK (the answer
is what is measured). Progress goes to the parent's queue twice a second;
the result (encoded histograms and counts) once, at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

import msgspec

from clients.loadtest.mix import BotBook, OrderMix
from clients.loadtest.probe import Pacer, Probe
from clients.loadtest.schedule import Schedule
from exchange.gateway.auth import signed_payload
from exchange.gateway.mqtt import connect_lean
from exchange.gateway.mqtt_client import MqttClient, MqttError
from exchange.gateway.wire import (
    Batch,
    BatchItem,
    Codec,
    SetLeverage,
    SetMarginMode,
    topic,
)

__all__ = ["MarketSpec", "WorkerSpec", "run_worker"]

_PROGRESS_S = 0.5
_SETUP_TIMEOUT_S = 30.0
_ENDED = frozenset({"filled", "canceled", "expired"})


class _Queue(Protocol):
    """The parent's queue (a multiprocessing queue)."""

    def put(self, item: Any) -> None:  # noqa: ANN401 -- any picklable message
        """Send one message to the parent."""


class _Event(Protocol):
    """The parent's start signal (a multiprocessing event)."""

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the parent starts the run."""


class _Lean(msgspec.Struct):
    """The fields of an answer the load bots read; msgspec skips the rest."""

    kind: str
    id: str = ""
    op: str = ""
    seq: int = 0
    order_id: int = 0
    cid: str = ""
    name: str = ""
    status: str = ""
    ts_ns: int = 0
    price: str | None = None
    symbol: str = ""
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class MarketSpec:
    """A market's tick and lot (decimal) and the mid the bots start from."""

    symbol: str
    tick: Decimal
    lot: Decimal
    mid: Decimal


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """Everything one load process needs (picklable: it crosses a spawn)."""

    index: int
    url: str
    accounts: tuple[tuple[str, str], ...]  # (account, API secret)
    offsets: tuple[tuple[int, int], ...]  # (intended offset ns, phase index)
    schedule: Schedule
    mix: OrderMix
    markets: tuple[MarketSpec, ...]
    batch: int = 1
    qos: int = 1
    seed: int = 1
    tag: str = "lt"
    drain_s: float = 10.0
    market_data: bool = True
    fmt: str = "json"


class _Bot:
    """One account's MQTT client and order view."""

    __slots__ = ("account", "book", "client", "cmd_topic", "counter", "secret")

    def __init__(self, account: str, secret: str, book: BotBook) -> None:
        self.account = account
        self.secret = secret
        self.client: MqttClient | None = None  # connected once the bot exists
        self.book = book
        self.cmd_topic = topic("ack", account).replace("/ack/", "/cmd/")
        self.counter = 0


def run_worker(spec: WorkerSpec, queue: _Queue, go: _Event, start_ns: Any) -> None:  # noqa: ANN401 -- a multiprocessing Value
    """Run one load process to the end (the target of a spawned process)."""
    asyncio.run(_Worker(spec, queue).run(go, start_ns))


class _Worker:
    """The bots of one process, their readers, and the pacing loop."""

    def __init__(self, spec: WorkerSpec, queue: _Queue) -> None:
        self.spec = spec
        self.queue = queue
        self.codec = Codec("json" if spec.fmt == "json" else "msgpack")
        self.decode = (
            msgspec.json.Decoder(_Lean).decode
            if spec.fmt == "json"
            else msgspec.msgpack.Decoder(_Lean).decode
        )
        schedule = spec.schedule
        self.probe = Probe(0, len(schedule.phases()), schedule.phase_index_at)
        self.mid = {m.symbol: m.mid for m in spec.markets}
        self.bots: list[_Bot] = []
        self.limits: dict[str, str] = {}  # request id of a limit order -> symbol
        self.tasks: set[asyncio.Task[Any]] = set()
        self.idle = asyncio.Event()  # set when no request awaits its answer
        self.publish_failed = 0

    async def run(self, go: _Event, start_ns: Any) -> None:  # noqa: ANN401
        """Connect, set up, wait for the start, pace the run, drain, report."""
        spec = self.spec
        async with contextlib.AsyncExitStack() as stack:
            for n, (account, secret) in enumerate(spec.accounts):
                book = BotBook(
                    account,
                    spec.mix,
                    spec.markets[0].tick,
                    spec.markets[0].lot,
                    random.Random(spec.seed * 1_000_003 + spec.index * 1009 + n),  # noqa: S311 -- load, not secrets
                    self.mid,
                )
                bot = _Bot(account, secret, book)
                client = await connect_lean(
                    spec.url,
                    f"{spec.tag}-{spec.index}-{n}",
                    functools.partial(self._on_message, bot),
                )
                stack.push_async_callback(client.close)
                bot.client = client
                await client.subscribe(topic("ack", account), qos=1)
                if n == 0 and spec.market_data:
                    for market in spec.markets:
                        await client.subscribe(topic("trades", market.symbol), qos=0)
                self.bots.append(bot)
            await self._setup()
            self.queue.put(("ready", spec.index))
            await asyncio.to_thread(go.wait)
            self.probe.start_ns = int(start_ns.value)
            reporter = self._spawn(self._progress())
            await self._pace()
            await self._drain()
            reporter.cancel()
            result = self.probe.result() | {"publish_failed": self.publish_failed}
            self.queue.put(("result", spec.index, result))
            for task in list(self.tasks):
                task.cancel()

    def _spawn(self, coroutine: Any) -> asyncio.Task[Any]:  # noqa: ANN401
        """Start a task and keep a reference until it ends."""
        task: asyncio.Task[Any] = asyncio.ensure_future(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def _setup(self) -> None:
        """Set each bot's margin mode and leverage (not measured), and wait."""
        mix = self.spec.mix
        for bot in self.bots:
            number = (
                int(bot.account.rsplit("-", 1)[-1]) if bot.account[-1].isdigit() else 0
            )
            for market in self.spec.markets:
                now_ms = time.time_ns() // 1_000_000
                mode = mix.margin_modes[number % len(mix.margin_modes)]
                leverage = mix.leverage[number % len(mix.leverage)]
                for request in (
                    SetMarginMode(
                        id=self._next_id(bot),
                        ts_ms=now_ms,
                        symbol=market.symbol,
                        mode=mode,
                    ),
                    SetLeverage(
                        id=self._next_id(bot),
                        ts_ms=now_ms,
                        symbol=market.symbol,
                        leverage=leverage,
                    ),
                ):
                    self.probe.sent_request(request.id, 0, -1, "other", 0)
                    self._publish(bot, signed_payload(self.codec, bot.secret, request))
        await self._answered(_SETUP_TIMEOUT_S)

    async def _answered(self, seconds: float) -> None:
        """Return once every request sent has its answer, or after ``seconds``."""
        self.idle.clear()
        if self.probe.pending:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.idle.wait(), seconds)

    def _next_id(self, bot: _Bot) -> str:
        """Return a request id unique in the run (it is also the order's cid)."""
        bot.counter += 1
        return f"{self.spec.tag}{self.spec.index}.{bot.account[-4:]}.{bot.counter}"

    def _publish(self, bot: _Bot, payload: bytes) -> None:
        """Publish without waiting for the broker's PUBACK (the answer is timed).

        A message the client cannot send (its link is lost) is counted; its
        request then stays unanswered, and the run reports it lost.
        """
        assert bot.client is not None  # connected in run()
        try:
            bot.client.publish(bot.cmd_topic, payload, self.spec.qos)
        except MqttError:
            self.publish_failed += 1

    async def _pace(self) -> None:
        """Send every request when due (late ones at once), bots in turn."""
        start = self.probe.start_ns
        pacer = Pacer([(start + offset, phase) for offset, phase in self.spec.offsets])
        bots, turn = self.bots, 0
        while pacer:
            now = time.time_ns()
            for intended, phase in pacer.due(now):
                self._send(bots[turn % len(bots)], intended, phase, now)
                turn += 1
            wait = pacer.wait_ns(time.time_ns())
            await asyncio.sleep(wait / 1e9 if wait > 0 else 0)

    def _send(self, bot: _Bot, intended: int, phase: int, now: int) -> None:
        """Draw ``batch`` requests for one bot and publish them as one message."""
        probe = self.probe
        requests: list[BatchItem] = []
        for _ in range(self.spec.batch):
            request_id = self._next_id(bot)
            metric, request = bot.book.draw(request_id)
            cid = request_id if metric == "order" else ""
            if metric == "order" and getattr(request, "type", "") == "limit":
                self.limits[request_id] = getattr(request, "symbol", "")
            probe.sent_request(request_id, intended, phase, metric, now, cid)
            requests.append(request)
        message = requests[0] if len(requests) == 1 else Batch(cmds=requests)
        self._publish(bot, signed_payload(self.codec, bot.secret, message))

    def _on_message(self, bot: _Bot, name: str, payload: bytes) -> None:
        """Match an answer to its request, or time a fill or a public trade."""
        now = time.time_ns()
        lean = self.decode(payload)
        kind, probe = lean.kind, self.probe
        if kind == "accepted":
            probe.answered(lean.id, now, None, (bot.account, lean.op, lean.seq))
            symbol = self.limits.pop(lean.id, None)
            if symbol is not None and lean.order_id and not lean.duplicate:
                bot.book.open_orders[lean.order_id] = symbol
        elif kind == "rejected":
            probe.answered(lean.id, now, lean.name or str(lean.id))
            self.limits.pop(lean.id, None)
        else:
            self._on_event(bot, lean, now, name)
        if not probe.pending:
            self.idle.set()

    def _on_event(self, bot: _Bot, lean: _Lean, now: int, name: str) -> None:
        """Time a fill or a public trade; forget an order that ended."""
        kind, probe = lean.kind, self.probe
        if kind == "fill":
            probe.filled(lean.cid, now)
        elif kind == "order":
            if lean.status in _ENDED:
                bot.book.open_orders.pop(lean.order_id, None)
                if lean.status != "filled":
                    probe.order_ended(lean.cid)
        elif kind == "trade" and name.startswith("paperx/v1/md/"):
            probe.market_data(lean.ts_ns, now)
            if lean.price is not None:
                self.mid[lean.symbol] = Decimal(lean.price)

    async def _progress(self) -> None:
        """Tell the parent the counts twice a second."""
        probe = self.probe
        while True:
            self.queue.put(
                (
                    "progress",
                    self.spec.index,
                    probe.sent,
                    probe.sent - len(probe.pending),
                    sum(probe.rejects.values()),
                )
            )
            await asyncio.sleep(_PROGRESS_S)

    async def _drain(self) -> None:
        """Wait for the answers still due, up to ``drain_s``."""
        await self._answered(self.spec.drain_s)
        await asyncio.sleep(0.2)  # late duplicates, if any, arrive now
