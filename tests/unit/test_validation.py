"""Order checks: every kind of bad input is refused, changes nothing, uses no id."""

from __future__ import annotations

from typing import Any

import pytest
from harness import Harness, of, rejected_code

from exchange.codes import RejectCode
from exchange.engine.validation import MAX_CLIENT_ORDER_ID
from exchange.markets import DEFAULT_MARKETS, Market
from exchange.messages import CommandRejected, OrderAccepted, PlaceOrder

E8 = 10**8

# Tick 0.5 and lot 0.01 with minimums above one step, to test every bound.
MARKET_Z = Market.from_decimals(
    "Z",
    tick_size="0.5",
    lot_size="0.01",
    min_price="10",
    max_price="1000",
    min_qty="0.1",
    max_qty="50",
)

BASE = {
    "account": "a",
    "symbol": "BTC-PERP",
    "side": "buy",
    "type": "limit",
    "qty": E8 // 1000,
    "price": 100 * E8,
}
Z_BASE = {**BASE, "symbol": "Z", "qty": E8, "price": 100 * E8}

# (id, changes to a valid order, expected code)
BAD_ORDERS: list[tuple[str, dict[str, Any], RejectCode]] = [
    ("unknown-symbol", {"symbol": "DOGE-PERP"}, RejectCode.UNKNOWN_SYMBOL),
    ("symbol-wrong-case", {"symbol": "btc-perp"}, RejectCode.UNKNOWN_SYMBOL),
    ("empty-account", {"account": ""}, RejectCode.INVALID_ACCOUNT),
    ("off-tick", {"price": 100 * E8 + E8 // 20}, RejectCode.OFF_TICK),
    ("off-tick-by-1e-8", {"price": 100 * E8 + 1}, RejectCode.OFF_TICK),
    ("off-lot", {"qty": E8 // 2000}, RejectCode.OFF_LOT),
    ("off-lot-by-1e-8", {"qty": E8 // 1000 + 1}, RejectCode.OFF_LOT),
    ("zero-qty", {"qty": 0}, RejectCode.INVALID_QUANTITY),
    ("negative-qty", {"qty": -(E8 // 1000)}, RejectCode.INVALID_QUANTITY),
    ("qty-above-max", {"qty": 1000 * E8 + E8 // 1000}, RejectCode.QTY_OUT_OF_RANGE),
    (
        "price-above-max",
        {"price": 4529764 * E8 + E8 // 10},
        RejectCode.PRICE_OUT_OF_RANGE,
    ),
    ("negative-price", {"price": -100 * E8}, RejectCode.INVALID_PRICE),
    ("limit-without-price", {"price": 0}, RejectCode.PRICE_REQUIRED),
    ("market-with-price", {"type": "market"}, RejectCode.PRICE_NOT_ALLOWED),
    ("trigger-on-limit", {"trigger_price": 110 * E8}, RejectCode.TRIGGER_NOT_ALLOWED),
    (
        "trigger-on-market",
        {"type": "market", "price": 0, "trigger_price": 110 * E8},
        RejectCode.TRIGGER_NOT_ALLOWED,
    ),
    (
        "stop-without-trigger",
        {"type": "stop_market", "price": 0},
        RejectCode.TRIGGER_REQUIRED,
    ),
    (
        "take-profit-without-trigger",
        {"type": "take_profit_limit"},
        RejectCode.TRIGGER_REQUIRED,
    ),
    (
        "stop-limit-without-price",
        {"type": "stop_limit", "price": 0, "trigger_price": 110 * E8},
        RejectCode.PRICE_REQUIRED,
    ),
    (
        "stop-market-with-price",
        {"type": "stop_market", "trigger_price": 110 * E8},
        RejectCode.PRICE_NOT_ALLOWED,
    ),
    (
        "trigger-off-tick",
        {"type": "stop_limit", "trigger_price": 110 * E8 + 1},
        RejectCode.OFF_TICK,
    ),
    (
        "trigger-negative",
        {"type": "stop_limit", "trigger_price": -110 * E8},
        RejectCode.INVALID_PRICE,
    ),
    (
        "trigger-above-max",
        {"type": "stop_limit", "trigger_price": 5_000_000 * E8},
        RejectCode.PRICE_OUT_OF_RANGE,
    ),
    ("post-only-ioc", {"post_only": True, "tif": "IOC"}, RejectCode.INVALID_FLAGS),
    ("post-only-fok", {"post_only": True, "tif": "FOK"}, RejectCode.INVALID_FLAGS),
    (
        "post-only-market",
        {"post_only": True, "type": "market", "price": 0},
        RejectCode.INVALID_FLAGS,
    ),
    (
        "client-id-too-long",
        {"client_order_id": "c" * (MAX_CLIENT_ORDER_ID + 1)},
        RejectCode.INVALID_CLIENT_ORDER_ID,
    ),
    ("z-qty-below-min", {**Z_BASE, "qty": E8 // 100 * 9}, RejectCode.QTY_OUT_OF_RANGE),
    (
        "z-qty-above-max",
        {**Z_BASE, "qty": 50 * E8 + E8 // 100},
        RejectCode.QTY_OUT_OF_RANGE,
    ),
    (
        "z-price-below-min",
        {**Z_BASE, "price": 9 * E8 + E8 // 2},
        RejectCode.PRICE_OUT_OF_RANGE,
    ),
    (
        "z-price-above-max",
        {**Z_BASE, "price": 1000 * E8 + E8 // 2},
        RejectCode.PRICE_OUT_OF_RANGE,
    ),
    ("z-off-tick", {**Z_BASE, "price": 100 * E8 + E8 // 4}, RejectCode.OFF_TICK),
    ("z-off-lot", {**Z_BASE, "qty": E8 + E8 // 1000}, RejectCode.OFF_LOT),
]

# (id, a valid order at a bound) -- limits are inclusive.
GOOD_EDGES: list[tuple[str, dict[str, Any]]] = [
    ("btc-min-qty", {"qty": E8 // 1000}),
    ("btc-max-qty", {"qty": 1000 * E8}),
    ("btc-min-price", {"price": E8 // 10}),
    ("btc-max-price", {"price": 4529764 * E8}),
    ("z-min-qty", {**Z_BASE, "qty": E8 // 10}),
    ("z-max-qty", {**Z_BASE, "qty": 50 * E8}),
    ("z-min-price", {**Z_BASE, "price": 10 * E8}),
    ("z-max-price", {**Z_BASE, "price": 1000 * E8}),
    ("client-id-at-limit", {"client_order_id": "c" * MAX_CLIENT_ORDER_ID}),
    ("reduce-only-flag", {"reduce_only": True}),
]


@pytest.fixture
def venue() -> Harness:
    """A core over the default markets plus Z, with one order resting on BTC-PERP."""
    h = Harness((*DEFAULT_MARKETS, MARKET_Z))
    h.send(
        PlaceOrder(
            **{
                **BASE,
                "account": "maker",
                "side": "sell",
                "price": 200 * E8,
                "client_order_id": "taken",
            }
        )
    )
    return h


class TestRejectedOrders:
    """Bad orders are refused and change nothing."""

    @pytest.mark.parametrize(
        ("changes", "code"), [c[1:] for c in BAD_ORDERS], ids=[c[0] for c in BAD_ORDERS]
    )
    def test_bad_order_is_rejected_with_its_code_and_changes_nothing(
        self, venue: Harness, changes: dict[str, Any], code: RejectCode
    ):
        """A bad order gets one reject with its code, and the state is unchanged."""
        before = venue.state()
        events = venue.send(PlaceOrder(**{**BASE, **changes}))
        assert len(events) == 1
        assert rejected_code(events) == code
        assert events[0].reason
        assert venue.state() == before

    @pytest.mark.parametrize(
        "changes", [c[1] for c in BAD_ORDERS], ids=[c[0] for c in BAD_ORDERS]
    )
    def test_bad_order_consumes_no_order_id(
        self, venue: Harness, changes: dict[str, Any]
    ):
        """The next accepted order gets the id the rejected one would have had."""
        venue.send(PlaceOrder(**{**BASE, **changes}))
        events = venue.send(PlaceOrder(**BASE))
        assert of(events, OrderAccepted)[0].order_id == 2

    def test_duplicate_client_order_id_is_rejected_and_changes_nothing(
        self, venue: Harness
    ):
        """A client id already used by an open order of the account is refused."""
        before = venue.state()
        events = venue.send(
            PlaceOrder(**{**BASE, "account": "maker", "client_order_id": "taken"})
        )
        assert rejected_code(events) == RejectCode.DUPLICATE_CLIENT_ORDER_ID
        assert venue.state() == before

    def test_reject_echoes_account_and_client_order_id(self, venue: Harness):
        """The reject names the account and client id of the refused order."""
        (rej,) = venue.send(PlaceOrder(**{**BASE, "qty": 0, "client_order_id": "q"}))
        assert isinstance(rej, CommandRejected)
        assert (rej.seq, rej.account, rej.client_order_id, rej.order_id) == (
            2,
            "a",
            "q",
            0,
        )

    def test_every_reject_code_is_in_its_stage_range(self):
        """Every code sits in a stage range of the code table (1, 2, 3, 4, 5, 9 xxx)."""
        for code in RejectCode:
            assert code // 1000 in (1, 2, 3, 4, 5, 9), code


class TestAcceptedEdges:
    """Orders exactly at a limit are accepted."""

    @pytest.mark.parametrize(
        "changes", [c[1] for c in GOOD_EDGES], ids=[c[0] for c in GOOD_EDGES]
    )
    def test_order_at_a_limit_is_accepted(
        self, venue: Harness, changes: dict[str, Any]
    ):
        """Market limits are inclusive, so an order exactly at one is accepted."""
        events = venue.send(PlaceOrder(**{**BASE, **changes}))
        assert rejected_code(events) is None

    def test_accepted_order_is_converted_to_ticks_and_lots(self, venue: Harness):
        """An E8 order on a tick 0.5 / lot 0.01 market is reported in ticks and lots."""
        events = venue.send(
            PlaceOrder(**{**Z_BASE, "qty": 3 * E8 // 2, "price": 100 * E8 + E8 // 2})
        )
        (acc,) = of(events, OrderAccepted)
        assert (acc.price, acc.qty) == (201, 150)
