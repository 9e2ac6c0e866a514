"""Hypothesis properties over long random streams that liquidate.

Four traders (1,000 USDT each, isolated and cross, leverage up to 50x) and a
market maker trade two markets whose marks are pinned to the index. The index
walks, and now and then jumps 10-35%, so positions are liquidated through the
book, partly absorbed, or deleveraged; deposits, withdrawals, mode and
leverage changes, margin adjustments, cancels, market-maker quotes and clock
jumps (funding) are mixed in.

After every record, system records (`Liquidate`) included: money is conserved
exactly (bad debt counted), positions sum to zero per symbol, no wallet,
isolated margin or fund is negative, order holds add up, and an isolated
liquidation never takes more than that position's bucket (the account's cross
wallet gains at most the released remainder minus the fund's part and never
loses; its other isolated buckets do not move). At the end the journal reruns
through a fresh core to the same events and the same hash.
"""

from __future__ import annotations

import itertools
import os
import random
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from margin_helpers import money_sides

from exchange import Exchange, Market
from exchange.journal.payload import JOURNALED_DECODER, journaled_events
from exchange.margin.tiers import TierTable
from exchange.messages import (
    AdjustMargin,
    AdvanceTime,
    BalanceChanged,
    CancelAll,
    CancelOrder,
    Command,
    Deposit,
    Event,
    InsuranceFundChanged,
    Liquidate,
    PlaceOrder,
    PositionDeleveraged,
    PositionLiquidated,
    Record,
    SetIndexPrice,
    SetLeverage,
    SetMarginMode,
    Withdraw,
)
from exchange.units import SCALE
from replay.rebuild import Rebuilder
from replay.rerun import Rerunner

if TYPE_CHECKING:
    from exchange.core import ExchangeCore
    from exchange.margin.ledger import Ledger

EXAMPLES = int(os.environ.get("PAPERX_PROPERTY_EXAMPLES", "25"))
H1 = 3600 * 10**9

MARKETS = (
    Market.from_decimals(
        "P",
        tick_size="0.5",
        lot_size="0.01",
        max_price="100000",
        max_qty="100000",
        mark_source="index",
        # small tiers, so that positions here reach them and are liquidated
        # partially, one tier per step
        tiers=TierTable.of(
            (floor * SCALE, cap * SCALE, lev, mmr)
            for floor, cap, lev, mmr in (
                (0, 2_000, 50, 5_000),
                (2_000, 8_000, 40, 10_000),
                (8_000, 30_000, 20, 25_000),
                (30_000, 10**9, 10, 50_000),
            )
        ),
    ),
    Market.from_decimals(
        "Q",
        tick_size="0.01",
        lot_size="0.001",
        max_price="100000",
        max_qty="100000",
        maker_fee="0.0003",
        taker_fee="0.0007",
        mark_source="index",
    ),
)
SYMBOLS = ("P", "Q")
TRADERS = ("a", "b", "c", "d")
MM = "mm"
BASE = {"P": 200 * SCALE, "Q": 50 * SCALE}
LEVERAGES = (1, 2, 5, 10, 20, 25, 33, 50)


class Step(NamedTuple):
    """One random step; every field is a small int read by `Driver.command`."""

    kind: int  # 0..99: what to do
    acct: int  # 0..3
    sym: int  # 0..1
    side: int  # 0..1
    a: int  # 0..255: amount, price offset or index move
    b: int  # 0..255: size
    c: int  # 0..15: variant


BOUNDS = (100, 4, 2, 2, 256, 256, 16)
STEPS = st.lists(
    st.builds(Step, *(st.integers(0, n - 1) for n in BOUNDS)),
    min_size=150,
    max_size=250,
)


