"""Which MQTT client library should the server use? (issue #8; prints numbers).

``python -m bench.mqtt_clients`` starts a Mosquitto of its own on a free
loopback port (``set_tcp_nodelay true``; never the shared one on 1883) and
measures, for aiomqtt 2.5 (paho), gmqtt and the lean asyncio-streams client
of ``exchange/gateway/mqtt_client.py``, each in a process of its own (the *measured*
process) driven by a load generator in another process (always the lean
client, so that it is the same for every library):

echo
    The server's pattern: the measured process subscribes ``bench/req/+``
    at QoS 1 and answers each message with one QoS 1 publish on
    ``bench/ans/{account}``; the generator publishes N requests (a QoS 1
    window of 1,024) on 16 account topics and counts the answers. Reported:
    messages/s and CPU seconds per 1,000 messages of the measured process
    (``time.process_time``), from the warm-up'th request received to the
    last answer's PUBACK, and the share of that wall time it was on a CPU
    (below ~90% it waited: for the generator, the broker, or the machine).
qos0
    The measured process publishes N messages at QoS 0 (then one QoS 1
    marker, whose PUBACK says the broker has taken them all); the generator
    subscribes and counts them. Messages/s and CPU per 1,000 as above.
rtt
    The generator sends requests at a low fixed rate to the echo responder
    and times each answer (p50/p99 round trip, after a warm-up).

Each library is used the way it is meant to be: aiomqtt as the gateway uses
it (a task per publish awaiting its PUBACK, QoS 0 in batches of 256 tasks),
gmqtt's fire-and-forget ``publish`` and synchronous ``on_message``, the lean
client's callback and futures. Payloads are 200 bytes (an order's JSON).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path
from queue import Empty
from typing import Any, Protocol

from exchange.cli.server_process import Mosquitto
from exchange.gateway.mqtt_client import MqttClient

CLIENTS = ("aiomqtt", "gmqtt", "lean")
SCENARIOS = ("echo", "qos0", "rtt")
_ACCOUNTS = 16
_PAYLOAD_SIZE = 200
_BATCH = 256  # the gateway's publishes in flight per batch
_WINDOW = 1024  # QoS 1 messages in flight, as the gateway configures paho
_TIMEOUT_S = 180.0

OnMessage = Callable[[str, bytes], None]


def _payload(index: int) -> bytes:
    """Return a 200-byte request carrying its index and its send time (ns)."""
    head = b'{"i":%d,"t":%d,"pad":"' % (index, time.perf_counter_ns())
    return head + b"x" * (_PAYLOAD_SIZE - len(head) - 2) + b'"}'


def _sent_ns(payload: bytes) -> int:
    """Return the send time a `_payload` carries."""
    start = payload.index(b'"t":') + 4
    return int(payload[start : payload.index(b",", start)])


# ---------------------------------------------------------------- adapters


class Adapter(Protocol):
    """One library behind the few operations the scenarios need."""

    async def start(self, port: int, ident: str, on_message: OnMessage) -> None:
        """Connect; hand every message received to ``on_message``."""

    async def subscribe(self, topic_filter: str, qos: int) -> None:
        """Subscribe; return once the broker granted it."""

    def answer(self, topic: str, payload: bytes) -> None:
        """Publish at QoS 1 without waiting (the server answering)."""

    async def publish_many(self, topic: str, payloads: list[bytes]) -> None:
        """Publish every payload at QoS 0, as fast as the library allows."""

    async def settle(self) -> None:
        """Return once every QoS 1 publish so far has its PUBACK."""

    async def stop(self) -> None:
        """Disconnect."""


class AiomqttAdapter:
    """aiomqtt (paho underneath), configured and driven as the gateway does."""

    def __init__(self, *, warnings: bool = False) -> None:
        """Nothing connected yet; ``warnings``: leave aiomqtt's on (to stderr)."""
        self.pending: set[asyncio.Task[None]] = set()
        self.warnings = warnings

    async def start(self, port: int, ident: str, on_message: OnMessage) -> None:
        """Connect with TCP_NODELAY and the gateway's window; read in a task."""
        import aiomqtt  # noqa: PLC0415 -- only the measured process needs it

        from clients.sdk import client_for  # noqa: PLC0415

        # aiomqtt logs a warning for each publish made while more than 10 are
        # pending (always, here and in the server): measure the library, not that
        if not self.warnings:
            logging.getLogger("mqtt").setLevel(logging.ERROR)
        self.client = client_for(f"mqtt://127.0.0.1:{port}", ident)
        await self.client.__aenter__()

        async def read() -> None:
            async for message in self.client.messages:
                payload = message.payload
                assert isinstance(payload, bytes | bytearray)
                on_message(message.topic.value, bytes(payload))

        self.reader = asyncio.create_task(read())
        self._errors = (aiomqtt.MqttError,)

    async def subscribe(self, topic_filter: str, qos: int) -> None:
        """Subscribe (aiomqtt awaits the SUBACK)."""
        await self.client.subscribe(topic_filter, qos=qos)

    def answer(self, topic: str, payload: bytes) -> None:
        """A task awaiting ``publish`` (the PUBACK), as the gateway's publisher."""
        task = asyncio.create_task(self.client.publish(topic, payload, qos=1))
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    async def publish_many(self, topic: str, payloads: list[bytes]) -> None:
        """Batches of 256 publish tasks, each batch awaited, as the gateway."""
        publish = self.client.publish
        for first in range(0, len(payloads), _BATCH):
            async with asyncio.TaskGroup() as group:
                for payload in payloads[first : first + _BATCH]:
                    group.create_task(publish(topic, payload, qos=0))

    async def settle(self) -> None:
        """Await every answer task."""
        while self.pending:
            await asyncio.gather(*self.pending)

    async def stop(self) -> None:
        """Stop reading and disconnect."""
        self.reader.cancel()
        with contextlib.suppress(*self._errors):
            await self.client.__aexit__(None, None, None)


