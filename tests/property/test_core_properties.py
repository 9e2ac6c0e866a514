"""Hypothesis properties of the core over long random streams of every command kind.

Each example is a stream of hundreds of commands over two markets and four
accounts: limit, market, stop and take-profit orders with every TIF, post-only
and STP mode, cancels and amends of existing, foreign and nonexistent orders,
cancel-alls and malformed orders. After every record the book must be uncrossed,
every order's quantity must add up, and a reject must have changed nothing; a
fresh core fed the same records must say and end up exactly the same.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import msgspec
from harness import Harness, of
from hypothesis import given, settings
from hypothesis import strategies as st
from streams import STREAM_MARKETS, SYMBOLS, CoreView, Step, steps_strategy, to_command

from exchange.journal.payload import Journaled
from exchange.messages import (
    BookDelta,
    Command,
    CommandRejected,
    Event,
    OrderAccepted,
    OrderAmended,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    Record,
)
from replay.rebuild import Rebuilder

EXAMPLES = int(os.environ.get("PAPERX_PROPERTY_EXAMPLES", "30"))
STREAMS = steps_strategy(min_size=150, max_size=400)

RecordCheck = Callable[[Harness, Command, list[Event]], None]


def drive(steps: Sequence[Step], check: RecordCheck | None = None) -> Harness:
    """Feed a stream to a fresh core, calling ``check`` after every record."""
    core = Harness(STREAM_MARKETS)
    view = CoreView(core)
    for step in steps:
        cmd = to_command(step, view)
        events = core.send(cmd)
        if check is not None:
            check(core, cmd, events)
    return core


class Ledger:
    """Per-order quantities: submitted = filled + canceled + expired + open."""

    def __init__(self) -> None:
        """Start with no orders."""
        self.orders: dict[int, dict[str, int]] = {}

    def apply(self, events: Sequence[Event]) -> None:
        """Account for one record's events, checking each against the open quantity."""
        for e in events:
            if isinstance(e, OrderAccepted):
                assert e.qty > 0
                self.orders[e.order_id] = {
                    "submitted": e.qty,
                    "filled": 0,
                    "canceled": 0,
                    "expired": 0,
                    "open": e.qty,
                }
            elif isinstance(e, OrderFilled):
                assert e.qty > 0
                for oid in (e.taker_order_id, e.maker_order_id):
                    self._take(oid, "filled", e.qty)
            elif isinstance(e, OrderAmended):
                order = self.orders[e.order_id]
                assert order["open"] > 0, "amend of a closed order"
                order["submitted"] += e.qty - order["open"]
                order["open"] = e.qty
            elif isinstance(e, OrderCanceled):
                assert e.qty == self.orders[e.order_id]["open"]
                self._take(e.order_id, "canceled", e.qty)
            elif isinstance(e, OrderExpired):
                assert e.qty == self.orders[e.order_id]["open"]
                self._take(e.order_id, "expired", e.qty)

    def _take(self, order_id: int, bucket: str, qty: int) -> None:
        """Move ``qty`` lots of an order from open to ``bucket``."""
        order = self.orders[order_id]
        order[bucket] += qty
        order["open"] -= qty
        assert order["open"] >= 0, f"order {order_id} over-consumed"

    def check_against(self, core: Harness) -> None:
        """Assert every order adds up and the open ones are exactly the core's."""
        for oid, o in self.orders.items():
            assert (
                o["submitted"] == o["filled"] + o["canceled"] + o["expired"] + o["open"]
            ), (oid, o)
        open_in_core = {row[0]: row[5] for row in core.open_orders()}
        open_in_ledger = {oid: o["open"] for oid, o in self.orders.items() if o["open"]}
        assert open_in_core == open_in_ledger


