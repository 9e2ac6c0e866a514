"""The client's view of its orders: latest updates, fills, and what it asked for.

Order updates and fills arrive on the account's ack topic right after the
ack of the command that caused them (the same record's messages go out
together, ack first), so a command's result waits here for the update of
its order at the ack's ``seq``. The view is bounded: the least recently
updated orders beyond ``capacity`` are forgotten, fills with them.

QoS 1 delivers at least once, so a fill can arrive twice: a fill already
kept (same trade id and order id: a self-trade fills two orders of one
account under one trade id) is skipped.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import NamedTuple

from clients.sdk._shapes import (
    QUOTE,
    Fee,
    Order,
    Trade,
    fill_shape,
    info,
    iso,
    ms,
    order_status,
)
from exchange.gateway import answers as out
from exchange.gateway import wire

__all__ = ["OrderCache"]


class _Intent(NamedTuple):
    """The flags of an order this client placed, which updates do not repeat."""

    tif: str
    post_only: bool
    reduce_only: bool
    trigger_price: Decimal | None


class OrderCache:
    """Latest order updates and fills of one account, and waiters for them."""

    def __init__(
        self,
        symbol: Callable[[str], str],
        capacity: int = 10_000,
        recent_fills: int = 1_000,
    ) -> None:
        """Keep ``capacity`` orders and the ``recent_fills`` newest fills.

        ``symbol`` renders an exchange symbol the way the client's results do.
        """
        self.symbol = symbol
        self.capacity = capacity
        self.updates: OrderedDict[int, out.OrderUpdate] = OrderedDict()
        self.fills: dict[int, list[out.TradeFill]] = {}
        self._trade_ids: dict[int, set[int]] = {}  # order id -> its fills' trade ids
        self.recent: deque[out.TradeFill] = deque(maxlen=recent_fills)
        self._created: dict[int, int] = {}  # order id -> first update's ts_ns
        self._intents: OrderedDict[str, _Intent] = OrderedDict()  # by cid
        self._waiters: dict[int, list[tuple[int, asyncio.Future[None]]]] = {}

    def intend(self, order: wire.NewOrder) -> None:
        """Remember the flags of an order about to be placed (by its cid)."""
        self._intents[order.cid] = _Intent(
            order.tif, order.post_only, order.reduce_only, order.trigger_price
        )
        while len(self._intents) > self.capacity:
            self._intents.popitem(last=False)

    def on_update(self, update: out.OrderUpdate) -> None:
        """Keep an order's newest state and wake those waiting for it."""
        order_id = update.order_id
        self._created.setdefault(order_id, update.ts_ns)
        self.updates[order_id] = update
        self.updates.move_to_end(order_id)
        while len(self.updates) > self.capacity:
            gone, _ = self.updates.popitem(last=False)
            self.fills.pop(gone, None)
            self._trade_ids.pop(gone, None)
            self._created.pop(gone, None)
        waiters = self._waiters.get(order_id, [])
        for seq, future in list(waiters):
            if seq <= update.seq and not future.done():
                future.set_result(None)
                waiters.remove((seq, future))

    def on_fill(self, fill: out.TradeFill) -> bool:
        """Keep a fill of one of the account's orders; return False for a repeat."""
        seen = self._trade_ids.setdefault(fill.order_id, set())
        if fill.trade_id in seen:
            return False
        seen.add(fill.trade_id)
        self.fills.setdefault(fill.order_id, []).append(fill)
        self.recent.append(fill)
        return True

    async def wait(
        self, order_id: int, seq: int, patience: float
    ) -> out.OrderUpdate | None:
        """Return the order's state as of record ``seq`` or later.

        None: no such update came within ``patience`` seconds.
        """
        update = self.updates.get(order_id)
        if update is None or update.seq < seq:
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            waiters = self._waiters.setdefault(order_id, [])
            waiters.append((seq, future))
            try:
                await asyncio.wait_for(future, patience)
            except TimeoutError:
                return None
            finally:
                if (seq, future) in waiters:
                    waiters.remove((seq, future))
                if not waiters:
                    self._waiters.pop(order_id, None)
        return self.updates.get(order_id)

    def touched_at(self, seq: int) -> list[out.OrderUpdate]:
        """Return the orders whose newest update is from record ``seq``."""
        return [u for u in self.updates.values() if u.seq == seq]

    def shape(self, update: out.OrderUpdate) -> Order:
        """Return an order update as a ccxt order, with the fills seen for it."""
        intent = self._intents.get(update.cid) if update.cid else None
        fills = self.fills.get(update.order_id, [])
        created = self._created.get(update.order_id, update.ts_ns)
        order = _order(
            order_id=update.order_id,
            cid=update.cid,
            symbol=self.symbol(update.symbol),
            side=update.side,
            type_=update.type,
            price=update.price,
            amount=update.qty,
            filled=update.filled,
            remaining=update.remaining,
            status=update.status,
            trades=[fill_shape(f, self.symbol(f.symbol)) for f in fills],
            raw=info(update),
            created_ms=ms(created),
        )
        if intent is not None:
            order["timeInForce"] = intent.tif
            order["postOnly"] = intent.post_only
            order["reduceOnly"] = intent.reduce_only
            order["triggerPrice"] = intent.trigger_price
        return order

    def shape_open(self, row: out.OpenOrder) -> Order:
        """Return a queried open order as a ccxt order."""
        update = self.updates.get(row.order_id)
        created = self._created.get(row.order_id)
        fills = self.fills.get(row.order_id, [])
        order = _order(
            order_id=row.order_id,
            cid=row.client_order_id,
            symbol=self.symbol(row.symbol),
            side=row.side,
            type_=row.type,
            price=row.price,
            amount=row.qty,
            filled=row.filled,
            remaining=row.remaining,
            status=row.status if update is None else update.status,
            trades=[fill_shape(f, self.symbol(f.symbol)) for f in fills],
            raw=info(row),
            created_ms=None if created is None else ms(created),
        )
        order["timeInForce"] = row.tif
        order["postOnly"] = row.post_only
        order["reduceOnly"] = row.reduce_only
        order["triggerPrice"] = row.trigger_price
        return order

    def shape_unseen(
        self, request: wire.NewOrder, answer: out.Accepted | out.Rejected
    ) -> Order:
        """Return an order known only from its request and answer (no update)."""
        rejected = isinstance(answer, out.Rejected)
        order = _order(
            order_id=answer.order_id,
            cid=request.cid,
            symbol=self.symbol(request.symbol),
            side=request.side,
            type_=request.type,
            price=request.price,
            amount=request.qty,
            filled=Decimal(0),
            remaining=Decimal(0) if rejected else request.qty,
            status="rejected" if rejected else "new",
            trades=[],
            raw=info(answer),
            created_ms=None,
        )
        order["timeInForce"] = request.tif
        order["postOnly"] = request.post_only
        order["reduceOnly"] = request.reduce_only
        order["triggerPrice"] = request.trigger_price
        return order

    def my_trades(self, symbol: str | None) -> Iterable[Trade]:
        """Return the recent fills seen, oldest first, in ``symbol`` if given."""
        return [
            fill_shape(f, self.symbol(f.symbol))
            for f in self.recent
            if symbol is None or f.symbol == symbol
        ]