class GmqttAdapter:
    """gmqtt at MQTT 3.1.1: a synchronous ``on_message``, fire-and-forget publish."""

    async def start(self, port: int, ident: str, on_message: OnMessage) -> None:
        """Connect (asyncio sets TCP_NODELAY on its sockets)."""
        import gmqtt  # type: ignore[import-untyped]  # noqa: PLC0415
        from gmqtt.mqtt.constants import MQTTv311  # type: ignore[import-untyped]  # noqa: PLC0415

        self.client = gmqtt.Client(ident)
        self.subscribed = asyncio.Event()

        def received(
            _c: object, topic: str, payload: bytes, _q: int, _p: object
        ) -> int:
            on_message(topic, payload)
            return 0  # PUBACK's "success"

        self.client.on_message = received
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        await self.client.connect("127.0.0.1", port, version=MQTTv311, keepalive=60)

    async def subscribe(self, topic_filter: str, qos: int) -> None:
        """Subscribe; wait for ``on_subscribe`` (the SUBACK)."""
        self.subscribed.clear()
        self.client.subscribe(topic_filter, qos=qos)
        await self.subscribed.wait()

    def answer(self, topic: str, payload: bytes) -> None:
        """``publish`` returns at once; gmqtt keeps the message until its PUBACK."""
        self.client.publish(topic, payload, qos=1)

    async def publish_many(self, topic: str, payloads: list[bytes]) -> None:
        """Publish in a loop, yielding to the loop every 256."""
        publish = self.client.publish
        for index, payload in enumerate(payloads, 1):
            publish(topic, payload, qos=0)
            if index % _BATCH == 0:
                await asyncio.sleep(0)

    async def settle(self) -> None:
        """Wait until gmqtt's store of unacknowledged messages is empty."""
        await self.client._persistent_storage.wait_empty()  # noqa: SLF001 -- no public API

    async def stop(self) -> None:
        """Disconnect."""
        await self.client.disconnect()


class LeanAdapter:
    """The lean client of `exchange.gateway.mqtt_client`."""

    async def start(self, port: int, ident: str, on_message: OnMessage) -> None:
        """Connect."""
        self.client = await MqttClient.connect(
            "127.0.0.1", port, ident, on_message, max_inflight=_WINDOW
        )

    async def subscribe(self, topic_filter: str, qos: int) -> None:
        """Subscribe (awaits the SUBACK)."""
        await self.client.subscribe(topic_filter, qos)

    def answer(self, topic: str, payload: bytes) -> None:
        """Publish at QoS 1; the future is kept by the client until the PUBACK."""
        self.client.publish(topic, payload, 1)

    async def publish_many(self, topic: str, payloads: list[bytes]) -> None:
        """Publish in a loop, draining the socket every 256."""
        publish = self.client.publish
        for index, payload in enumerate(payloads, 1):
            publish(topic, payload, 0)
            if index % _BATCH == 0:
                await self.client.drain()

    async def settle(self) -> None:
        """Await every PUBACK still due."""
        await self.client.settled()

    async def stop(self) -> None:
        """Disconnect."""
        await self.client.close()


