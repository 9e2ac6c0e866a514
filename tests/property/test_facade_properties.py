"""Hypothesis properties of the public `Exchange` API over real time.

A market maker and four traders (cross and isolated, leverage up to 50x) use
only the facade's public methods, as a script or a notebook would, while a
test clock moves minutes to hours between calls: funding times (00:00, 08:00,
16:00 UTC) and day boundaries pass inside calls. The index walks and jumps,
resting orders go stale, so positions are liquidated inside other accounts'
calls. Cancels, amends, cancel-alls, leverage and mode changes, margin
adjustments, deposits and withdrawals are mixed with bad input: unknown
symbols, off-tick and too precise prices, negative and float quantities,
unknown order ids, unknown literals and values of the wrong type.

After every call: the only exception the caller saw is a coded `Rejected` of
its code's family; every result is consistent (filled + remaining = qty, the
fills add up to what the call filled, the average price is an E8 value); money
is conserved. At the end the journal reruns to the same events and hash.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Sequence
from decimal import ROUND_DOWN, Decimal
from typing import Any, NamedTuple

import pytest
from clock import ManualClock
from hypothesis import given, settings
from hypothesis import strategies as st
from margin_helpers import FEED, money_sides

from exchange import Exchange, OrderResult, Rejected
from exchange.errors import REJECT_CLASSES
from exchange.journal.payload import JOURNALED_DECODER
from exchange.messages import PositionLiquidated
from exchange.units import to_e8
from replay.rerun import Rerunner

EXAMPLES = int(os.environ.get("PAPERX_PROPERTY_EXAMPLES", "20"))
D = Decimal
MINUTE_NS = 60 * 10**9
DAY_NS = 24 * 60 * MINUTE_NS
FUNDING_NS = 8 * 60 * MINUTE_NS

SYMBOLS = ("BTC-PERP", "ETH-PERP")
TICK = {"BTC-PERP": D("0.1"), "ETH-PERP": D("0.01")}
LOT = {"BTC-PERP": D("0.001"), "ETH-PERP": D("0.001")}
BASE = {"BTC-PERP": D(60_000), "ETH-PERP": D(3_000)}
TRADERS = ("a", "b", "c", "d")
MM = "mm"
ACCOUNTS = (MM, *TRADERS)
LEVERAGES = (1, 2, 5, 10, 20, 25, 50)
TYPES = (
    "limit",
    "market",
    "limit",
    "market",
    "stop_market",
    "stop_limit",
    "take_profit_market",
)


class Step(NamedTuple):
    """One random call; every field is a small int read by `Driver.step`."""

    kind: int  # 0..99: which call
    acct: int  # 0..3
    sym: int  # 0..1
    side: int  # 0..1
    a: int  # 0..255: amount, price offset or index move
    b: int  # 0..255: size
    c: int  # 0..15: variant
    wait: int  # 0..63: how long the clock moves before the call


BOUNDS = (100, 4, 2, 2, 256, 256, 16, 64)
STEPS = st.lists(
    st.builds(Step, *(st.integers(0, n - 1) for n in BOUNDS)),
    min_size=80,
    max_size=160,
)


class Driver:
    """The public API under a moving clock, with what a caller can observe."""

    def __init__(self) -> None:
        """Open the exchange at 07:00 UTC and fund the market maker and traders."""
        self.clock = ManualClock()
        self.ex = Exchange(FEED, margin=True, clock=self.clock)
        self.index = dict(BASE)
        self.net_in = D(0)  # deposits minus withdrawals the API accepted
        self.calls = 0
        self.seen = {"funding": 0, "day": 0, "liquidated_in_calls": 0, "rejects": 0}
        for symbol, price in BASE.items():
            self.ex.set_index_price(symbol, price)
        self._deposit(MM, D(10_000_000))
        for n, trader in enumerate(TRADERS):
            self._deposit(trader, D(1_000 + 1_000 * n))
            for symbol in SYMBOLS:  # 20x to 50x to start
                self.ex.set_leverage(trader, symbol, LEVERAGES[4 + (n + 1) % 3])
            if n % 2:
                self.ex.set_margin_mode(trader, "BTC-PERP", "isolated")

    def _deposit(self, account: str, amount: Decimal) -> None:
        """Deposit through the API and count it."""
        self.ex.deposit(account, amount)
        self.net_in += amount

    # ------------------------------------------------------------ one call

    def step(self, step: Step) -> None:
        """Move the clock, make one call, and check what the caller sees."""
        before = self.clock.now
        wait = step.wait if step.wait < 40 else (step.wait - 39) * 30  # minutes
        self.clock.advance(wait * MINUTE_NS)
        name, call = self.call(step)
        self.calls += 1
        outcome, reject = _attempt(call)
        if reject is not None:  # any other exception fails the test as it is
            assert type(reject) is REJECT_CLASSES[reject.code], reject
            self.seen["rejects"] += 1
        now = self.clock.now
        self.seen["funding"] += now // FUNDING_NS > before // FUNDING_NS
        self.seen["day"] += now // DAY_NS > before // DAY_NS
        if name != "index" and any(
            isinstance(e, PositionLiquidated) for e in self.ex.system_events
        ):
            self.seen["liquidated_in_calls"] += 1
        for result in _results(outcome):
            check_result(result, placed=name == "place")
        check_open_orders(self.ex)
        check_money(self)

    def call(self, step: Step) -> tuple[str, Callable[[], Any]]:  # noqa: C901, PLR0911 -- one branch a kind
        """Read one step as a call of the public API, by name."""
        ex = self.ex
        trader, symbol = TRADERS[step.acct], SYMBOLS[step.sym]
        kind = step.kind
        if kind < 4:
            amount = D(step.a + 1) * 2
            return "deposit", lambda: self._counted(ex.deposit, trader, amount)
        if kind < 7:
            amount = -D(step.a + 1) * 3
            return "withdraw", lambda: self._counted(ex.withdraw, trader, -amount)
        if kind < 9:
            mode = "isolated" if step.c % 2 else "cross"
            return "mode", lambda: ex.set_margin_mode(trader, symbol, mode)
        if kind < 12:
            leverage = LEVERAGES[step.c % len(LEVERAGES)]
            return "leverage", lambda: ex.set_leverage(trader, symbol, leverage)
        if kind < 14:
            amount = D(step.a + 1) / 2 * (1 if step.side else -1)
            return "adjust", lambda: ex.adjust_margin(trader, symbol, amount)
        if kind < 24:
            # within 3%, or now and then a jump of 5% to 20% either way
            jump = (50 + step.a % 151) * (1 if step.side else -1)
            per_mille = jump if step.c < 3 else step.a % 61 - 30
            price = self._move(symbol, per_mille)
            return "index", lambda: ex.set_index_price(symbol, price)
        mine = sorted(ex.core.by_account.get(trader, {}))
        order_id = mine[step.c % len(mine)] if mine else 1_000_000 + step.a
        if kind < 29:
            return "cancel", lambda: ex.cancel_order(trader, order_id)
        if kind < 33:
            qty = LOT[symbol] * (1 + step.b % 40)
            price = self._price(symbol, step.a % 21 - 10) if step.side else None
            return "amend", lambda: ex.amend_order(
                trader, order_id, qty=qty if step.c % 2 else None, price=price
            )
        if kind < 35:
            who = MM if step.c % 2 else trader
            only = symbol if step.c % 4 < 2 else None
            return "cancel_all", lambda: ex.cancel_all(who, only)
        if kind < 43:
            return "bad", self._bad(step, trader, symbol, order_id)
        if kind < 55:
            return "place", self._quote(step, symbol)
        return "place", self._order(step, trader, symbol)

    def _counted(
        self, method: Callable[[str, Decimal], None], account: str, amount: Decimal
    ) -> None:
        """Deposit or withdraw; count the money once the exchange accepted it."""
        method(account, amount)
        self.net_in += amount if method == self.ex.deposit else -amount

    def _move(self, symbol: str, per_mille: int) -> Decimal:
        """Move the index by ``per_mille`` (kept within 1/3..3x of its base)."""
        price = self.index[symbol] * (1_000 + per_mille) / 1_000
        price = min(max(price, BASE[symbol] / 3), BASE[symbol] * 3)
        self.index[symbol] = price.quantize(TICK[symbol], ROUND_DOWN)
        return self.index[symbol]

    def _price(self, symbol: str, per_mille: int) -> Decimal:
        """Return a price on the tick grid, ``per_mille`` from the index."""
        price = self.index[symbol] * (1_000 + per_mille) / 1_000
        return price.quantize(TICK[symbol], ROUND_DOWN)

    def _quote(self, step: Step, symbol: str) -> Callable[[], OrderResult]:
        """Return a market maker's post-only quote 0.1%..3% from the index."""
        away = 1 + step.a % 30
        side = "buy" if step.side else "sell"
        price = self._price(symbol, -away if step.side else away)
        qty = LOT[symbol] * (1 + step.b) * (5 if symbol == "BTC-PERP" else 50)
        return lambda: self.ex.place_order(
            MM, symbol, side, "limit", qty, price, post_only=True
        )

    def _order(self, step: Step, trader: str, symbol: str) -> Callable[[], Any]:
        """Return a trader's order: limit, IOC, market, stop or take-profit."""
        side = "buy" if step.side else "sell"
        qty = LOT[symbol] * (1 + step.b % 64) * (1 if symbol == "BTC-PERP" else 20)
        kind = TYPES[step.c % len(TYPES)]
        offset = step.a % 61 - 30  # within 3% of the index
        price = self._price(symbol, offset) if kind in ("limit", "stop_limit") else None
        trigger = (
            self._price(symbol, offset + (25 if step.side else -25))
            if kind not in ("limit", "market")
            else None
        )
        return lambda: self.ex.place_order(
            trader,
            symbol,
            side,
            kind,
            qty,
            price,
            tif="IOC" if step.c == 5 else "GTC",
            reduce_only=step.c in (7, 8),
            trigger_price=trigger,
            trigger_by="mark" if step.b % 3 == 0 else "last",
        )

    def _bad(
        self, step: Step, trader: str, symbol: str, order_id: int
    ) -> Callable[[], Any]:
        """Return a call with bad input: it must end in a coded reject."""
        ex = self.ex
        price = self._price(symbol, 0)
        off_grid = price + TICK[symbol] / 2
        unknown = 10_000_000 + step.a
        calls: tuple[Callable[[], Any], ...] = (
            lambda: ex.place_order(trader, "DOGE-PERP", "buy", "limit", 1, 1),
            lambda: ex.place_order(trader, symbol, "buy", "limit", 1, off_grid),
            lambda: ex.place_order(trader, symbol, "sell", "limit", "-1", price),
            lambda: ex.place_order(trader, symbol, "buy", "market", 0.5),
            lambda: ex.cancel_order(trader, unknown),
            lambda: ex.amend_order(trader, unknown, qty="1"),
            lambda: ex.place_order(trader, symbol, "long", "limit", 1, price),
            lambda: ex.place_order(trader, symbol, "buy", "limit", "1e-9", price),
            lambda: ex.set_leverage(trader, symbol, 1_000),
            lambda: ex.withdraw(trader, "-5"),
            lambda: ex.cancel_order(trader, str(order_id)),  # type: ignore[arg-type]
            lambda: ex.set_index_price(symbol, "-1"),
            lambda: ex.order_book("NOPE", depth=3),
            lambda: ex.set_margin_mode(trader, symbol, "portfolio"),
            lambda: ex.cancel_all(trader, "NOPE"),
            lambda: ex.advance_time(D("1.5")),  # type: ignore[arg-type]
        )
        return calls[step.c]