def _order(
    *,
    order_id: int,
    cid: str,
    symbol: str,
    side: str,
    type_: str,
    price: Decimal | None,
    amount: Decimal,
    filled: Decimal,
    remaining: Decimal,
    status: str,
    trades: list[Trade],
    raw: dict[str, object],
    created_ms: int | None,
) -> Order:
    """Return a ccxt order; ``average``, ``cost`` and ``fee`` come from ``trades``."""
    cost = sum((t["cost"] for t in trades), Decimal(0))
    traded = sum((t["amount"] for t in trades), Decimal(0))
    fee = sum((t["fee"]["cost"] for t in trades if t["fee"]), Decimal(0))
    return Order(
        id=str(order_id),
        clientOrderId=cid or None,
        timestamp=created_ms,
        datetime=None if created_ms is None else iso(created_ms),
        lastTradeTimestamp=trades[-1]["timestamp"] if trades else None,
        symbol=symbol,
        type="limit" if type_.endswith("limit") else "market",
        side=side,
        price=price,
        triggerPrice=None,
        amount=amount,
        filled=filled,
        remaining=remaining,
        average=cost / traded if traded else None,
        cost=cost,
        status="rejected" if status == "rejected" else order_status(status),
        fee=Fee(cost=fee, currency=QUOTE),
        trades=trades,
        reduceOnly=None,
        postOnly=None,
        timeInForce=None,
        info=dict(raw),
    )
