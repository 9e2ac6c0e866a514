"""An in-process venue and its transport: the SDK without a broker.

`LoopbackExchange` is an `ExchangeCore` behind the gateway's `Session`,
driven as a transport adapter drives it (decode -> ``core.handle`` ->
outcome, the core's system commands applied as the next records), with the
topic routing of a broker in front. `LoopbackTransport` is one client's
connection to it. It stands in for the server and the broker in tests and
demos; it does not journal, and records are stamped by ``clock``.

Broker behaviour it keeps: an account publishes only on its own ``cmd``
topic (the ACL; anything else is dropped), sessions are persistent (while a
connection is down, QoS 1 messages wait for it, QoS 0 ones are lost), and
each connection's queue is bounded: when full, new messages are dropped and
counted in ``dropped``, as Mosquitto's ``max_queued_messages`` does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterable
from decimal import Decimal

from clients.sdk._transport import Message, TransportError
from exchange.core import ExchangeCore
from exchange.gateway.auth import ApiCredentials, KeyStore
from exchange.gateway.session import Session
from exchange.gateway.wire import Codec, Outbound, topic
from exchange.markets import DEFAULT_MARKETS, Market
from exchange.messages import Command, Deposit, Record, SetIndexPrice
from exchange.units import to_e8

__all__ = ["LoopbackExchange", "LoopbackTransport"]

_PRIVATE_QOS = 1  # ack and acct topics, as DESIGN.md's topic table
_PUBLIC_QOS = 0  # market data


class _Drop:
    """Queued in place of a message: the connection dropped here."""


class LoopbackTransport:
    """One connection of ``account`` to a `LoopbackExchange` (a `Transport`)."""

    def __init__(self, venue: LoopbackExchange, account: str, max_queued: int) -> None:
        """Attach to ``venue`` as ``account``; nothing flows until `connect`."""
        self.venue = venue
        self.account = account
        self.connected = False
        self.closed = False
        self.dropped = 0
        self.subscriptions: dict[str, int] = {}  # topic -> QoS; the session keeps it
        self._queue: asyncio.Queue[Message | _Drop] = asyncio.Queue(max_queued)

    async def connect(self) -> None:
        """Connect (again); QoS 1 messages queued while down are delivered."""
        if self.closed:
            msg = "the transport is closed"
            raise TransportError(msg)
        self.connected = True

    async def close(self) -> None:
        """Disconnect for good; the session is forgotten."""
        self.closed = True
        self.drop()
        self.subscriptions.clear()

    async def publish(self, topic: str, payload: bytes, qos: int) -> None:  # noqa: ARG002 -- delivery is immediate
        """Publish: a command on this account's own topic runs at once."""
        if not self.connected:
            msg = "not connected"
            raise TransportError(msg)
        if topic == f"paperx/v1/cmd/{self.account}":
            self.venue.submit(self.account, payload)

    async def subscribe(self, topic: str, qos: int) -> None:
        """Subscribe to an exact topic."""
        if not self.connected:
            msg = "not connected"
            raise TransportError(msg)
        self.subscriptions[topic] = qos

    async def messages(self) -> AsyncIterator[Message]:
        """Yield delivered messages until the connection drops."""
        while True:
            item = await self._queue.get()
            if isinstance(item, _Drop):
                msg = "connection dropped"
                raise TransportError(msg)
            yield item

    def drop(self) -> None:
        """Drop the connection, as a broker restart or a network fault would."""
        if not self.connected:
            return
        self.connected = False
        if self._queue.full():  # the drop must be seen: it takes the oldest's place
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(_Drop())

    def deliver(self, message: Message, qos: int) -> None:
        """Queue a message published on a subscribed topic at ``qos``."""
        wanted = self.subscriptions.get(message.topic)
        if wanted is None or self.closed:
            return
        if not self.connected and min(qos, wanted) == 0:
            return  # QoS 0 is not kept for a disconnected session
        if self._queue.full():
            self.dropped += 1
            return
        self._queue.put_nowait(message)


class LoopbackExchange:
    """An exchange core behind the gateway's session, served in process."""

    def __init__(
        self,
        markets: Iterable[Market] = DEFAULT_MARKETS,
        *,
        margin: bool = True,
        codec: Codec | None = None,
        clock: Callable[[], int] = time.time_ns,
        max_queued: int = 100_000,
    ) -> None:
        """Open fresh markets; ``clock`` gives exchange time in ns."""
        self.core = ExchangeCore(markets, margin=margin)
        self.session = Session(self.core, KeyStore({}), codec=codec)
        self.clock = clock
        self.max_queued = max_queued
        self.transports: list[LoopbackTransport] = []
        self._credentials: dict[str, ApiCredentials] = {}
        self._losses: dict[str, int] = {}

    def add_account(
        self,
        account: str,
        deposit: Decimal | str | int = 0,
        credentials: ApiCredentials | None = None,
    ) -> ApiCredentials:
        """Create an account with API credentials and a deposit of USDT."""
        creds = credentials or ApiCredentials.generate()
        self._credentials[account] = creds
        self.session.keys = KeyStore(self._credentials)
        if deposit:
            self.apply(Deposit(account=account, amount=to_e8(deposit)))
        return creds

    def transport(self, account: str) -> LoopbackTransport:
        """Return a new connection for ``account`` (the broker's username)."""
        link = LoopbackTransport(self, account, self.max_queued)
        self.transports.append(link)
        return link

    def set_index(self, symbol: str, price: Decimal | str | int) -> None:
        """Feed an index price, as the server's price feed task does."""
        self.apply(SetIndexPrice(symbol=symbol, price=to_e8(price)))

    def publish_snapshot(self, symbol: str, depth: int = 100) -> None:
        """Publish a book snapshot on the symbol's book topic (the periodic one)."""
        snapshot = self.session.snapshot(symbol, depth)
        if snapshot is not None:
            self._deliver([snapshot])

    def lose(self, topic_name: str, count: int = 1) -> None:
        """Lose the next ``count`` messages published on a topic (a fault)."""
        self._losses[topic_name] = self._losses.get(topic_name, 0) + count

    def submit(self, account: str, payload: bytes) -> None:
        """Run one payload from ``account``: its answers, then each command."""
        decoded = self.session.decode(account, payload, self._now())
        self._deliver(decoded.answers)
        for command in decoded.commands:
            self.apply(command)

    def apply(self, command: Command) -> None:
        """Sequence a command, then the system commands it caused; publish all."""
        self._record(command)
        for system_command in self.core.system_commands():
            self._record(system_command)

    def _record(self, command: Command) -> None:
        """Sequence and apply one record; publish what it caused."""
        record = Record(self.core.last_seq + 1, self._now(), command)
        self._deliver(self.session.outcome(record, self.core.handle(record)))

    def _now(self) -> int:
        """Return exchange time: the clock, never behind the last record."""
        return max(self.clock(), self.core.ts_ns)

    def _deliver(self, messages: list[Outbound]) -> None:
        """Encode each message once and route it to its topic's subscribers."""
        encode = self.session.codec.encode
        for kind, key, answer in messages:
            name = topic(kind, key)
            if self._losses.get(name):
                self._losses[name] -= 1
                continue
            qos = _PRIVATE_QOS if kind in ("ack", "acct") else _PUBLIC_QOS
            message = Message(name, encode(answer))
            for link in self.transports:
                link.deliver(message, qos)
