"""The outbox: messages waiting for the transport, with a policy per kind.

The core never waits for a subscriber. Everything the session returns goes
into the outbox at once (no await), and the transport's publisher tasks take
it out at their own pace. When they fall behind:

* **private messages** (``ack`` and ``acct`` topics: acks, order updates,
  fills, balances, positions) are **never dropped**: each was promised by a
  durable record. Their queue is bounded by admission instead: while more
  than ``private_limit`` wait, `overloaded` is True and the adapter refuses
  new commands (OVERLOADED), so it can only grow by what commands already
  in flight produce;
* **market data** is conflated: ``mark`` keeps only the latest message per
  symbol; ``trades`` and ``book`` keep the newest ``market_limit`` messages
  each and drop the oldest. A dropped book delta shows as a ``book_seq`` gap;
  the subscriber resyncs from the next periodic snapshot.

Drops are counted in `dropped` (by kind) for the logs. When the link drops,
the transport puts the private messages it could not send back in front
(`requeue_private`) and counts the market data (`drop`).
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque

from exchange.gateway.wire import Outbound

__all__ = ["Outbox"]


class Outbox:
    """Queues outbound messages: private ones whole, market data conflated."""

    def __init__(self, private_limit: int = 65536, market_limit: int = 10000) -> None:
        """Bound the private backlog by admission, and each market queue by size."""
        self.private_limit = private_limit
        self._private: deque[Outbound] = deque()
        self._trades: deque[Outbound] = deque()
        self._book: deque[Outbound] = deque()
        self._marks: dict[str, Outbound] = {}
        self._market_limit = market_limit
        self._private_ready = asyncio.Event()
        self._market_ready = asyncio.Event()
        self._closed = False
        self.dropped: Counter[str] = Counter()

    @property
    def overloaded(self) -> bool:
        """Return True while the private backlog is over its limit."""
        return len(self._private) >= self.private_limit

    @property
    def pending(self) -> int:
        """Return the messages waiting, of every kind."""
        return (
            len(self._private) + len(self._trades) + len(self._book) + len(self._marks)
        )

    def put(self, messages: list[Outbound]) -> None:
        """Queue messages without waiting, by the policy of their kind."""
        for message in messages:
            kind = message.kind
            if kind in ("ack", "acct"):
                self._private.append(message)
                self._private_ready.set()
                continue
            if kind == "mark":
                self._marks.pop(message.key, None)  # re-insert: newest last
                self._marks[message.key] = message
            else:
                queue = self._trades if kind == "trades" else self._book
                if len(queue) >= self._market_limit:
                    queue.popleft()
                    self.dropped[kind] += 1
                queue.append(message)
            self._market_ready.set()

    def requeue_private(self, messages: list[Outbound]) -> None:
        """Put private messages a transport could not send back in front, in order."""
        self._private.extendleft(reversed(messages))
        self._private_ready.set()

    def drop(self, messages: list[Outbound]) -> None:
        """Count market data a transport could not send (the link dropped)."""
        for message in messages:
            self.dropped[message.kind] += 1

    def close(self) -> None:
        """Accept no more waiting: takers return what is left, then nothing."""
        self._closed = True
        self._private_ready.set()
        self._market_ready.set()

    async def take_private(self, most: int) -> list[Outbound]:
        """Wait for private messages; return up to ``most``, oldest first.

        Returns [] once closed and empty.
        """
        while not self._private and not self._closed:
            self._private_ready.clear()
            await self._private_ready.wait()
        queue = self._private
        return [queue.popleft() for _ in range(min(most, len(queue)))]

    async def take_market(self, most: int) -> list[Outbound]:
        """Wait for market data; return up to ``most`` (marks first, then the rest).

        Returns [] once closed and empty.
        """
        while not (self._marks or self._trades or self._book) and not self._closed:
            self._market_ready.clear()
            await self._market_ready.wait()
        taken: list[Outbound] = []
        while self._marks and len(taken) < most:
            symbol = next(iter(self._marks))
            taken.append(self._marks.pop(symbol))
        for queue in (self._trades, self._book):
            while queue and len(taken) < most:
                taken.append(queue.popleft())
        return taken
