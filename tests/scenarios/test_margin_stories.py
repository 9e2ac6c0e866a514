"""Margin trading stories as tables: deposits, trades and price moves, then balances.

Each story is a list of steps played in order on a fresh margin exchange (the
marks pinned to the index). A ``bal`` step states the trader's balance as
(wallet, free, used, total), every figure computed by hand in the story's
comments. None of these stories comes near a liquidation (see
``test_isolated_vs_cross.py`` for those).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from margin_helpers import FEED, FREE, adjust, exchange, money_sides, position, trade

from exchange import Exchange, Rejected

D = Decimal
BTC, ETH = "BTC-PERP", "ETH-PERP"
Step = tuple[Any, ...]


def play(ex: Exchange, steps: list[Step]) -> None:  # noqa: C901, PLR0912 -- one branch an op
    """Play a story's steps, asserting every expectation as it comes."""
    for n, (op, *args) in enumerate(steps):
        where = f"step {n}: {op} {args}"
        match op:
            case "deposit":
                ex.deposit(*args)
            case "lev":
                ex.set_leverage(*args)
            case "mode":
                ex.set_margin_mode(*args)
            case "index":
                ex.set_index_price(*args)
            case "buy":  # alice takes from bob
                trade(ex, "alice", "bob", *args)
            case "sell":  # alice sells to carol, alice takes
                trade(ex, "carol", "alice", *args, taker="seller")
            case "adjust":
                adjust(ex, "alice", *args)
            case "refused":
                with pytest.raises(Rejected):
                    adjust(ex, "alice", *args)
            case "rest":
                ex.place_order("alice", *args)
            case "fill_by_bob":  # bob sells into alice's resting bid
                ex.place_order("bob", args[0], "sell", "limit", args[1], args[2])
            case "reprice":
                (order,) = ex.open_orders("alice")
                ex.amend_order("alice", order["order_id"], price=args[0])
            case "cancel":
                ex.cancel_all("alice")
            case "bal":
                got = ex.balance("alice")
                want = dict(
                    zip(("wallet", "free", "used", "total"), map(D, args), strict=True)
                )
                assert got == want, where
            case "collateral":
                assert position(ex, "alice", args[0])["collateral"] == D(args[1]), where
            case "flat":
                assert ex.positions("alice") == [], where
            case "fees":
                assert ex.fees_collected() == D(args[0]), where
            case _:
                raise AssertionError(where)
        deposits, held = money_sides(ex.core.ledger)
        assert deposits == held, where


def venue(markets: tuple[Any, ...]) -> Exchange:
    """Return a margin exchange with rich counterparties bob and carol."""
    ex = exchange(markets)
    ex.deposit("bob", 1_000_000)
    ex.deposit("carol", 1_000_000)
    return ex


CROSS_ROUND_TRIP = [
    ("deposit", "alice", 10_000),
    ("lev", "alice", BTC, 10),
    ("index", BTC, 60_000),
    # long 0.5 @ 60,000, taker fee 15; IM 3,000
    ("buy", BTC, "0.5", "60000"),
    ("bal", "9985", "6985", "3000", "9985"),
    # UPNL +1,000 counts in total, never in free; IM 3,100
    ("index", BTC, 62_000),
    ("bal", "9985", "6885", "3100", "10985"),
    # sell 0.2 @ 62,000: +400 realized, fee 6.2; 0.3 left, UPNL 600, IM 1,860
    ("sell", BTC, "0.2", "62000"),
    ("bal", "10378.8", "8518.8", "1860", "10978.8"),
    # UPNL -600 and IM 1,740 both come off free
    ("index", BTC, 58_000),
    ("bal", "10378.8", "8038.8", "1740", "9778.8"),
    # sell 0.3 @ 58,000: -600 realized, fee 8.7
    ("sell", BTC, "0.3", "58000"),
    ("flat",),
    ("bal", "9770.1", "9770.1", "0", "9770.1"),
    # alice 15 + 6.2 + 8.7, bob 6, carol 2.48 + 3.48
    ("fees", "41.86"),
]