ADAPTERS: dict[str, Callable[[], Adapter]] = {
    "aiomqtt": AiomqttAdapter,
    "aiomqtt+warnings": lambda: AiomqttAdapter(warnings=True),
    "gmqtt": GmqttAdapter,
    "lean": LeanAdapter,
}


# ---------------------------------------------------------------- processes


async def _wait(event: MpEvent) -> None:
    """Wait for a cross-process event without blocking the loop."""
    await asyncio.to_thread(event.wait, _TIMEOUT_S)


async def _measured(
    name: str, scenario: str, port: int, n: int, warmup: int, events: list[MpEvent]
) -> dict[str, Any]:
    """Run the measured side of ``scenario`` with library ``name``."""
    ready, go = events
    adapter = ADAPTERS[name]()
    marks: list[tuple[float, float]] = []
    received = 0
    everything = asyncio.Event()

    def echo(topic: str, payload: bytes) -> None:
        nonlocal received
        received += 1
        if received == warmup:
            marks.append((time.perf_counter(), time.process_time()))
        adapter.answer("bench/ans/" + topic.rpartition("/")[2], payload)
        if received == n:
            everything.set()

    await adapter.start(port, f"measured-{name}", echo)
    if scenario == "qos0":
        payloads = [_payload(i) for i in range(n)]
        ready.set()
        await _wait(go)
        marks.append((time.perf_counter(), time.process_time()))
        await adapter.publish_many("bench/md/BTC-PERP", payloads)
        adapter.answer("bench/mark", b"end")  # its PUBACK: the broker took all
        counted = n
    else:
        await adapter.subscribe("bench/req/+", 1)
        ready.set()
        await everything.wait()
        counted = n - warmup
    await adapter.settle()
    marks.append((time.perf_counter(), time.process_time()))
    await adapter.stop()
    (wall0, cpu0), (wall1, cpu1) = marks
    wall, cpu = wall1 - wall0, cpu1 - cpu0
    return {
        "rate": counted / wall,
        "cpu_per_1000": cpu / counted * 1000,
        "busy": cpu / wall,
    }


