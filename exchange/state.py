"""The core's whole state as plain data, and a core rebuilt from it (snapshots).

`capture` turns an `ExchangeCore` at a record boundary into a `CoreState`:
frozen msgspec structs of ints, strings and lists, everything a following
record can depend on. `restore` writes one into a freshly built core for the
same markets. Bytes, files and checksums are the shell's business
(`exchange.journal.snapshots`); this module only maps objects to data and
back, so the core stays pure.

Exact, not just equal: besides what `ExchangeCore.state_hash` covers, the
data keeps every order of iteration the core's events depend on (accounts,
positions, an account's open orders, the order index, pending liquidations),
the per-order margin holds, the client ids and the transient sets a record
leaves behind, so a restored core emits the same events as the original for
the same following records. What the core derives beside its state (the
reduce-only orders at rest, the liquidation index) is not stored:
`ExchangeCore.restore_indexes` derives it after `restore`. The ledger's
earliest funding time is not stored either: its next clock step recomputes
it from the funding windows, which are.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from exchange.engine.book import Order
from exchange.errors import InvariantViolation
from exchange.margin.accounts import Account, MarginMode, Position
from exchange.margin.funding import FundingState
from exchange.margin.mark import MarkState
from exchange.messages import Liquidate, OrderAccepted

if TYPE_CHECKING:
    from exchange.core import ExchangeCore
    from exchange.engine.execution import Execution
    from exchange.engine.triggers import TriggerBook
    from exchange.margin.ledger import Ledger
    from exchange.margin.liquidation import Liquidator

__all__ = [
    "AccountState",
    "CoreState",
    "EngineState",
    "LedgerState",
    "MarketBooksState",
    "MarketMarginState",
    "OrderState",
    "PositionState",
    "capture",
    "restore",
]


class OrderState(msgspec.Struct, frozen=True, array_like=True):
    """An open order: its live fields, the E8 margin it holds, and its spec."""

    order_id: int
    account: str
    is_buy: bool
    price: int
    remaining: int
    reserved: int
    spec: OrderAccepted


class MarketBooksState(msgspec.Struct, frozen=True, array_like=True):
    """One market's book (order ids, best first, FIFO), triggers and last price.

    A trigger is ``(trigger ticks, rising, order id)``, in the trigger book's
    firing order.
    """

    symbol: str
    last_price: int | None
    bids: list[int]
    asks: list[int]
    triggers: list[tuple[int, bool, int]]
    mark_triggers: list[tuple[int, bool, int]]


class EngineState(msgspec.Struct, frozen=True, array_like=True):
    """The engine: id counters, open orders (index order), books, client ids."""

    next_order_id: int
    next_trade_id: int
    orders: list[OrderState]
    by_account: list[tuple[str, list[int]]]
    client_ids: list[tuple[str, str, int]]
    markets: list[MarketBooksState]


class PositionState(msgspec.Struct, frozen=True, array_like=True):
    """One position: signed lots, signed E8 cost, isolated margin, settings."""

    symbol: str
    size: int
    cost: int
    margin: int
    mode: MarginMode
    leverage: int


class AccountState(msgspec.Struct, frozen=True, array_like=True):
    """One account: wallet, order margin, risk limits, day PnL, positions."""

    name: str
    wallet: int
    order_margin: int
    max_order_margin_ppm: int
    daily_loss_limit: int
    day: int
    day_pnl: int
    positions: list[PositionState]


class MarketMarginState(msgspec.Struct, frozen=True, array_like=True):
    """One market's mark (E8), mark inputs and open funding window, as rows."""

    symbol: str
    mark: int
    mark_state: list[Any]
    funding: list[Any] | None


class LedgerState(msgspec.Struct, frozen=True, array_like=True):
    """The margin ledger, the liquidations pending and those not yet journaled."""

    insurance_fund: int
    fees_collected: int
    bad_debt: int
    deposits: int
    withdrawals: int
    day: int
    markets: list[MarketMarginState]
    accounts: list[AccountState]
    dirty: list[str]
    moved: list[tuple[str, list[tuple[str, bool]]]]  # account -> (symbol, side)
    pending: list[tuple[str, str]]
    outbox: list[Liquidate]


