"""Injected latency: a delay stage between the session's output and the outbox.

`DelayedOutbox` is an `Outbox` whose `put` holds each message for a delay
drawn from the stress settings (`exchange.gateway.stress.Delays`) before it
joins the outbox's queues, where the publishers take it as usual. It never
blocks anything: `put` returns at once, held messages wait in a heap of
(release time, arrival, messages), and one timer of the event loop releases
them when due. The core and the sequencer never see it.

Order is kept where a client relies on it:

* an account's private messages (``ack`` and ``acct``) are released in the
  order they were put: each batch of them is released at ``max(the account's
  previous release, now + a fresh draw)``, so a short draw waits behind a
  long one (the delays of a burst are not independent);
* a symbol's market data of one kind likewise, so book deltas keep their
  ``book_seq`` order (a client never sees a gap the delay made).

Durable before acknowledged still holds: only messages of durable records
reach the outbox, and the delay only adds to their wait. Held private
messages count toward the outbox's admission limit (`overloaded`), so a
long delay under load still refuses new commands rather than holding an
unbounded backlog. Held market data is bounded by its rate times the delay
(conflation applies once it is released into the outbox). Closing releases
everything held at once: a clean stop publishes every answer.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools

from exchange.gateway.outbox import Outbox
from exchange.gateway.stress import Delays
from exchange.gateway.wire import Outbound

__all__ = ["DelayedOutbox"]

_PRIVATE = ("ack", "acct")


class DelayedOutbox(Outbox):
    """An outbox whose messages wait out an injected latency first."""

    def __init__(
        self, delays: Delays, private_limit: int = 65536, market_limit: int = 10000
    ) -> None:
        """Delay by ``delays``; the outbox's limits as in `Outbox`."""
        super().__init__(private_limit, market_limit)
        self.delays = delays
        self._held: list[tuple[float, int, list[Outbound]]] = []  # a heap
        self._arrival = itertools.count()  # ties release in arrival order
        self._last_release: dict[tuple[str, str], float] = {}
        self._held_private = 0
        self._timer: asyncio.TimerHandle | None = None
        self._done = False

    @property
    def overloaded(self) -> bool:
        """Return True while private messages waiting (held ones too) are too many."""
        return len(self._private) + self._held_private >= self.private_limit

    @property
    def pending(self) -> int:
        """Return the messages waiting, held ones included."""
        return super().pending + sum(len(held[2]) for held in self._held)

    def put(self, messages: list[Outbound]) -> None:
        """Hold each account's or topic's messages for a delay; queue the rest now."""
        if self._done:
            super().put(messages)
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        batches: dict[tuple[str, str], list[Outbound]] = {}
        for message in messages:
            kind: str = "private" if message.kind in _PRIVATE else message.kind
            batches.setdefault((kind, message.key), []).append(message)
        at_once: list[Outbound] = []
        for (kind, key), batch in batches.items():
            if kind == "private":
                delay = self.delays.private(key)
            else:
                delay = self.delays.market(kind, key)
            if delay is None:
                at_once += batch
                continue
            due = max(self._last_release.get((kind, key), now), now + delay)
            self._last_release[kind, key] = due
            heapq.heappush(self._held, (due, next(self._arrival), batch))
            if kind == "private":
                self._held_private += len(batch)
        if at_once:
            super().put(at_once)
        self._wake_at_next(loop)

    def close(self) -> None:
        """Release everything held now, then close as an `Outbox` does."""
        self._done = True
        if self._timer is not None:
            self._timer.cancel()
        self._release(float("inf"))
        super().close()

    def _wake_at_next(self, loop: asyncio.AbstractEventLoop) -> None:
        """Set the timer for the earliest release (if not set for it already)."""
        if not self._held:
            return
        due = self._held[0][0]
        if self._timer is not None:
            if self._timer.when() <= due:
                return
            self._timer.cancel()
        self._timer = loop.call_at(due, self._on_timer)

    def _on_timer(self) -> None:
        """Release what is due, then wait for the next."""
        self._timer = None
        loop = asyncio.get_running_loop()
        self._release(loop.time())
        self._wake_at_next(loop)

    def _release(self, now: float) -> None:
        """Queue every held batch due by ``now``, earliest first."""
        held = self._held
        while held and held[0][0] <= now:
            _, _, batch = heapq.heappop(held)
            if batch[0].kind in _PRIVATE:
                self._held_private -= len(batch)
            super().put(batch)