def _attempt(call: Callable[[], Any]) -> tuple[Any, Rejected | None]:
    """Make a call; return its outcome, or the `Rejected` it raised."""
    try:
        return call(), None
    except Rejected as reject:
        return None, reject


def _results(outcome: object) -> list[OrderResult]:
    """Return the order results a call returned (one, a list, or none)."""
    if isinstance(outcome, OrderResult):
        return [outcome]
    if isinstance(outcome, list):
        return [r for r in outcome if isinstance(r, OrderResult)]
    return []


def check_result(result: OrderResult, *, placed: bool) -> None:
    """Assert one order result is consistent in itself."""
    assert result.filled + result.remaining <= result.qty, result
    if result.status in ("new", "partially_filled"):
        assert result.filled + result.remaining == result.qty, result
    else:
        assert result.remaining == 0, result
    assert (result.average_price is None) == (result.filled == 0), result
    if result.average_price is not None:
        assert result.average_price == result.average_price.quantize(D("1e-8"))
    if placed:  # a new order's fills are all of this call: the average is theirs
        assert result.filled == sum(t.qty for t in result.fills), result
        if result.fills:
            prices = [t.price for t in result.fills]
            assert min(prices) <= result.average_price <= max(prices), result


def check_open_orders(ex: Exchange) -> None:
    """Assert every open order row is open and adds up."""
    for account in ACCOUNTS:
        for row in ex.open_orders(account):
            assert row["status"] in ("new", "partially_filled"), row
            assert row["filled"] + row["remaining"] == row["qty"], row
            assert (row["trigger_price"] is None) == (row["triggered"] is None), row