class TestBookInvariants:
    """Invariants checked after every record."""

    @settings(max_examples=EXAMPLES)
    @given(STREAMS)
    def test_book_is_never_crossed_after_a_record(self, steps: list[Step]):
        """After every record each market's best bid is below its best ask."""

        def check(core: Harness, cmd: Command, events: list[Event]) -> None:
            for symbol in SYMBOLS:
                bids, asks = core.levels("buy", symbol), core.levels("sell", symbol)
                if bids and asks:
                    assert bids[0][0] < asks[0][0], (symbol, cmd, events)

        drive(steps, check)

    @settings(max_examples=EXAMPLES)
    @given(STREAMS)
    def test_book_deltas_rebuild_the_levels(self, steps: list[Step]):
        """Folding every BookDelta gives exactly the core's levels after each record."""
        mirror: dict[tuple[str, str, int], int] = {}

        def check(core: Harness, cmd: Command, events: list[Event]) -> None:
            touched = [(d.symbol, d.side, d.price) for d in of(events, BookDelta)]
            assert len(touched) == len(set(touched)), "a level reported twice"
            for d in of(events, BookDelta):
                assert d.qty >= 0
                if d.qty:
                    mirror[d.symbol, d.side, d.price] = d.qty
                else:
                    mirror.pop((d.symbol, d.side, d.price), None)
            actual = {
                (symbol, side, price): qty
                for symbol in SYMBOLS
                for side in ("buy", "sell")
                for price, qty in core.levels(side, symbol)
            }
            assert mirror == actual, cmd

        drive(steps, check)

    @settings(max_examples=EXAMPLES)
    @given(STREAMS)
    def test_quantity_is_conserved_per_order(self, steps: list[Step]):
        """Each order's filled + resting + canceled + expired is what was submitted."""
        ledger = Ledger()

        def check(core: Harness, _cmd: Command, events: list[Event]) -> None:
            ledger.apply(events)
            ledger.check_against(core)

        drive(steps, check)

    @settings(max_examples=EXAMPLES)
    @given(STREAMS)
    def test_fills_respect_limits_and_self_trade_prevention(self, steps: list[Step]):
        """Fills respect the taker's limit; STP takers never fill their own makers."""
        specs: dict[int, OrderAccepted] = {}
        prices: dict[int, int] = {}

        def check(_core: Harness, _cmd: Command, events: list[Event]) -> None:
            for e in events:
                if isinstance(e, OrderAccepted):
                    specs[e.order_id] = e
                    prices[e.order_id] = e.price
                elif isinstance(e, OrderAmended):
                    prices[e.order_id] = e.price
                elif isinstance(e, OrderFilled):
                    taker = specs[e.taker_order_id]
                    limit = prices[e.taker_order_id]
                    if limit:
                        assert (
                            e.price <= limit
                            if taker.side == "buy"
                            else e.price >= limit
                        )
                    assert prices[e.maker_order_id] == e.price
                    assert specs[e.maker_order_id].side != taker.side
                    if taker.stp != "none":
                        assert e.maker_account != e.taker_account

        drive(steps, check)


class TestRejects:
    """Rejects leave the state as it was."""

    @settings(max_examples=EXAMPLES)
    @given(STREAMS)
    def test_every_reject_changes_nothing_but_the_seq(self, steps: list[Step]):
        """A rejected record emits only its reject and leaves the state as it was."""
        core = Harness(STREAM_MARKETS)
        view = CoreView(core)
        for step in steps:
            cmd = to_command(step, view)
            before = core.state()
            events = core.send(cmd)
            if of(events, CommandRejected):
                assert len(events) == 1, events
                assert core.state() == before, cmd


class TestDeterminism:
    """Rerun and rebuild reach the live state."""

    @settings(max_examples=EXAMPLES)
    @given(STREAMS)
    def test_fresh_core_fed_the_same_records_says_and_ends_the_same(
        self, steps: list[Step]
    ):
        """Rerunning the journaled records gives identical events and state hash."""
        live = drive(steps)
        encoded = [msgspec.msgpack.encode(r) for r in live.records]
        rerun = Harness(STREAM_MARKETS)
        for raw, events in zip(encoded, live.history, strict=True):
            record = msgspec.msgpack.decode(raw, type=Record)
            assert rerun.core.handle(record) == events
        assert rerun.core.state_hash() == live.core.state_hash()
        assert rerun.core.canonical_state() == live.core.canonical_state()

    @settings(max_examples=EXAMPLES)
    @given(STREAMS)
    def test_rebuilding_from_events_gives_the_live_hash(self, steps: list[Step]):
        """Folding the logged events into empty books reaches the live state hash."""
        live = drive(steps)
        rebuilt = Rebuilder(STREAM_MARKETS)
        for record, events in zip(live.records, live.history, strict=True):
            rebuilt.apply(Journaled(record, events))
        assert rebuilt.state_hash() == live.core.state_hash()

    @settings(max_examples=EXAMPLES)
    @given(STREAMS, st.integers(0, 10**6))
    def test_a_core_rebuilt_from_a_prefix_resumes_as_the_live_one(
        self, steps: list[Step], where: int
    ):
        """Rebuild the first records, resume, and the rest gives the logged events."""
        live = drive(steps)
        cut = where % len(live.records)
        rebuilt = Rebuilder(STREAM_MARKETS)
        for record, events in zip(live.records[:cut], live.history[:cut], strict=True):
            rebuilt.apply(Journaled(record, events))
        core = rebuilt.resume()
        for record, events in zip(live.records[cut:], live.history[cut:], strict=True):
            assert core.handle(record) == events, record
        assert core.state_hash() == live.core.state_hash()
