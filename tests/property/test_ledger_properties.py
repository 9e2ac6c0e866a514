"""Hypothesis properties of the margin ledger over long random account streams.

Each example is a stream of hundreds of commands for four accounts (2,000
USDT each to start, 2x, one market isolated) on two markets: deposits,
withdrawals (often beyond the free balance), margin modes, leverages (some
invalid), isolated margin adjustments, limit and market orders of random
sizes, prices, TIFs and reduce-only flags, amends, cancels and index moves.
Leverage stays at 5x or less and the index within 5% of its start, so the
stream stays clear of liquidations (tested elsewhere).

After every record the money identity holds exactly, positions sum to zero
per symbol, no balance is negative or falls short (no bad debt), order
reservations add up, and a rejected command has changed nothing; a fresh core
fed the journaled records says and ends up exactly the same.
"""

from __future__ import annotations

import itertools
import os
import random
from collections.abc import Callable, Sequence
from typing import NamedTuple

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from margin_helpers import money_sides

from exchange import Exchange, Market
from exchange.core import ExchangeCore
from exchange.journal.payload import Journaled, journaled_events
from exchange.messages import (
    AdjustMargin,
    AmendOrder,
    CancelAll,
    CancelOrder,
    Command,
    CommandRejected,
    Deposit,
    Event,
    PlaceOrder,
    PositionChanged,
    SetIndexPrice,
    SetLeverage,
    SetMarginMode,
    Withdraw,
)
from exchange.units import SCALE
from replay.rebuild import Rebuilder
from replay.rerun import Rerunner

EXAMPLES = int(os.environ.get("PAPERX_PROPERTY_EXAMPLES", "25"))

# P: mark pinned to the index, default fees. Q: the median-rule mark, and fees
# whose rounding matters (one tick x one lot is 1e-5 USDT).
MARKETS = (
    Market.from_decimals(
        "P",
        tick_size="0.5",
        lot_size="0.01",
        max_price="100000",
        max_qty="10000",
        mark_source="index",
    ),
    Market.from_decimals(
        "Q",
        tick_size="0.01",
        lot_size="0.001",
        max_price="100000",
        max_qty="10000",
        maker_fee="0.0003",
        taker_fee="0.0007",
    ),
)
SYMBOLS = ("P", "Q")
ACCOUNTS = ("a", "b", "c", "d")
BASE = {"P": 200 * SCALE, "Q": 50 * SCALE}  # E8 index at the start
TICK_STEP = {"P": 1, "Q": 12}  # ticks per price step: about 0.25% of the base
LOT_STEP = {"P": 4, "Q": 40}  # lots per size step: up to 10.24 units


class Step(NamedTuple):
    """One random step; every field is a small int read by `Driver.command`."""

    kind: int  # 0..99: what to do
    acct: int  # 0..3
    sym: int  # 0..1
    side: int  # 0..1
    a: int  # 0..255: amount, price offset or index move
    b: int  # 0..255: size or cents
    c: int  # 0..15: variant (TIF, flags, mode, leverage, which order)


STEPS = st.lists(
    st.builds(
        Step,
        st.integers(0, 99),
        st.integers(0, 3),
        st.integers(0, 1),
        st.integers(0, 1),
        st.integers(0, 255),
        st.integers(0, 255),
        st.integers(0, 15),
    ),
    min_size=150,
    max_size=350,
)