class CoreState(msgspec.Struct, frozen=True, array_like=True):
    """The whole core after record ``last_seq``, at exchange time ``ts_ns``."""

    schema: int
    last_seq: int
    ts_ns: int
    symbols: list[str]
    engine: EngineState
    ledger: LedgerState | None


# ------------------------------------------------------------------ capture


def capture(core: ExchangeCore, schema: int) -> CoreState:
    """Return the state of ``core`` (between two records) as plain data.

    Args:
        core: The core; it must not be inside `handle`.
        schema: The state schema to stamp (`exchange.core.STATE_SCHEMA`).
    """
    ledger = core.ledger
    return CoreState(
        schema=schema,
        last_seq=core.last_seq,
        ts_ns=core.ts_ns,
        symbols=list(core.markets),
        engine=_capture_engine(core.execution),
        ledger=(
            None
            if ledger is None or core.liquidator is None
            else _capture_ledger(ledger, core.liquidator)
        ),
    )


def _capture_engine(execution: Execution) -> EngineState:
    """Return the books, orders, indexes and counters as plain data."""
    markets = []
    for symbol, state in execution.markets.items():
        book = state.book
        markets.append(
            MarketBooksState(
                symbol=symbol,
                last_price=state.last_price,
                bids=[o.order_id for o in book.orders(is_buy=True)],
                asks=[o.order_id for o in book.orders(is_buy=False)],
                triggers=_triggers(state.triggers),
                mark_triggers=_triggers(state.mark_triggers),
            )
        )
    return EngineState(
        next_order_id=execution.next_order_id,
        next_trade_id=execution.next_trade_id,
        orders=[
            OrderState(
                o.order_id,
                o.account,
                o.is_buy,
                o.price,
                o.remaining,
                o.reserved,
                o.spec,
            )
            for o in execution.index.values()
        ],
        by_account=[(name, list(ids)) for name, ids in execution.by_account.items()],
        client_ids=[(a, c, i) for (a, c), i in execution.client_ids.items()],
        markets=markets,
    )


def _triggers(book: TriggerBook) -> list[tuple[int, bool, int]]:
    """Return a trigger book's pending orders as (trigger, rising, order id)."""
    return [(t, r, o.order_id) for t, r, o in book.pending()]


def _capture_ledger(ledger: Ledger, liquidator: Liquidator) -> LedgerState:
    """Return the ledger, its markets' prices and the pending liquidations."""
    settlement = ledger.settlement
    return LedgerState(
        insurance_fund=settlement.insurance_fund,
        fees_collected=settlement.fees_collected,
        bad_debt=settlement.bad_debt,
        deposits=settlement.deposits,
        withdrawals=settlement.withdrawals,
        day=settlement.day,
        markets=[
            MarketMarginState(
                symbol=symbol,
                mark=risk.mark,
                mark_state=risk.mark_state.state_rows(),
                funding=None if risk.funding is None else risk.funding.state_rows(),
            )
            for symbol, risk in ledger.markets.items()
        ],
        accounts=[_capture_account(a) for a in ledger.accounts.values()],
        dirty=list(ledger.dirty),
        moved=[(name, sorted(s)) for name, s in settlement.moved.items()],
        pending=list(liquidator.pending),
        outbox=list(liquidator.outbox),
    )


def _capture_account(account: Account) -> AccountState:
    """Return one account and its positions (in the account's own order)."""
    return AccountState(
        name=account.name,
        wallet=account.wallet,
        order_margin=account.order_margin,
        max_order_margin_ppm=account.max_order_margin_ppm,
        daily_loss_limit=account.daily_loss_limit,
        day=account.day,
        day_pnl=account.day_pnl,
        positions=[
            PositionState(p.symbol, p.size, p.cost, p.margin, p.mode, p.leverage)
            for p in account.positions.values()
        ],
    )


# ------------------------------------------------------------------ restore


