"""Rebuild: fold logged events into state, with no matching logic at all.

The events of a journal say everything that happened (orders accepted,
rested, filled, amended, canceled, expired, triggered), so state can be
reconstructed by applying them in order to empty books. The result must have
the same `state_hash` as the live exchange and as a rerun of the commands;
any event that does not fit the state it meets raises `Divergence`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import assert_never

from exchange.book import Order
from exchange.core import ExchangeCore, MarketState
from exchange.markets import Market
from exchange.messages import (
    AllCanceled,
    BookDelta,
    CheckpointTaken,
    Event,
    Journaled,
    OrderAccepted,
    OrderAmended,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderRested,
    OrderTriggered,
)
from exchange.triggers import is_rising
from replay.errors import Divergence

__all__ = ["Rebuilder"]


class Rebuilder:
    """Applies logged events to an empty exchange state, checking as it goes."""

    def __init__(self, markets: Iterable[Market]) -> None:
        """Start from empty books for ``markets``."""
        self.core = ExchangeCore(markets)  # used only as the state container
        # Orders between acceptance and resting (takers, triggered, requeued).
        self._in_flight: dict[int, Order] = {}
        self.checkpoints = 0

    def state_hash(self) -> str:
        """Return the canonical hash of the rebuilt state."""
        return self.core.state_hash()

    def apply(self, entry: Journaled) -> None:
        """Fold one journaled record's events into the state.

        Raises:
            Divergence: if an event contradicts the rebuilt state.
        """
        seq = entry.record.seq
        if seq != self.core.last_seq + 1:
            raise Divergence(seq, f"record follows seq {self.core.last_seq}")
        self.core.last_seq = seq
        for event in entry.events:
            self._apply(seq, event)
        self._in_flight.clear()  # a taker never outlives its record

    def _apply(self, seq: int, event: Event) -> None:  # noqa: C901, PLR0912
        """Apply one event."""
        core = self.core
        match event:
            case OrderAccepted():
                self._accept(event)
            case OrderFilled():
                self._fill(seq, event)
            case OrderRested():
                order = self._pop_in_flight(seq, event.order_id)
                if order.remaining != event.qty:
                    raise Divergence(seq, f"order {event.order_id} rests {event.qty} "
                                          f"lots but has {order.remaining} open")
                self._state(event.symbol).book.add(order)
            case OrderCanceled():
                self._close(seq, event.order_id, event.symbol)
            case OrderExpired():
                if self._in_flight.pop(event.order_id, None) is None:
                    self._close(seq, event.order_id, event.symbol)
            case OrderAmended():
                order = self._open(seq, event.order_id)
                book = self._state(event.symbol).book
                if event.requeued:
                    book.remove(order)
                    self._in_flight[order.order_id] = Order(
                        order.order_id, order.account, order.is_buy, event.price,
                        event.qty, order.spec,
                    )
                else:
                    book.reduce(order, event.qty)
            case OrderTriggered():
                state = self._state(event.symbol)
                order = self._open(seq, event.order_id)
                spec = order.spec
                state.triggers.remove(order, spec.trigger_price,
                                      is_rising(spec.type, order.is_buy))
                self._in_flight[order.order_id] = order
            case BookDelta():
                level = self._state(event.symbol).book.level_qty(
                    event.side == "buy", event.price)
                if level != event.qty:
                    raise Divergence(seq, f"{event.symbol} {event.side} level "
                                          f"{event.price} holds {level}, log says "
                                          f"{event.qty}")
            case CheckpointTaken():
                self.checkpoints += 1
                if core.state_hash() != event.state_hash:
                    raise Divergence(seq, "rebuilt state hash differs from the "
                                          "checkpoint's")
            case OrderRejected() | AllCanceled():
                pass
            case _:
                assert_never(event)

    def _accept(self, event: OrderAccepted) -> None:
        """Create an accepted order: parked if it has a trigger, else in flight."""
        core = self.core
        core.next_order_id = event.order_id + 1
        is_buy = event.side == "buy"
        order = Order(event.order_id, event.account, is_buy, event.price, event.qty,
                      event)
        if event.client_order_id:
            core.client_ids[event.account, event.client_order_id] = event.order_id
        if event.trigger_price:
            self._state(event.symbol).triggers.add(
                order, event.trigger_price, is_rising(event.type, is_buy))
        else:
            self._in_flight[event.order_id] = order

    def _fill(self, seq: int, event: OrderFilled) -> None:
        """Take a fill's quantity off the in-flight taker and the resting maker."""
        taker = self._in_flight.get(event.taker_order_id)
        if taker is None or taker.remaining < event.qty:
            raise Divergence(seq, f"fill {event.trade_id}: taker "
                                  f"{event.taker_order_id} is not in flight")
        taker.remaining -= event.qty
        maker = self._open(seq, event.maker_order_id)
        if maker.price != event.price or maker.remaining < event.qty:
            raise Divergence(seq, f"fill {event.trade_id} does not fit maker {maker}")
        book = self._state(event.symbol).book
        if maker.remaining == event.qty:
            book.remove(maker)
        else:
            book.reduce(maker, maker.remaining - event.qty)
        self.core.next_trade_id = event.trade_id + 1
        self._state(event.symbol).last_price = event.price

    def _close(self, seq: int, order_id: int, symbol: str) -> None:
        """Remove an open order from its book or trigger book."""
        order = self._open(seq, order_id)
        state = self._state(symbol)
        if order_id in state.triggers:
            spec = order.spec
            state.triggers.remove(order, spec.trigger_price,
                                  is_rising(spec.type, order.is_buy))
        else:
            state.book.remove(order)

    def _open(self, seq: int, order_id: int) -> Order:
        """Return an open order or raise `Divergence`."""
        order = self.core.index.get(order_id)
        if order is None:
            raise Divergence(seq, f"order {order_id} is not open")
        return order

    def _pop_in_flight(self, seq: int, order_id: int) -> Order:
        """Return the in-flight order about to rest, or raise `Divergence`."""
        order = self._in_flight.pop(order_id, None)
        if order is None:
            raise Divergence(seq, f"order {order_id} rests but is not in flight")
        return order

    def _state(self, symbol: str) -> MarketState:
        """Return a market's state."""
        return self.core.markets[symbol]