class Driver:
    """A margin `Exchange` plus the state a stream reads its steps against."""

    def __init__(self) -> None:
        """Create the exchange and fund every account a little."""
        ticks = itertools.count(1_000)
        self.ex = Exchange(MARKETS, margin=True, clock=lambda: next(ticks))
        self.index = dict(BASE)
        self.markets = {m.symbol: m for m in MARKETS}
        for symbol, price in BASE.items():
            self.ex.submit(SetIndexPrice(symbol=symbol, price=price))
        for n, account in enumerate(ACCOUNTS):
            self.ex.submit(Deposit(account=account, amount=2_000 * SCALE))
            for symbol in SYMBOLS:  # 2x everywhere; P isolated for a and c, Q for b, d
                self.ex.submit(SetLeverage(account=account, symbol=symbol, leverage=2))
            self.ex.submit(
                SetMarginMode(account=account, symbol=SYMBOLS[n % 2], mode="isolated")
            )

    def command(self, step: Step) -> Command:  # noqa: C901, PLR0911 -- one branch a kind
        """Read one step as a command against the current state."""
        account, symbol = ACCOUNTS[step.acct], SYMBOLS[step.sym]
        cents = step.b * SCALE // 100
        kind = step.kind
        if kind < 4:
            return Deposit(account=account, amount=(step.a + 1) * 10 * SCALE + cents)
        if kind < 8:
            return Withdraw(account=account, amount=step.a * 5 * SCALE + cents)
        if kind < 11:
            mode = "isolated" if step.c % 2 else "cross"
            return SetMarginMode(account=account, symbol=symbol, mode=mode)
        if kind < 15:
            leverage = {14: 0, 15: 200}.get(step.c, 1 + step.c % 5)
            return SetLeverage(account=account, symbol=symbol, leverage=leverage)
        if kind < 19:
            amount = (step.a * SCALE + cents) // 4 * (1 if step.side else -1)
            return AdjustMargin(account=account, symbol=symbol, amount=amount)
        if kind < 25:
            # within 5% of the start, on any E8 price (an index is not on the grid)
            price = BASE[symbol] * (1_000 + step.a % 101 - 50) // 1_000 + step.b
            self.index[symbol] = price
            return SetIndexPrice(symbol=symbol, price=price)
        mine = sorted(self.ex.core.by_account.get(account, {}))
        if kind < 30:
            order_id = mine[step.c % len(mine)] if mine and step.c < 14 else 9_999
            return CancelOrder(account=account, order_id=order_id)
        if kind < 32:
            return CancelAll(account=account, symbol=symbol if step.c % 2 else "")
        if kind < 36 and mine:
            order = self.ex.core.index[mine[step.c % len(mine)]]
            market = self.markets[order.spec.symbol]
            if step.side:
                return AmendOrder(
                    account=account,
                    order_id=order.order_id,
                    qty=(1 + step.b % 40) * market.lot_size,
                )
            price = self._price(order.spec.symbol, step.a)
            return AmendOrder(account=account, order_id=order.order_id, price=price)
        return self._order(step, account, symbol)

    def _order(self, step: Step, account: str, symbol: str) -> PlaceOrder:
        """Return a limit (or, now and then, market) order near the index."""
        market = self.markets[symbol]
        qty = (1 + step.b) * LOT_STEP[symbol] * market.lot_size
        side = "buy" if step.side else "sell"
        if step.c < 2:
            return PlaceOrder(
                account=account, symbol=symbol, side=side, type="market", qty=qty
            )
        return PlaceOrder(
            account=account,
            symbol=symbol,
            side=side,
            type="limit",
            qty=qty,
            price=self._price(symbol, step.a),
            tif="IOC" if step.c in {2, 3} else "GTC",
            reduce_only=step.c == 4,
            post_only=step.c == 5,
        )

    def _price(self, symbol: str, a: int) -> int:
        """Return an E8 price on the grid within about 3% of the index."""
        tick = self.markets[symbol].tick_size
        near = self.index[symbol] // tick
        return (near + (a % 25 - 12) * TICK_STEP[symbol]) * tick


RecordCheck = Callable[[Driver, Command, list[Event]], None]


def drive(steps: Sequence[Step], check: RecordCheck | None = None) -> Driver:
    """Feed a stream to a fresh driver, calling ``check`` after every record."""
    driver = Driver()
    for step in steps:
        command = driver.command(step)
        _, events = driver.ex.submit(command)
        if check is not None:
            check(driver, command, events)
    return driver


