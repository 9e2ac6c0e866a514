"""Trading stories as tables: orders in, then the fills and the book that must result.

Each story is a list of steps ``(account, action, args)`` on market X (tick 1,
lot 1, so prices and quantities read as ticks and lots), the fills expected
over the whole story as (taker account, maker account, price, qty), and the
book at the end as (price, qty) levels, best first.
"""

from __future__ import annotations

from typing import Any

import pytest
from harness import Harness, of, rejected_code

from exchange.messages import OrderAccepted, OrderFilled

Step = tuple[str, str, dict[str, Any]]

STORIES: dict[str, dict[str, Any]] = {
    "a market buy walks up a thin ladder": {
        "steps": [
            ("mm1", "place", {"side": "sell", "qty": 2, "price": 101}),
            ("mm2", "place", {"side": "sell", "qty": 2, "price": 101}),
            ("mm1", "place", {"side": "sell", "qty": 5, "price": 103}),
            ("mm2", "place", {"side": "buy", "qty": 5, "price": 99}),
            ("whale", "place", {"side": "buy", "qty": 6}),
        ],
        "fills": [
            ("whale", "mm1", 101, 2),
            ("whale", "mm2", 101, 2),
            ("whale", "mm1", 103, 2),
        ],
        "book": {"bids": [(99, 5)], "asks": [(103, 3)]},
    },
    "stops wait until a trade reaches their trigger": {
        "steps": [
            ("mm", "place", {"side": "buy", "qty": 1, "price": 100}),
            ("mm", "place", {"side": "buy", "qty": 1, "price": 98}),
            ("mm", "place", {"side": "buy", "qty": 1, "price": 95}),
            ("mm", "place", {"side": "sell", "qty": 1, "price": 102}),
            (
                "long1",
                "place",
                {"side": "sell", "qty": 1, "type": "stop_market", "trigger": 99},
            ),
            (
                "long2",
                "place",
                {"side": "sell", "qty": 1, "type": "stop_market", "trigger": 97},
            ),
            ("seller", "place", {"side": "sell", "qty": 1, "price": 100}),
            ("seller", "place", {"side": "sell", "qty": 1, "price": 99}),
        ],
        # seller rests at 99, nothing trades; only a trade moves the last price.
        "fills": [("seller", "mm", 100, 1)],
        "book": {"bids": [(98, 1), (95, 1)], "asks": [(99, 1), (102, 1)]},
    },
    "a taker through the stops sets off the whole cascade": {
        "steps": [
            ("mm", "place", {"side": "buy", "qty": 1, "price": 100}),
            ("mm", "place", {"side": "buy", "qty": 1, "price": 98}),
            ("mm", "place", {"side": "buy", "qty": 1, "price": 96}),
            ("mm", "place", {"side": "sell", "qty": 1, "price": 110}),
            ("mm", "place", {"side": "buy", "qty": 1, "price": 110}),
            (
                "long1",
                "place",
                {"side": "sell", "qty": 1, "type": "stop_market", "trigger": 100},
            ),
            (
                "long2",
                "place",
                {"side": "sell", "qty": 1, "type": "stop_market", "trigger": 98},
            ),
            ("seller", "place", {"side": "sell", "qty": 1, "price": 100}),
        ],
        "fills": [
            ("mm", "mm", 110, 1),
            ("seller", "mm", 100, 1),
            ("long1", "mm", 98, 1),
            ("long2", "mm", 96, 1),
        ],
        "book": {"bids": [], "asks": []},
    },
    "a market maker requotes with amends": {
        "steps": [
            (
                "mm",
                "place",
                {"side": "sell", "qty": 5, "price": 101, "client_order_id": "ask"},
            ),
            ("rival", "place", {"side": "sell", "qty": 5, "price": 101}),
            ("mm", "amend", {"client_order_id": "ask", "qty": 3}),  # keeps the front
            ("taker", "place", {"side": "buy", "qty": 4, "price": 101}),
            (
                "mm",
                "place",
                {"side": "buy", "qty": 2, "price": 99, "client_order_id": "bid"},
            ),
            ("rival", "place", {"side": "buy", "qty": 2, "price": 99}),
            ("mm", "amend", {"client_order_id": "bid", "price": 98}),
            (
                "mm",
                "amend",
                {"client_order_id": "bid", "price": 99},
            ),  # now behind rival
            ("seller", "place", {"side": "sell", "qty": 3, "price": 99}),
        ],
        "fills": [
            ("taker", "mm", 101, 3),
            ("taker", "rival", 101, 1),
            ("seller", "rival", 99, 2),
            ("seller", "mm", 99, 1),
        ],
        "book": {"bids": [(99, 1)], "asks": [(101, 4)]},
    },
    "self-trade prevention protects a two-sided quoter": {
        "steps": [
            ("mm", "place", {"side": "sell", "qty": 2, "price": 101}),
            ("other", "place", {"side": "sell", "qty": 2, "price": 102}),
            (
                "mm",
                "place",
                {"side": "buy", "qty": 3, "price": 102, "stp": "expire_maker"},
            ),
            (
                "mm",
                "place",
                {"side": "sell", "qty": 1, "price": 101, "stp": "expire_taker"},
            ),
        ],
        "fills": [("mm", "other", 102, 2)],
        "book": {"bids": [(102, 1)], "asks": []},
    },
    "fill-or-kill and post-only refusals leave the book alone": {
        "steps": [
            ("mm", "place", {"side": "sell", "qty": 2, "price": 101}),
            ("fok", "place", {"side": "buy", "qty": 3, "price": 101, "tif": "FOK"}),
            (
                "maker",
                "place",
                {"side": "buy", "qty": 1, "price": 101, "post_only": True},
            ),
            (
                "maker",
                "place",
                {"side": "buy", "qty": 1, "price": 100, "post_only": True},
            ),
            ("fok", "place", {"side": "buy", "qty": 2, "price": 101, "tif": "FOK"}),
        ],
        "fills": [("fok", "mm", 101, 2)],
        "book": {"bids": [(100, 1)], "asks": []},
    },
}


def play(story: dict[str, Any]) -> Harness:
    """Run a story's steps on a fresh core."""
    ex = Harness()
    for account, action, step_args in story["steps"]:
        args = dict(step_args)
        if action == "place":
            ex.place(
                account,
                args.pop("side"),
                args.pop("qty"),
                args.pop("price", None),
                **args,
            )
        elif action == "amend":
            events = ex.amend(account, **args)
            assert rejected_code(events) is None, events
    return ex


@pytest.mark.parametrize("name", list(STORIES))
def test_story_produces_its_fills_and_book(name: str):
    """Playing the story gives exactly its table of fills and its final book."""
    story = STORIES[name]
    ex = play(story)
    accounts = {
        e.order_id: e.account
        for events in ex.history
        for e in of(events, OrderAccepted)
    }
    fills = [
        (accounts[f.taker_order_id], f.maker_account, f.price, f.qty)
        for events in ex.history
        for f in of(events, OrderFilled)
    ]
    assert fills == story["fills"]
    assert ex.book() == story["book"]
