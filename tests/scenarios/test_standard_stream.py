"""The standard benchmark stream: paperx reproduces the reference fills exactly."""

from __future__ import annotations

import pytest
from harness import Harness, of
from shared_workload import import_workload

from exchange.markets import Market
from exchange.messages import (
    AmendOrder,
    CancelOrder,
    Command,
    CommandRejected,
    OrderAccepted,
    OrderFilled,
    PlaceOrder,
)

COMMANDS = 20_000
MARKET = Market.from_decimals(
    "X", tick_size="1", lot_size="1", max_qty="1000000", max_price="100000000"
)
E8 = 10**8


@pytest.fixture(scope="module")
def workload():
    """The shared workload module (the stream generator and its shadow book)."""
    return import_workload()


def to_command(t: tuple) -> Command:
    """Turn one (op, oid, acct, side, price, qty) tuple into a paperx command."""
    op, oid, acct, side, price, qty = t
    account = str(acct)
    sd = "buy" if side == "B" else "sell"
    if op == "N":
        return PlaceOrder(
            account=account,
            symbol="X",
            side=sd,
            type="limit",
            qty=qty * E8,
            price=price * E8,
        )
    if op == "M":
        return PlaceOrder(
            account=account, symbol="X", side=sd, type="market", qty=qty * E8
        )
    if op == "C":
        return CancelOrder(account=account, order_id=oid)
    return AmendOrder(account=account, order_id=oid, qty=qty * E8)


@pytest.fixture(scope="module")
def run(workload):
    """The standard stream driven through a core: (stream, shadow, harness)."""
    stream, shadow = workload.generate(COMMANDS, with_shadow=True)
    core = Harness([MARKET])
    for t in stream:
        core.send(to_command(t))
    return stream, shadow, core


class TestStandardStream:
    """The shared benchmark stream against its reference shadow book."""

    def test_fill_count_and_hash_equal_the_reference(self, run, workload):
        """Paperx makes the same fills, in order, as the workload's shadow book."""
        _, shadow, core = run
        fills = [
            (f.taker_order_id, f.maker_order_id, f.price, f.qty)
            for events in core.history
            for f in of(events, OrderFilled)
        ]
        assert len(fills) == shadow.fills
        assert sum(q for *_, q in fills) == shadow.fill_qty
        assert workload.fill_hash(fills) == shadow.fill_hash

    def test_no_command_of_the_stream_is_rejected(self, run):
        """Every command of the standard stream is valid for paperx."""
        _, _, core = run
        rejects = [e for events in core.history for e in of(events, CommandRejected)]
        assert rejects == []

    def test_order_ids_follow_the_stream_ids(self, run):
        """Paperx gives each new order the id the stream allocated to it."""
        stream, _, core = run
        stream_ids = [t[1] for t in stream if t[0] in ("N", "M")]
        core_ids = [
            e.order_id for events in core.history for e in of(events, OrderAccepted)
        ]
        assert core_ids == stream_ids

    def test_final_book_equals_the_reference_book(self, run):
        """The resting orders at the end are the shadow book's, at the same prices."""
        _, shadow, core = run
        resting = {
            oid: (price, qty)
            for side in ("buy", "sell")
            for oid, price, qty in core.queue(side)
        }
        expected = {oid: (o[1], o[2]) for oid, o in shadow.orders.items()}
        assert resting == expected
        assert core.levels("buy")[0][0] == shadow.best_bid()
        assert core.levels("sell")[0][0] == shadow.best_ask()