def check_money(driver: Driver) -> None:
    """Assert money is conserved, through the ledger and through the public views.

    deposits - withdrawals == wallets + isolated margins + insurance fund +
    fees - open position costs - bad debt (costs: entry notional, signed,
    which the counterparties' wallets paid for).
    """
    ex = driver.ex
    ledger = ex.core.ledger
    assert ledger is not None
    came_in, held = money_sides(ledger)
    assert came_in == held
    assert came_in == to_e8(driver.net_in)
    wallets = sum(ex.balance(account)["wallet"] for account in ACCOUNTS)
    public = wallets + ex.insurance_fund() + ex.fees_collected()
    costs = sum(p.cost for a in ledger.accounts.values() for p in a.positions.values())
    assert to_e8(public) - costs - ledger.settlement.bad_debt == came_in


def check_rerun(driver: Driver) -> None:
    """The journal reruns through a fresh core to the same events and hash."""
    rerunner = Rerunner(FEED, margin=True)
    for _, raw in driver.ex.journal.read():
        rerunner.apply(JOURNALED_DECODER.decode(raw))
        if rerunner.first_difference is not None:
            pytest.fail(rerunner.first_difference.describe())
    assert rerunner.state_hash() == driver.ex.state_hash()


def drive(steps: Sequence[Step]) -> Driver:
    """Make the calls of ``steps`` on a fresh driver, checked after each."""
    driver = Driver()
    for step in steps:
        driver.step(step)
    driver.ex.close()
    return driver


