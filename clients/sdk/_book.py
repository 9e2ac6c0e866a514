"""A local L2 order book: a snapshot, then seq-numbered deltas, with gap detection.

The exchange numbers each symbol's book messages (``book_seq``): a delta
whose number is not the last one + 1 means a message was lost (market data
is QoS 0). The book then stops answering as in sync, keeps the deltas that
follow, and waits for a snapshot; the deltas newer than the snapshot are
applied on top of it. Levels beyond a snapshot's depth appear only as
deltas change them, so the deep book may have holes; the top is exact.
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal

from exchange.gateway.answers import BookSnapshot, BookUpdate

__all__ = ["LocalBook"]

_MAX_BUFFERED = 10_000  # deltas kept while waiting for a snapshot (oldest dropped)


class LocalBook:
    """One symbol's book as the client knows it: price -> total quantity per side."""

    __slots__ = ("_buffer", "asks", "bids", "book_seq", "gaps", "symbol", "synced")

    def __init__(self, symbol: str) -> None:
        """Start empty and out of sync: the first snapshot syncs it."""
        self.symbol = symbol
        self.bids: dict[Decimal, Decimal] = {}
        self.asks: dict[Decimal, Decimal] = {}
        self.book_seq = 0
        self.synced = False
        self.gaps = 0  # gaps detected so far
        self._buffer: deque[BookUpdate] = deque(maxlen=_MAX_BUFFERED)

    def apply_snapshot(self, snapshot: BookSnapshot) -> bool:
        """Reset to a snapshot and replay newer buffered deltas; True if it applied.

        A snapshot older than the book in sync is ignored. If the buffered
        deltas do not continue the snapshot, the book stays out of sync.
        """
        if self.synced and snapshot.book_seq <= self.book_seq:
            return False
        self.bids = {price: qty for price, qty in snapshot.bids if qty}
        self.asks = {price: qty for price, qty in snapshot.asks if qty}
        self.book_seq = snapshot.book_seq
        self.synced = True
        buffered, self._buffer = list(self._buffer), deque(maxlen=_MAX_BUFFERED)
        for delta in buffered:
            self.apply_delta(delta)
        return True

    def apply_delta(self, delta: BookUpdate) -> bool:
        """Apply the next delta; return True if the book changed.

        A delta already covered is ignored; one past a gap puts the book out
        of sync (it is kept for the next snapshot).
        """
        if not self.synced:
            self._buffer.append(delta)
            return False
        if delta.book_seq <= self.book_seq:
            return False
        if delta.book_seq != self.book_seq + 1:
            self.synced = False
            self.gaps += 1
            self._buffer.append(delta)
            return False
        for side, levels in ((self.bids, delta.bids), (self.asks, delta.asks)):
            for price, qty in levels:
                if qty:
                    side[price] = qty
                else:
                    side.pop(price, None)
        self.book_seq = delta.book_seq
        return True

    def top(
        self, limit: int | None = None
    ) -> tuple[list[list[Decimal]], list[list[Decimal]]]:
        """Return (bids best first, asks best first) as [price, quantity] pairs."""
        bids = sorted(self.bids.items(), reverse=True)[:limit]
        asks = sorted(self.asks.items())[:limit]
        return [[p, q] for p, q in bids], [[p, q] for p, q in asks]