def restore(core: ExchangeCore, state: CoreState) -> None:
    """Write ``state`` into ``core``, a freshly built core for the same markets.

    The derived indexes are left to `ExchangeCore.restore_indexes`.

    Raises:
        InvariantViolation: If the core is not fresh, its markets or margin
            setting differ from the state's, or the state is inconsistent
            (an order in no book, a book naming an unknown order).
    """
    if core.last_seq or core.execution.index:
        msg = "a snapshot is restored into a fresh core only"
        raise InvariantViolation(msg)
    if list(core.markets) != state.symbols:
        msg = f"snapshot markets {state.symbols} differ from {list(core.markets)}"
        raise InvariantViolation(msg)
    if (core.ledger is None) != (state.ledger is None):
        msg = "snapshot and core differ in their margin setting"
        raise InvariantViolation(msg)
    core.last_seq = state.last_seq
    core.ts_ns = state.ts_ns
    _restore_engine(core.execution, state.engine)
    if core.ledger is not None and core.liquidator is not None:
        assert state.ledger is not None  # checked above
        _restore_ledger(core.ledger, core.liquidator, state.ledger)


def _restore_engine(execution: Execution, state: EngineState) -> None:
    """Rebuild the books, trigger books, order indexes and counters."""
    execution.next_order_id = state.next_order_id
    execution.next_trade_id = state.next_trade_id
    orders = {
        row.order_id: Order(
            row.order_id,
            row.account,
            row.is_buy,
            row.price,
            row.remaining,
            row.spec,
            row.reserved,
        )
        for row in state.orders
    }
    placed = 0
    try:
        for row in state.markets:
            books = execution.markets[row.symbol]
            books.last_price = row.last_price
            for order_id in (*row.bids, *row.asks):
                books.book.add(orders[order_id])
            for trigger, rising, order_id in row.triggers:
                books.triggers.add(orders[order_id], trigger, rising)
            for trigger, rising, order_id in row.mark_triggers:
                books.mark_triggers.add(orders[order_id], trigger, rising)
            placed += len(row.bids) + len(row.asks)
            placed += len(row.triggers) + len(row.mark_triggers)
        # The shared indexes, in the original's insertion order (the books
        # filled them in book order): cancels walk an account's orders in it.
        index, by_account = execution.index, execution.by_account
        index.clear()
        index.update(orders)
        by_account.clear()
        for name, ids in state.by_account:
            by_account[name] = {i: orders[i] for i in ids}
    except KeyError as exc:
        msg = f"snapshot names order {exc.args[0]} that it does not hold"
        raise InvariantViolation(msg) from exc
    if placed != len(orders):
        msg = f"snapshot holds {len(orders)} orders but its books {placed}"
        raise InvariantViolation(msg)
    execution.client_ids = {(a, c): i for a, c, i in state.client_ids}


def _restore_ledger(ledger: Ledger, liquidator: Liquidator, state: LedgerState) -> None:
    """Rebuild the accounts, money totals, marks, funding windows and liquidations."""
    settlement = ledger.settlement
    settlement.insurance_fund = state.insurance_fund
    settlement.fees_collected = state.fees_collected
    settlement.bad_debt = state.bad_debt
    settlement.deposits = state.deposits
    settlement.withdrawals = state.withdrawals
    settlement.day = state.day
    for row in state.markets:
        risk = ledger.markets[row.symbol]
        risk.mark = row.mark
        risk.mark_state = MarkState.from_rows(row.mark_state)
        risk.funding = (
            None if row.funding is None else FundingState.from_rows(list(row.funding))
        )
    for saved in state.accounts:
        # saved in the order they were opened: that order is their ordinal
        account = Account(saved.name, len(ledger.accounts))
        ledger.accounts[saved.name] = account
        account.wallet = saved.wallet
        account.order_margin = saved.order_margin
        account.max_order_margin_ppm = saved.max_order_margin_ppm
        account.daily_loss_limit = saved.daily_loss_limit
        account.day, account.day_pnl = saved.day, saved.day_pnl
        for p in saved.positions:
            position = account.positions[p.symbol] = Position(saved.name, p.symbol)
            position.size, position.cost, position.margin = p.size, p.cost, p.margin
            position.mode, position.leverage = p.mode, p.leverage
    ledger.dirty.update(dict.fromkeys(state.dirty))
    settlement.moved.update({name: set(symbols) for name, symbols in state.moved})
    liquidator.pending.update(dict.fromkeys(state.pending))
    liquidator.outbox.extend(state.outbox)