def check_invariants(driver: Driver, command: Command, events: list[Event]) -> None:
    """Assert every ledger invariant on the driver's current state."""
    check_money_and_balances(driver, command, events)
    ledger = driver.ex.core.ledger
    assert ledger is not None
    for name, account in ledger.accounts.items():
        for symbol, p in account.positions.items():
            if p.mode == "cross" or not p.size:
                assert p.margin == 0, (name, symbol, command, events)
    # No liquidation is in reach (5x at most, moves of 5%), so no balance may
    # ever fall short: the fund is never drawn on and there is no bad debt.
    assert (ledger.settlement.insurance_fund, ledger.settlement.bad_debt) == (0, 0), (
        command,
        events,
    )


class TestLedgerInvariants:
    """Invariants checked after every record of a random account stream."""

    @settings(max_examples=EXAMPLES)
    @given(STEPS)
    def test_money_positions_balances_and_reservations_hold_after_every_record(
        self, steps: list[Step]
    ):
        """Money is conserved, positions net out, nothing falls short, holds add up."""
        drive(steps, check_invariants)

    @pytest.mark.parametrize("seed", range(40))
    def test_invariants_hold_on_seeded_uniform_streams(self, seed: int):
        """Uniform seeded streams (hypothesis favours small ints) keep invariants."""
        rng = random.Random(seed)  # noqa: S311 -- a seeded stream, not a secret
        bounds = (100, 4, 2, 2, 256, 256, 16)
        steps = [Step(*(rng.randrange(n) for n in bounds)) for _ in range(300)]
        drive(steps, check_invariants)

    @settings(max_examples=EXAMPLES)
    @given(STEPS)
    def test_rejected_command_changes_nothing(self, steps: list[Step]):
        """Every rejected command leaves state_hash(include_seq=False) as it was."""
        driver = Driver()
        rejects = 0
        for step in steps:
            command = driver.command(step)
            before = driver.ex.core.state_hash(include_seq=False)
            _, events = driver.ex.submit(command)
            if events and isinstance(events[0], CommandRejected):
                rejects += 1
                assert driver.ex.core.state_hash(include_seq=False) == before, (
                    command,
                    events,
                )
        assert rejects or len(steps) < 200

    @settings(max_examples=EXAMPLES)
    @given(STEPS)
    def test_stream_trades_and_settles_fees(self, steps: list[Step]):
        """A stream fills orders into positions, and fees collected match the fills'."""
        driver = drive(steps)
        fees = 0
        for _, raw in driver.ex.journal.read():
            for event in msgspec.msgpack.decode(raw, type=Journaled).events:
                fees += getattr(event, "taker_fee", 0) + getattr(event, "maker_fee", 0)
        ledger = driver.ex.core.ledger
        assert ledger is not None
        assert ledger.settlement.fees_collected == fees


class TestDeterminism:
    """The same records give the same events and the same state."""

    @settings(max_examples=EXAMPLES)
    @given(STEPS)
    def test_rerun_of_the_journal_gives_the_same_events_and_hash(
        self, steps: list[Step]
    ):
        """A fresh margin core fed the journal gives the same events and hash."""
        driver = drive(steps)
        fresh = ExchangeCore(MARKETS, margin=True)
        for _, raw in driver.ex.journal.read():
            entry = msgspec.msgpack.decode(raw, type=Journaled)
            assert journaled_events(fresh.handle(entry.record)) == entry.events, (
                entry.record
            )
        assert fresh.state_hash() == driver.ex.core.state_hash()


# ---------------------------------------------------------------- order margin
# Scenarios of issue 7 (1b): "a" rests isolated P orders (some as closes of an
# isolated P position), then between placement and fill its cross Q position
# loses, it withdraws, cuts leverage, closes its P position, and "b" hits the
# resting orders.


class Op(NamedTuple):
    """One scenario step: ``kind`` picks the action, the rest sizes it."""

    kind: int  # 0..9
    a: int  # 0..255
    b: int  # 0..255


OPS = st.lists(
    st.builds(Op, st.integers(0, 9), st.integers(0, 255), st.integers(0, 255)),
    min_size=15,
    max_size=60,
)


