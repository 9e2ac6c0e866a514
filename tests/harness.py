"""The test harness: drive an `ExchangeCore` with records and read its state.

Tests talk to the core only through its public entry points (``handle``,
``state_hash``, ``canonical_state`` and the events), so they survive any
rewrite of the book or the matching loop. The one place that knows the shape of
``canonical_state()`` is `Harness` below.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from exchange.core import ExchangeCore
from exchange.markets import Market
from exchange.messages import (
    AmendOrder,
    CancelAll,
    CancelOrder,
    Command,
    CommandRejected,
    Event,
    OrderAccepted,
    PlaceOrder,
    Record,
)
from exchange.units import to_e8

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from decimal import Decimal

E8 = 10**8

# Tick 1 and lot 1: prices and quantities in events read as whole units.
MARKET_X = Market.from_decimals(
    "X", tick_size="1", lot_size="1", max_price="1000000", max_qty="1000000"
)
MARKET_Y = Market.from_decimals(
    "Y", tick_size="1", lot_size="1", max_price="1000000", max_qty="1000000"
)
TEST_MARKETS = (MARKET_X, MARKET_Y)

EventT = TypeVar("EventT", bound=Event)


def of(events: Iterable[Event], kind: type[EventT]) -> list[EventT]:
    """Return the events of one kind, in order."""
    return [e for e in events if isinstance(e, kind)]


def kinds(events: Iterable[Event]) -> list[str]:
    """Return the class names of events, in order (for readable assertions)."""
    return [type(e).__name__ for e in events]


def rejected_code(events: Sequence[Event]) -> int | None:
    """Return the reject code if the record was refused, else None."""
    if events and isinstance(events[0], CommandRejected):
        return events[0].code
    return None


def _e8(value: Decimal | str | int | None) -> int:
    """Convert a whole-unit value to E8 (None -> 0)."""
    return 0 if value is None else to_e8(value)


class Harness:
    """An `ExchangeCore` plus the records fed to it, with order-placing shortcuts.

    Prices and quantities passed to the shortcuts are whole units (converted to
    E8 here); with the test markets (tick 1, lot 1) they equal the ticks and
    lots the events report.
    """

    def __init__(self, markets: Iterable[Market] = TEST_MARKETS) -> None:
        """Create a fresh core over ``markets``."""
        self.markets = tuple(markets)
        self.core = ExchangeCore(self.markets)
        self.records: list[Record] = []
        self.history: list[list[Event]] = []

    # ------------------------------------------------------------ input

    def send(self, command: Command) -> list[Event]:
        """Sequence one command, apply it and return its events."""
        seq = len(self.records) + 1
        record = Record(seq, seq * 1_000, command)
        events = self.core.handle(record)
        self.records.append(record)
        self.history.append(events)
        return events

    def place(
        self,
        account: str,
        side: str,
        qty: Decimal | str | int,
        price: Decimal | str | int | None = None,
        *,
        type: str | None = None,  # noqa: A002 -- the command's own field name
        symbol: str = "X",
        trigger: Decimal | str | int | None = None,
        **flags: Any,
    ) -> list[Event]:
        """Place an order (limit if priced, else market) and return its events."""
        if type is None:
            type = "limit" if price is not None else "market"  # noqa: A001
        return self.send(
            PlaceOrder(
                account=account,
                symbol=symbol,
                side=side,
                type=type,  # type: ignore[arg-type]
                qty=_e8(qty),
                price=_e8(price),
                trigger_price=_e8(trigger),
                **flags,
            )
        )

    def rest(self, *args: Any, **kwargs: Any) -> int:
        """Place an order that must be accepted; return its order id."""
        events = self.place(*args, **kwargs)
        accepted = of(events, OrderAccepted)
        assert accepted, f"order was not accepted: {events}"
        return accepted[0].order_id

    def cancel(
        self, account: str, order_id: int = 0, client_order_id: str = ""
    ) -> list[Event]:
        """Cancel one order and return the events."""
        return self.send(
            CancelOrder(
                account=account, order_id=order_id, client_order_id=client_order_id
            )
        )

    def amend(
        self,
        account: str,
        order_id: int = 0,
        *,
        qty: Decimal | str | int | None = None,
        price: Decimal | str | int | None = None,
        client_order_id: str = "",
    ) -> list[Event]:
        """Amend one order (None = unchanged) and return the events."""
        return self.send(
            AmendOrder(
                account=account,
                order_id=order_id,
                client_order_id=client_order_id,
                qty=_e8(qty),
                price=_e8(price),
            )
        )

    def cancel_all(self, account: str, symbol: str = "") -> list[Event]:
        """Cancel every open order of an account and return the events."""
        return self.send(CancelAll(account=account, symbol=symbol))

    # ------------------------------------------------------------ state

    def _market_row(self, symbol: str) -> list[Any]:
        """Return the canonical-state row of one market."""
        for row in self.core.canonical_state()[4]:
            if row[0] == symbol:
                return row
        msg = f"no market {symbol}"
        raise KeyError(msg)

    def queue(self, side: str, symbol: str = "X") -> list[tuple[int, int, int]]:
        """Return one side's resting orders as (id, price, open qty), by priority."""
        rows = self._market_row(symbol)[2 if side == "buy" else 3]
        return [(r[0], r[2], r[3]) for r in rows]

    def levels(self, side: str, symbol: str = "X") -> list[tuple[int, int]]:
        """Return one side's levels as (price, open qty), best first."""
        out: list[tuple[int, int]] = []
        for _, price, qty in self.queue(side, symbol):
            if out and out[-1][0] == price:
                out[-1] = (price, out[-1][1] + qty)
            else:
                out.append((price, qty))
        return out

    def book(self, symbol: str = "X") -> dict[str, list[tuple[int, int]]]:
        """Return both sides' levels: {"bids": [...], "asks": [...]}, best first."""
        return {"bids": self.levels("buy", symbol), "asks": self.levels("sell", symbol)}

    def pending(self, symbol: str = "X") -> list[int]:
        """Return the ids of untriggered stop / take-profit orders of a market."""
        return [row[2] for row in self._market_row(symbol)[4]]

    def last_price(self, symbol: str = "X") -> int | None:
        """Return the market's last trade price in ticks (None before any trade)."""
        return self._market_row(symbol)[1]

    def open_ids(self, symbol: str = "X") -> set[int]:
        """Return the ids of every open order of a market (resting or pending)."""
        ids = {oid for oid, _, _ in self.queue("buy", symbol)}
        ids |= {oid for oid, _, _ in self.queue("sell", symbol)}
        return ids | set(self.pending(symbol))

    def open_orders(self) -> list[tuple[int, str, str, str, int, int, bool]]:
        """Return every open order, sorted by id.

        Each is (id, account, client id, symbol, price, open qty, pending).
        """
        out = []
        for row in self.core.canonical_state()[4]:
            symbol = row[0]
            for resting in (*row[2], *row[3]):
                oid, account, price, remaining, spec = resting
                out.append(
                    (
                        oid,
                        account,
                        spec.client_order_id,
                        symbol,
                        price,
                        remaining,
                        False,
                    )
                )
            for _, _, oid, account, price, remaining, spec in row[4]:
                out.append(
                    (oid, account, spec.client_order_id, symbol, price, remaining, True)
                )
        return sorted(out)

    def state(self) -> list[Any]:
        """Return the canonical state without the sequencer's last seq.

        Every record advances ``last_seq``, rejected or not; this is the rest of
        the state, which a rejected command must leave exactly as it was.
        """
        return self.core.canonical_state(include_seq=False)