ISOLATED_BUCKET = [
    ("deposit", "alice", 5_000),
    ("mode", "alice", ETH, "isolated"),
    ("lev", "alice", ETH, 5),
    ("index", ETH, 3_000),
    # long 2 @ 3,000: IM 1,200 and the 3 fee leave the cross wallet
    ("buy", ETH, "2", "3000"),
    ("collateral", ETH, "1200"),
    ("bal", "4997", "3797", "1200", "4997"),
    ("adjust", ETH, "300"),
    ("bal", "4997", "3497", "1500", "4997"),
    # the bucket's loss (-200) leaves free alone
    ("index", ETH, 2_900),
    ("bal", "4997", "3497", "1500", "4797"),
    # removable: 1,500 - 200 - IM 1,160 = 140
    ("refused", ETH, "-140.00000001"),
    ("adjust", ETH, "-140"),
    ("collateral", ETH, "1360"),
    # sell 1 @ 2,900: half the bucket (680) is released, -100 and the 1.45 fee
    # are settled against it, 578.55 returns to the wallet
    ("sell", ETH, "1", "2900"),
    ("collateral", ETH, "680"),
    ("bal", "4895.55", "4215.55", "680", "4795.55"),
    # sell the last 1 @ 3,100: +100, fee 1.55; the whole bucket returns
    ("index", ETH, 3_100),
    ("sell", ETH, "1", "3100"),
    ("flat",),
    ("bal", "4994", "4994", "0", "4994"),
]

ORDER_MARGIN = [
    ("deposit", "alice", 10_000),
    ("lev", "alice", BTC, 10),
    ("index", BTC, 60_000),
    # bid 0.5 @ 59,000 holds IM 2,950 + taker fee 14.75
    ("rest", BTC, "buy", "limit", "0.5", "59000"),
    ("bal", "10000", "7035.25", "2964.75", "10000"),
    # 0.2 fills (maker fee 2.36): 2/5 of the hold goes; position IM 1,200 at mark
    ("fill_by_bob", BTC, "0.2", "59000"),
    ("bal", "9997.64", "7018.79", "2978.85", "10197.64"),
    # the rest re-priced to 58,000 holds 1,740 + 8.7
    ("reprice", "58000"),
    ("bal", "9997.64", "7048.94", "2948.7", "10197.64"),
    ("cancel",),
    ("bal", "9997.64", "8797.64", "1200", "10197.64"),
]

CROSS_HEDGE = [
    ("deposit", "alice", 10_000),
    ("lev", "alice", BTC, 10),
    ("lev", "alice", ETH, 10),
    ("index", BTC, 60_000),
    ("index", ETH, 3_000),
    ("buy", BTC, "0.5", "60000"),  # IM 3,000
    ("sell", ETH, "5", "3000"),  # IM 1,500
    ("bal", "10000", "5500", "4500", "10000"),
    # BTC -1,000 and ETH +1,000 net out; IM 2,900 + 1,400
    ("index", BTC, 58_000),
    ("index", ETH, 2_800),
    ("bal", "10000", "5700", "4300", "10000"),
    # ETH back: only the BTC loss is left
    ("index", ETH, 3_000),
    ("bal", "10000", "4600", "4400", "9000"),
]


class TestMarginStories:
    """Stories whose balances were worked out by hand, step by step."""

    def test_cross_round_trip_with_fees(self):
        """A cross long opened, partly closed at a profit and closed at a loss."""
        play(venue(FEED), CROSS_ROUND_TRIP)

    def test_isolated_bucket_through_its_life(self):
        """An isolated long funded, topped up, trimmed and closed in two halves."""
        play(venue(FEED), ISOLATED_BUCKET)

    def test_order_margin_follows_fills_amends_and_cancels(self):
        """A resting bid's hold shrinks with its fills, moves with its price, goes."""
        play(venue(FEED), ORDER_MARGIN)

    def test_cross_hedge_nets_its_legs(self):
        """A long and a short on one cross wallet offset each other's PnL."""
        play(venue(FREE), CROSS_HEDGE)

    @pytest.mark.parametrize(
        ("mode", "free_after_dip", "total_after_dip"),
        [("cross", "2200", "8000"), ("isolated", "4000", "8000")],
    )
    def test_same_dip_costs_free_balance_only_in_cross(
        self, mode, free_after_dip, total_after_dip
    ):
        """The same long and 2,000 dip: cross loses free balance, isolated does not."""
        play(
            venue(FREE),
            [
                ("deposit", "alice", 10_000),
                ("mode", "alice", BTC, mode),
                ("lev", "alice", BTC, 10),
                ("index", BTC, 60_000),
                ("buy", BTC, "1", "60000"),  # IM 6,000
                ("index", BTC, 58_000),  # UPNL -2,000; cross IM 5,800, the bucket stays
                (
                    "bal",
                    "10000",
                    free_after_dip,
                    "5800" if mode == "cross" else "6000",
                    total_after_dip,
                ),
            ],
        )