class Driver:
    """A margin `Exchange` whose core checks every invariant after each record."""

    def __init__(self, *, no_shortfall_with_surplus: bool = False) -> None:
        """Create the exchange, hook the checks in, and fund everyone.

        ``no_shortfall_with_surplus`` adds the check that a liquidation which
        leaves a fee or surplus for the fund never drew the fund for a
        shortfall of the liquidated account itself.
        """
        self.no_shortfall_with_surplus = no_shortfall_with_surplus
        ticks = itertools.count(1_000)
        self.ex = Exchange(MARKETS, margin=True, clock=lambda: next(ticks))
        self.markets = {m.symbol: m for m in MARKETS}
        self.index = dict(BASE)
        self.now = 0
        self.seen: dict[str, int] = {"isolated": 0, "cross": 0, "adl": 0, "partial": 0}
        self._wrap()
        for symbol, price in BASE.items():
            self.ex.submit(SetIndexPrice(symbol=symbol, price=price))
        self.ex.submit(Deposit(account=MM, amount=50_000_000 * SCALE))
        for symbol in SYMBOLS:
            self.ex.submit(SetLeverage(account=MM, symbol=symbol, leverage=2))
        for n, trader in enumerate(TRADERS):
            self.ex.submit(Deposit(account=trader, amount=1_000 * SCALE))
            for k, symbol in enumerate(SYMBOLS):  # 10x to 50x to start
                lev = LEVERAGES[3 + (2 * n + k) % 5]
                self.ex.submit(SetLeverage(account=trader, symbol=symbol, leverage=lev))
            mode = "isolated" if n % 2 else "cross"
            self.ex.submit(SetMarginMode(account=trader, symbol="P", mode=mode))

    def _wrap(self) -> None:
        """Make the core check the invariants after every record it handles."""
        core = self.ex.core
        handle = core.handle

        def checked(record: Record) -> list[Event]:
            before = _bucket_view(self, record.command)
            events = handle(record)
            check_record(self, record.command, events, before)
            return events

        core.handle = checked  # type: ignore[method-assign]

    # ------------------------------------------------------------ steps

    def command(self, step: Step) -> Command:  # noqa: C901, PLR0911 -- one branch a kind
        """Read one step as a command against the current state."""
        trader, symbol = TRADERS[step.acct], SYMBOLS[step.sym]
        kind = step.kind
        if kind < 4:
            return Deposit(account=trader, amount=(step.a + 1) * 5 * SCALE)
        if kind < 6:
            return Withdraw(account=trader, amount=(step.a + 1) * 3 * SCALE)
        if kind < 9:
            mode = "isolated" if step.c % 2 else "cross"
            return SetMarginMode(account=trader, symbol=symbol, mode=mode)
        if kind < 13:
            leverage = LEVERAGES[step.c % len(LEVERAGES)]
            return SetLeverage(account=trader, symbol=symbol, leverage=leverage)
        if kind < 16:
            amount = (step.a + 1) * SCALE // 2 * (1 if step.side else -1)
            return AdjustMargin(account=trader, symbol=symbol, amount=amount)
        if kind < 28:
            return self._move(symbol, (step.a % 41 - 20) * 2, step.b)  # within 4%
        if kind < 33:
            jump = 100 + step.a % 251  # 10%..35%, either way
            return self._move(symbol, jump if step.side else -jump, step.b)
        if kind < 35:
            self.now += (1 + step.a % 24) * H1
            return AdvanceTime(ts_ns=self.now)
        mine = sorted(self.ex.core.by_account.get(trader, {}))
        if kind < 39:
            order_id = mine[step.c % len(mine)] if mine else 9_999
            return CancelOrder(account=trader, order_id=order_id)
        if kind < 41:
            who = MM if step.c % 2 else trader
            return CancelAll(account=who, symbol=symbol if step.c % 4 < 2 else "")
        if kind < 55:
            return self._quote(step, symbol)
        return self._order(step, trader, symbol)

    def _move(self, symbol: str, per_mille: int, noise: int) -> SetIndexPrice:
        """Move the index by ``per_mille`` (kept within 1/5..5x of its base)."""
        base = BASE[symbol]
        price = self.index[symbol] * (1_000 + per_mille) // 1_000 + noise
        price = min(max(price, base // 5), base * 5)
        self.index[symbol] = price
        return SetIndexPrice(symbol=symbol, price=price)

    def _price(self, symbol: str, offset_per_mille: int) -> int:
        """Return an E8 price on the grid, ``offset_per_mille`` from the index."""
        tick = self.markets[symbol].tick_size
        price = self.index[symbol] * (1_000 + offset_per_mille) // 1_000
        return max(price // tick, 1) * tick

    def _quote(self, step: Step, symbol: str) -> PlaceOrder:
        """Return a market-maker limit order, 0.5%..20% away from the index."""
        lot = self.markets[symbol].lot_size
        away = 5 + step.a % 196
        buy = step.side == 1
        return PlaceOrder(
            account=MM,
            symbol=symbol,
            side="buy" if buy else "sell",
            type="limit",
            qty=(1 + step.b) * 20 * lot,
            price=self._price(symbol, -away if buy else away),
            post_only=True,
        )

    def _order(self, step: Step, trader: str, symbol: str) -> PlaceOrder:
        """Return a trader's order near the index: limit, IOC, market or reduce."""
        lot = self.markets[symbol].lot_size
        qty = (1 + step.b) * (8 if symbol == "P" else 40) * lot
        side = "buy" if step.side else "sell"
        if step.c < 3:
            return PlaceOrder(
                account=trader, symbol=symbol, side=side, type="market", qty=qty
            )
        offset = step.a % 31 - 15  # within 1.5% of the index
        return PlaceOrder(
            account=trader,
            symbol=symbol,
            side=side,
            type="limit",
            qty=qty,
            price=self._price(symbol, offset),
            tif="IOC" if step.c in {3, 4, 5} else "GTC",
            reduce_only=step.c == 6,
        )


# ------------------------------------------------------------------ checks


class BucketView(NamedTuple):
    """An account's cross wallet and isolated buckets before a Liquidate record."""

    account: str
    symbol: str
    wallet: int
    margins: dict[str, int]


def _bucket_view(driver: Driver, command: Command) -> BucketView | None:
    """Note the liquidated account's wallet and buckets before a Liquidate record."""
    if not isinstance(command, Liquidate):
        return None
    account = driver.ex.core.ledger.accounts.get(command.account)
    if account is None:
        return None
    margins = {
        s: p.margin for s, p in account.positions.items() if p.mode == "isolated"
    }
    return BucketView(
        command.account,
        command.symbol,
        account.wallet,
        margins,
    )


def check_record(
    driver: Driver, command: Command, events: list[Event], before: BucketView | None
) -> None:
    """Assert every invariant after one record (``before``: a Liquidate's view)."""
    core = driver.ex.core
    ledger = core.ledger
    deposits, held = money_sides(ledger)
    assert deposits == held, (command, events)
    assert ledger.settlement.insurance_fund >= 0, (command, events)
    assert ledger.settlement.bad_debt >= 0
    sizes = dict.fromkeys(SYMBOLS, 0)
    reserved = dict.fromkeys(ledger.accounts, 0)
    for order in core.index.values():
        reserved[order.account] += order.reserved
    for name, account in ledger.accounts.items():
        assert account.wallet >= 0, (name, command, events)
        assert account.order_margin == reserved[name], (name, command, events)
        for symbol, p in account.positions.items():
            sizes[symbol] += p.size
            assert p.margin >= 0, (name, symbol, command, events)
            if p.mode == "cross":
                assert p.margin == 0, (name, symbol, command, events)
    assert sizes == dict.fromkeys(SYMBOLS, 0), (command, events)
    for key in _due(ledger):
        assert key in core.liquidator.pending, (key, command, events)
    _check_derived_indexes(core, command, events)
    for e in events:
        if isinstance(e, PositionLiquidated):
            driver.seen[e.mode] += 1
            driver.seen["partial"] += e.left > 0
        elif isinstance(e, PositionDeleveraged):
            driver.seen["adl"] += 1
    if before is not None:
        _check_liquidation(driver, before, events)


def _check_derived_indexes(
    core: ExchangeCore, command: Command, events: list[Event]
) -> None:
    """Assert the indexes the fast paths read agree with a scan of the state.

    Each market's liquidation index holds exactly the accounts with a
    position there (ADL ranks only those), each at an entry at least as
    cautious as the exact rule (a mark one step past it on the safe side,
    the other marks as they are, does not make the account due), no position
    change is left unfitted, and every resting order that is not parked holds
    at least the initial margin of what it would open (the refit visits only
    orders of symbols whose position moved, relying on this).
    """
    ledger = core.ledger
    assert not ledger.dirty, (command, events)
    assert not ledger.settlement.moved, (command, events)
    for symbol in SYMBOLS:
        holders = {
            name
            for name, account in ledger.accounts.items()
            if symbol in account.positions and account.positions[symbol].size
        }
        index = core.liquidator.indexes[symbol]
        assert set(index.at) == holders, (command, events)
        for name, (is_long, entry) in index.at.items():
            pending = core.liquidator.pending
            past = entry + 1 if is_long else entry - 1
            if (name, "") in pending or (name, symbol) in pending or past <= 0:
                continue  # due already, or reported at every (or no) mark
            assert not _due_at(ledger, name, symbol, past), (name, command, events)
    for order in core.index.values():
        if core.markets[order.spec.symbol].parked_in(order.order_id):
            continue
        im, _ = ledger.opening_margin(ledger.accounts[order.account], order)
        assert order.reserved >= im, (order.order_id, command, events)


def _due_at(ledger: Ledger, name: str, symbol: str, mark: int) -> bool:
    """Return the exact margin rule for ``name``'s ``symbol`` position at ``mark``.

    Isolated: its bucket; cross: the whole cross account, with the other
    cross positions at their own marks. Values round as the ledger rounds.
    """
    account = ledger.accounts[name]
    position = account.positions[symbol]
    held = (
        [position]
        if position.mode == "isolated"
        else [p for p in account.positions.values() if p.size and p.mode == "cross"]
    )
    balance = position.margin if position.mode == "isolated" else account.wallet
    mm = 0
    for p in held:
        risk = ledger.markets[p.symbol]
        at = mark if p.symbol == symbol else risk.mark
        balance += p.size * risk.lot_size * at // SCALE - p.cost
        mm += risk.tiers.maintenance_margin(abs(p.size) * risk.lot_size * at // SCALE)
    return balance <= mm


def _due(ledger: Ledger) -> list[tuple[str, str]]:
    """Return every (account, symbol) due for liquidation now ("": cross account).

    Computed by brute force over every position, apart from the liquidator's
    index: after every record, each of them must have its liquidation pending.
    """
    due = []
    for name, account in ledger.accounts.items():
        cross_marked = False
        for symbol, p in account.positions.items():
            risk = ledger.markets[symbol]
            if not p.size or not risk.mark:
                continue
            if p.mode == "cross":
                cross_marked = True
            elif p.margin + risk.upnl(p) <= risk.tiers.maintenance_margin(
                risk.notional(p.size)
            ):
                due.append((name, symbol))
        upnl, _, mm = ledger.settlement.cross_totals(account)
        if cross_marked and mm and account.wallet + upnl <= mm:
            due.append((name, ""))
    return due


def _check_liquidation(driver: Driver, before: BucketView, events: list[Event]) -> None:
    """An isolated liquidation takes at most its bucket; no other bucket moves."""
    account = driver.ex.core.ledger.accounts[before.account]
    for symbol, margin in before.margins.items():
        if symbol != before.symbol:
            assert account.positions[symbol].margin == margin, (before, events)
    done = [
        e
        for e in events
        if isinstance(e, PositionLiquidated) and e.account == before.account
    ]
    if driver.no_shortfall_with_surplus and any(e.fee + e.surplus for e in done):
        # money was left over for the fund, so the account itself was never short
        short = [
            e
            for e in events
            if isinstance(e, InsuranceFundChanged)
            and e.reason == "shortfall"
            and e.account == before.account
        ]
        assert short == [], (before, events)
    if not before.symbol or not done:
        return
    (liquidated,) = done
    assert liquidated.mode == "isolated"
    released = sum(
        e.amount
        for e in events
        if isinstance(e, BalanceChanged)
        and e.account == before.account
        and e.reason == "isolated_margin"
    )
    gained = account.wallet - before.wallet
    assert gained >= 0, (before, events)
    assert gained == released - liquidated.fee - liquidated.surplus, (before, events)


def drive(steps: Sequence[Step], *, no_shortfall_with_surplus: bool = False) -> Driver:
    """Feed a stream to a fresh driver (checked after every record)."""
    driver = Driver(no_shortfall_with_surplus=no_shortfall_with_surplus)
    for step in steps:
        driver.ex.submit(driver.command(step))
    return driver


def check_rerun(driver: Driver) -> None:
    """Live hash == rebuild hash == rerun hash, and the rerun says the same events."""
    rerunner = Rerunner(MARKETS, margin=True)
    rebuilder = Rebuilder(MARKETS, margin=True)
    for _, raw in driver.ex.journal.read():
        entry = JOURNALED_DECODER.decode(raw)
        rerunner.apply(entry)
        rebuilder.apply(entry)
        if rerunner.first_difference is not None:
            pytest.fail(rerunner.first_difference.describe())
    assert rerunner.state_hash() == driver.ex.state_hash() == rebuilder.state_hash()


def check_resume(driver: Driver, cuts: int = 4) -> None:
    """A core rebuilt from a prefix of the log goes on exactly as the live one did.

    This is recovery (a restored state, then the journal's tail): at each cut
    the rebuilt core, its indexes re-derived, handles the rest of the records
    and must produce the logged events, system records included.
    """
    entries = [JOURNALED_DECODER.decode(raw) for _, raw in driver.ex.journal.read()]
    for cut in range(1, len(entries), max(1, len(entries) // cuts)):
        rebuilder = Rebuilder(MARKETS, margin=True)
        for entry in entries[:cut]:
            rebuilder.apply(entry)
        core = rebuilder.resume()
        for entry in entries[cut:]:
            assert journaled_events(core.handle(entry.record)) == entry.events, (
                cut,
                entry.record,
            )
            core.take_system_commands()  # the log holds them as the next records
        assert core.state_hash() == driver.ex.state_hash()


def seeded_steps(seed: int, count: int = 250) -> list[Step]:
    """Return a uniform seeded stream (hypothesis favours small ints)."""
    rng = random.Random(seed)  # noqa: S311 -- a seeded stream, not a secret
    return [Step(*(rng.randrange(n) for n in BOUNDS)) for _ in range(count)]


class TestLiquidationInvariants:
    """Invariants of random streams with liquidations, after every record."""

    @settings(max_examples=EXAMPLES, deadline=None)
    @given(STEPS)
    def test_invariants_hold_after_every_record_and_the_journal_reruns(
        self, steps: list[Step]
    ):
        """Money, positions, balances and buckets hold; the rerun matches the log."""
        driver = drive(steps, no_shortfall_with_surplus=True)
        check_rerun(driver)
        check_resume(driver)

    @pytest.mark.parametrize("seed", range(12))
    def test_invariants_hold_on_seeded_uniform_streams(self, seed: int):
        """Uniform seeded streams keep every invariant and rerun identically."""
        driver = drive(seeded_steps(seed))
        check_rerun(driver)
        check_resume(driver, cuts=12)

    @pytest.mark.parametrize("seed", range(12))
    def test_a_liquidation_leaving_money_for_the_fund_never_covers_its_own_loss(
        self, seed: int
    ):
        """A liquidation that pays the fund never has its own loss covered."""
        drive(seeded_steps(seed), no_shortfall_with_surplus=True)

    def test_seeded_streams_liquidate_both_modes_and_deleverage(self):
        """The seeded streams reach isolated, cross and partial liquidation, and ADL."""
        seen = dict.fromkeys(("isolated", "cross", "adl", "partial"), 0)
        for seed in range(12):
            driver = drive(seeded_steps(seed))
            for key, count in driver.seen.items():
                seen[key] += count
        assert min(seen.values()) > 0, seen