def _place(account: str, symbol: str, side: str, lots: int, ticks: int, tif: str):
    """Return a limit order of ``lots`` at ``ticks`` on ``symbol``'s grid."""
    market = MARKETS[SYMBOLS.index(symbol)]
    return PlaceOrder(
        account=account,
        symbol=symbol,
        side=side,
        type="limit",
        qty=lots * market.lot_size,
        price=ticks * market.tick_size,
        tif=tif,
    )


def scenario_command(driver: Driver, op: Op) -> Command:  # noqa: C901, PLR0911 -- one per kind
    """Read one scenario step as a command (accounts "a" and "b" only)."""
    p_near = driver.index["P"] // MARKETS[0].tick_size
    q_near = driver.index["Q"] // MARKETS[1].tick_size
    side = "buy" if op.b % 2 else "sell"
    other = "sell" if side == "buy" else "buy"
    match op.kind:
        case 0 | 1:  # a rests an isolated P order near the index
            return _place("a", "P", side, 1 + op.a % 200, p_near + op.b % 9 - 4, "GTC")
        case 2:  # b rests the other side, a takes it: a's P position moves
            return _place("b", "P", other, 1 + op.a % 200, p_near + 6, "GTC")
        case 3:  # a takes what rests on P (closing, opening or flipping)
            return _place(
                "a",
                "P",
                side,
                1 + op.a % 200,
                p_near + (6 if side == "buy" else -6),
                "IOC",
            )
        case 4:  # b hits a's resting P orders
            return _place(
                "b", "P", side, 1 + op.a, p_near + (12 if side == "buy" else -12), "IOC"
            )
        case 5:  # a's cross Q position: a trades with b's resting orders
            if op.a % 2:
                return _place("b", "Q", other, 40 * (1 + op.b % 60), q_near, "GTC")
            return _place(
                "a",
                "Q",
                side,
                40 * (1 + op.b % 60),
                q_near + (60 if side == "buy" else -60),
                "IOC",
            )
        case 6:  # the Q index moves up to 20% (a's cross position gains or loses)
            price = BASE["Q"] * (1_000 + op.a % 201 - 100) // 500 // 2 + op.b
            driver.index["Q"] = price
            return SetIndexPrice(symbol="Q", price=price)
        case 7:  # a withdraws, half the time all it may
            free = driver.ex.core.ledger.settlement.available(
                driver.ex.core.ledger.settlement.account("a")
            )
            if op.b % 2 and free > 0:
                return Withdraw(account="a", amount=free)
            return Withdraw(account="a", amount=(op.a + 1) * 20 * SCALE + op.b)
        case 8:  # a cuts (or raises) leverage, cross Q or isolated P
            return SetLeverage(
                account="a", symbol=SYMBOLS[op.b % 2], leverage=1 + op.a % 10
            )
        case _:
            return Deposit(account="a", amount=(op.a + 1) * SCALE)


def _isolated_growth(events: list[Event]) -> dict[tuple[str, str], bool]:
    """Return, per isolated position a record's fills changed, whether it only grew."""
    grew: dict[tuple[str, str], bool] = {}
    for event in events:
        if isinstance(event, PositionChanged) and event.mode == "isolated":
            key = (event.account, event.symbol)
            last = grew.get(key, True)
            grew[key] = last and event.realized == 0 and event.fee >= 0
    return grew


