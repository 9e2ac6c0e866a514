"""Idempotency: what the session remembers of requests, so none runs twice.

Per account, a request is remembered by its request id, and a new order also
by its client order id, from the moment it is sent to the core until its
timestamp leaves every receive window (`MAX_RECV_WINDOW_MS`): by then a
redelivery is refused as stale anyway. A remembered request that is still in
the core collects the ids of its duplicates (its followers) and they are
answered with it; a settled one answers duplicates at once. A client order id
whose order was rejected is forgotten at once: that order never existed, so a
corrected retry with the same id runs.

Memory is bounded: beyond ``capacity`` remembered requests per account the
oldest are forgotten, and the account's `floor` rises to the newest
timestamp forgotten so, so that a replay of a forgotten request is refused
as stale instead of running again.
"""

from __future__ import annotations

from collections import OrderedDict

from exchange.gateway.answers import Accepted, Rejected
from exchange.gateway.wire import MAX_RECV_WINDOW_MS

__all__ = ["Remembered", "RequestMemory"]


class Remembered:
    """One request the core has or will have decided: its identity and answer.

    ``answer`` is None until the core decides; ``followers`` are the request
    ids of duplicates waiting for it.
    """

    __slots__ = ("answer", "cid", "followers", "op", "request_id", "ts_ms")

    def __init__(self, request_id: str, op: str, cid: str, ts_ms: int) -> None:
        """Remember a request that is on its way to the core."""
        self.request_id = request_id
        self.op = op
        self.cid = cid
        self.ts_ms = ts_ms
        self.answer: Accepted | Rejected | None = None
        self.followers: list[str] = []


class _Account:
    """One account's remembered requests, oldest first, and its replay floor."""

    __slots__ = ("by_cid", "by_id", "floor_ms")

    def __init__(self) -> None:
        """Start with nothing remembered."""
        self.by_id: OrderedDict[str, Remembered] = OrderedDict()
        self.by_cid: dict[str, Remembered] = {}
        self.floor_ms = -(2**63)


class RequestMemory:
    """The remembered requests of every account."""

    __slots__ = ("_accounts", "capacity")

    def __init__(self, capacity: int = 100_000) -> None:
        """Remember at most ``capacity`` requests per account."""
        self.capacity = capacity
        self._accounts: dict[str, _Account] = {}

    def recall(self, account: str, request_id: str, cid: str) -> Remembered | None:
        """Return the request this one repeats (same id, or same new-order cid)."""
        memory = self._accounts.get(account)
        if memory is None:
            return None
        found = memory.by_id.get(request_id)
        if found is None and cid:
            found = memory.by_cid.get(cid)
        return found

    def floor(self, account: str) -> int:
        """Return the newest timestamp (ms) the account's memory has forgotten."""
        memory = self._accounts.get(account)
        return memory.floor_ms if memory is not None else -(2**63)

    def remember(self, account: str, entry: Remembered, now_ms: int) -> None:
        """Remember a request sent to the core; forget what has expired."""
        memory = self._accounts.get(account)
        if memory is None:
            memory = self._accounts[account] = _Account()
        memory.by_id[entry.request_id] = entry
        if entry.cid:
            memory.by_cid[entry.cid] = entry
        horizon = now_ms - MAX_RECV_WINDOW_MS
        by_id = memory.by_id
        while by_id:
            oldest = next(iter(by_id.values()))
            if oldest.ts_ms >= horizon and len(by_id) <= self.capacity:
                break
            del by_id[oldest.request_id]
            if memory.by_cid.get(oldest.cid) is oldest:
                del memory.by_cid[oldest.cid]
            if oldest.ts_ms >= horizon:  # forgotten for room, not for age
                memory.floor_ms = max(memory.floor_ms, oldest.ts_ms)

    def forget(self, account: str, entry: Remembered) -> None:
        """Forget a request that never reached the core (its retry will run)."""
        memory = self._accounts.get(account)
        if memory is None:
            return
        if memory.by_id.get(entry.request_id) is entry:
            del memory.by_id[entry.request_id]
        if entry.cid and memory.by_cid.get(entry.cid) is entry:
            del memory.by_cid[entry.cid]

    def settle(
        self, account: str, entry: Remembered, answer: Accepted | Rejected
    ) -> None:
        """Keep the core's answer; a rejected order frees its client order id."""
        entry.answer = answer
        memory = self._accounts.get(account)
        if (
            isinstance(answer, Rejected)
            and memory is not None
            and memory.by_cid.get(entry.cid) is entry
        ):
            del memory.by_cid[entry.cid]