async def _generator(
    scenario: str, port: int, n: int, rate: float, warmup: int, events: list[MpEvent]
) -> dict[str, Any]:
    """Run the load generator's side of ``scenario`` (always the lean client)."""
    ready, go = events
    count = 0
    latencies: list[int] = []
    finished = asyncio.Event()

    def on_answer(_topic: str, payload: bytes) -> None:
        nonlocal count
        count += 1
        if scenario == "rtt":
            latencies.append(time.perf_counter_ns() - _sent_ns(payload))
        if count == n:
            finished.set()

    client = await MqttClient.connect(
        "127.0.0.1", port, "generator", on_answer, max_inflight=_WINDOW
    )
    if scenario == "qos0":
        await client.subscribe("bench/md/#", 0)
        await _wait(ready)
        go.set()
        # QoS 0 may be dropped: stop once nothing came for a second
        last = -1
        while count != last and not finished.is_set():
            last = count
            await asyncio.sleep(1.0)
        await client.close()
        return {"received": count}
    await client.subscribe("bench/ans/+", 1)
    await _wait(ready)
    start = time.perf_counter()
    for index in range(n):
        if scenario == "rtt":
            delay = start + index / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        await client.publish_wait(f"bench/req/a{index % _ACCOUNTS}", _payload(index), 1)
    await asyncio.wait_for(finished.wait(), _TIMEOUT_S)
    await client.close()
    if scenario != "rtt":
        return {"received": count}
    measured = sorted(latencies[warmup:])
    return {
        "received": count,
        "p50_ms": measured[len(measured) // 2] / 1e6,
        "p99_ms": measured[int(len(measured) * 0.99)] / 1e6,
    }


def _process_main(queue: Any, role: str, args: tuple[Any, ...]) -> None:  # noqa: ANN401
    """Entry point of a spawned process: run its side and report its result."""
    try:
        main = _measured if role == "measured" else _generator
        result = asyncio.run(main(*args))
    except BaseException as exc:  # noqa: BLE001 -- the parent waits for a report
        result = {"error": f"{type(exc).__name__}: {exc}"}
    queue.put((role, result))


def run_one(
    name: str, scenario: str, port: int, options: argparse.Namespace
) -> dict[str, Any]:
    """Run one scenario of one library in two fresh processes; return both results."""
    context = mp.get_context("spawn")
    queue = context.Queue()
    events = [context.Event(), context.Event()]
    n = {"echo": options.n, "qos0": options.qos0_n, "rtt": options.rtt_n}[scenario]
    warmup = options.warmup if scenario != "rtt" else max(1, options.rtt_n // 20)
    processes = [
        context.Process(
            target=_process_main,
            args=(queue, "measured", (name, scenario, port, n, warmup, events)),
        ),
        context.Process(
            target=_process_main,
            args=(
                queue,
                "generator",
                (scenario, port, n, options.rtt_rate, warmup, events),
            ),
        ),
    ]
    for process in processes:
        process.start()
    results: dict[str, Any] = {}
    try:
        for _ in processes:
            role, result = queue.get(timeout=_TIMEOUT_S)
            results[role] = result
    except Empty:
        results["error"] = "timed out"
    for process in processes:
        process.join(10)
        if process.is_alive():
            process.kill()
    return results


# ---------------------------------------------------------------- report


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.mqtt_clients", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--clients",
        default=",".join(CLIENTS),
        help="of aiomqtt, aiomqtt+warnings (its per-publish warning left on), "
        "gmqtt, lean",
    )
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--n", type=int, default=30_000, help="echo: requests")
    parser.add_argument("--qos0-n", type=int, default=60_000, help="qos0: messages")
    parser.add_argument("--rtt-n", type=int, default=1_000, help="rtt: requests")
    parser.add_argument("--rtt-rate", type=float, default=200.0, help="rtt: requests/s")
    parser.add_argument(
        "--warmup", type=int, default=2_000, help="messages before the clock"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs; medians reported")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run every library through every scenario ``--repeat`` times; print medians."""
    options = _parser().parse_args(argv)
    names = options.clients.split(",")
    scenarios = options.scenarios.split(",")
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    loads = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as tmp, Mosquitto(Path(tmp)) as broker:
        cpus = os.cpu_count()
        print(f"mosquitto on 127.0.0.1:{broker.port}, {cpus} CPUs, load {loads[0]:.2f}")
        for repeat in range(options.repeat):
            for scenario in scenarios:
                for name in names:  # interleaved: the machine's load varies
                    result = run_one(name, scenario, broker.port, options)
                    runs.setdefault((name, scenario), []).append(result)
                    loads.append(os.getloadavg()[0])
                    print(
                        f"  run {repeat + 1} {scenario:5} {name:8} {result}", flush=True
                    )
    print(f"load average (1 min) during the runs: {min(loads):.2f}-{max(loads):.2f}")
    print()
    print(
        "| client | echo msg/s | echo CPU s/1k | echo busy"
        " | QoS 0 msg/s | QoS 0 CPU s/1k | RTT p50 | RTT p99 |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name in names:
        cells = [name]
        for scenario, fields in _COLUMNS:
            results = runs.get((name, scenario), [])
            for field in fields:
                side = "generator" if field.startswith("p") else "measured"
                values = [r[side][field] for r in results if field in r.get(side, {})]
                cells.append(
                    _format(field, statistics.median(values)) if values else "-"
                )
        print("| " + " | ".join(cells) + " |")
    return 0


_COLUMNS = (
    ("echo", ("rate", "cpu_per_1000", "busy")),
    ("qos0", ("rate", "cpu_per_1000")),
    ("rtt", ("p50_ms", "p99_ms")),
)


def _format(field: str, value: float) -> str:
    """Format one table cell."""
    if field == "rate":
        return f"{value:,.0f}"
    if field == "cpu_per_1000":
        return f"{value:.3f}"
    if field == "busy":
        return f"{value:.0%}"
    return f"{value:.2f} ms"


if __name__ == "__main__":
    sys.exit(main())