def check_opening_margin(
    driver: Driver,
    before: dict[tuple[str, str], tuple[int, int, int]],
    events: list[Event],
) -> None:
    """Assert an isolated position a record only opened or grew got its full IM.

    Precisely: if every change of the position in the record grew it (same
    direction, nothing realized), its bucket grew by at least ``ceil(|value
    added| / leverage)``, the initial margin of the lots opened at their fill
    prices (each fill moves its own rounded-up IM, at least the total's).
    """
    ledger = driver.ex.core.ledger
    for (name, symbol), only_grew in _isolated_growth(events).items():
        p = ledger.accounts[name].positions[symbol]
        size, cost, margin = before.get((name, symbol), (0, 0, 0))
        if not only_grew or not p.size or (size and (size > 0) != (p.size > 0)):
            continue
        if abs(p.size) <= abs(size):
            continue
        added = abs(p.cost - cost)
        im = -(-added // p.leverage)
        assert p.margin - margin >= im, (name, symbol, p.margin, margin, im, events)


def _isolated_state(driver: Driver) -> dict[tuple[str, str], tuple[int, int, int]]:
    """Return (size, cost, margin) of every isolated position."""
    return {
        (name, symbol): (p.size, p.cost, p.margin)
        for name, account in driver.ex.core.ledger.accounts.items()
        for symbol, p in account.positions.items()
        if p.mode == "isolated"
    }


class TestOrderMarginFundsFills:
    """Resting isolated orders fill with their margin, whatever came in between."""

    @settings(max_examples=EXAMPLES * 4)
    @given(st.integers(200, 3_000), OPS)
    def test_isolated_fills_get_their_margin_and_rejects_change_nothing(
        self, deposit: int, ops: list[Op]
    ):
        """Money, positions, balances and reservations hold; openings get their IM."""
        run_scenario(deposit, ops)

    @pytest.mark.parametrize("seed", range(30))
    def test_isolated_fills_get_their_margin_on_seeded_scenarios(self, seed: int):
        """Uniform seeded scenarios (hypothesis favours small ints) hold as well."""
        rng = random.Random(seed)  # noqa: S311 -- a seeded stream, not a secret
        ops = [
            Op(rng.randrange(10), rng.randrange(256), rng.randrange(256))
            for _ in range(60)
        ]
        run_scenario(rng.randrange(200, 3_000), ops)


def run_scenario(deposit: int, ops: Sequence[Op]) -> None:
    """Give "a" ``deposit`` USDT at 10x, run ``ops``, check after every record."""
    driver = Driver()
    driver.ex.submit(Withdraw(account="a", amount=2_000 * SCALE))
    driver.ex.submit(Deposit(account="a", amount=deposit * SCALE))
    driver.ex.submit(SetLeverage(account="a", symbol="P", leverage=10))
    driver.ex.submit(SetLeverage(account="a", symbol="Q", leverage=10))
    for op in ops:
        command = scenario_command(driver, op)
        before = _isolated_state(driver)
        hashed = driver.ex.core.state_hash(include_seq=False)
        _, events = driver.ex.submit(command)
        if events and isinstance(events[0], CommandRejected):
            assert driver.ex.core.state_hash(include_seq=False) == hashed
        check_money_and_balances(driver, command, events)
        check_opening_margin(driver, before, events)
    # the re-reservations and margin cancels replay: rerun and rebuild agree
    rerunner = Rerunner(MARKETS, margin=True)
    rebuilder = Rebuilder(MARKETS, margin=True)
    for _, raw in driver.ex.journal.read():
        entry = msgspec.msgpack.decode(raw, type=Journaled)
        rerunner.apply(entry)
        rebuilder.apply(entry)
        assert rerunner.first_difference is None, rerunner.first_difference
    assert rerunner.state_hash() == driver.ex.state_hash() == rebuilder.state_hash()


def check_money_and_balances(
    driver: Driver, command: Command, events: list[Event]
) -> None:
    """Assert the invariants that hold even where liquidations are in reach."""
    core = driver.ex.core
    ledger = core.ledger
    deposits, held = money_sides(ledger)
    assert deposits == held, (command, events)
    sizes = dict.fromkeys(SYMBOLS, 0)
    reserved = dict.fromkeys(ledger.accounts, 0)
    for order in core.index.values():
        reserved[order.account] += order.reserved
    for name, account in ledger.accounts.items():
        assert account.wallet >= 0, (name, command)
        assert account.order_margin == reserved[name], (name, command, events)
        for symbol, p in account.positions.items():
            sizes[symbol] += p.size
            assert p.margin >= 0, (name, symbol, command)
    assert sizes == dict.fromkeys(SYMBOLS, 0), (command, events)