def seeded_steps(seed: int, count: int = 300) -> list[Step]:
    """Return a uniform seeded stream of calls (hypothesis favours small ints)."""
    rng = random.Random(seed)  # noqa: S311 -- a seeded stream, not a secret
    return [Step(*(rng.randrange(n) for n in BOUNDS)) for _ in range(count)]


class TestFacadeOverRealTime:
    """The public API under a clock that crosses funding times and days."""

    @settings(max_examples=EXAMPLES, deadline=None)
    @given(STEPS)
    def test_callers_see_only_coded_rejects_and_money_is_conserved(
        self, steps: list[Step]
    ):
        """Every call returns or raises its coded reject; money and results hold."""
        check_rerun(drive(steps))

    @pytest.mark.parametrize("seed", range(6))
    def test_seeded_streams_hold_and_rerun(self, seed: int):
        """Uniform seeded streams keep every property and rerun identically."""
        check_rerun(drive(seeded_steps(seed)))

    def test_seeded_streams_reach_what_the_property_is_about(self):
        """The streams cross funding times and days and liquidate inside other calls."""
        seen = dict.fromkeys(("funding", "day", "liquidated_in_calls", "rejects"), 0)
        for seed in range(6):
            for key, count in drive(seeded_steps(seed)).seen.items():
                seen[key] += count
        assert min(seen.values()) > 0, seen
