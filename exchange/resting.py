"""Resting orders fitted to the positions and wallets a record changed (step 4).

A record that moves a position or a wallet can leave orders at rest that no
longer fit: a reduce-only order larger than its position (or on the wrong
side of it), or an order whose fill would now open exposure it holds no
margin for (a close whose position shrank or closed). Both rules need the
books (the engine) and the positions (the ledger), so they live here, beside
the core that owns both, and run for the accounts the record touched.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from exchange.messages import Event, OrderAmended

if TYPE_CHECKING:
    from exchange.engine.book import Order
    from exchange.engine.execution import Execution
    from exchange.margin.accounts import Account
    from exchange.margin.ledger import Ledger

__all__ = ["fit_resting_orders"]


def fit_resting_orders(
    seq: int,
    execution: Execution,
    ledger: Ledger,
    accounts: list[str],
    events: list[Event],
) -> None:
    """Trim reduce-only orders, then refit order margin, for ``accounts``."""
    if execution.resting_reduce_only:
        _trim_reduce_only(seq, execution, ledger, accounts, events)
    _refit_order_margin(seq, execution, ledger, accounts, events)


def _trim_reduce_only(
    seq: int,
    execution: Execution,
    ledger: Ledger,
    accounts: list[str],
    events: list[Event],
) -> None:
    """Keep resting reduce-only orders from ever growing a position.

    After ``accounts``' positions changed: an order on the position's side
    (or with the position flat) is canceled (reason "reduce_only"); one
    larger than the position is cut down to it in place (`OrderAmended`).
    """
    for name in accounts:
        resting = execution.resting_reduce_only.get(name)
        if not resting:
            continue
        for order_id in [i for i in resting if i not in execution.index]:
            del resting[order_id]
        account = ledger.accounts[name]
        # by id, not by when they came to rest: a restored core agrees
        for order in sorted(resting.values(), key=_order_id):
            position = account.positions.get(order.spec.symbol)
            size = position.size if position is not None else 0
            if not size or (size > 0) == order.is_buy:
                del resting[order.order_id]
                execution.take_off(seq, order, events, "reduce_only")
            elif order.remaining > abs(size):
                state = execution.markets[order.spec.symbol]
                state.book.reduce(order, abs(size))
                execution.touch(state, order.is_buy, order.price)
                events.append(_kept_in_place(seq, order, abs(size)))


def _refit_order_margin(
    seq: int,
    execution: Execution,
    ledger: Ledger,
    accounts: list[str],
    events: list[Event],
) -> None:
    """Keep what resting orders hold enough to fund the positions they open.

    After ``accounts``' positions or wallets changed, for each of their
    orders in a book, oldest first: one that would now open exposure
    holding less than the initial margin of that part (a close whose
    position shrank or closed) is re-reserved at that margin plus its taker
    fee from the free balance (`OrderAmended`, same price and quantity),
    or canceled (reason "margin") if the free balance cannot cover it.
    Then, while the cash wallet is below what orders hold (a realized loss,
    fee or funding took it), the newest orders that open exposure are
    canceled (reason "margin"). Orders that only close are never canceled
    here, and reservations never shrink here (fills, cancels and amends
    release them).
    """
    # Only orders of a symbol and side the account's fills took since it was
    # last fitted can be short (`Settlement.moved` says why): every other one
    # was fitted then (or checked when placed, amended or triggered) against
    # a position it needs no more margin for now, and an order that holds
    # enough changes nothing below. So the short ones are found first and
    # handled oldest first, as a scan of every order would.
    moved = ledger.settlement.moved
    for name in accounts:
        sides = moved.pop(name, None)
        orders = execution.by_account.get(name)
        if not orders:
            continue
        account = ledger.accounts[name]
        if sides:
            short = [
                order
                for order in orders.values()
                if (order.spec.symbol, order.is_buy) in sides
                and order.reserved < ledger.opening_margin(account, order)[0]
            ]
            if short:
                short.sort(key=_order_id)
                _refit_short(seq, execution, ledger, account, short, events)
        if account.wallet < account.order_margin:
            _cancel_newest_opening(seq, execution, ledger, account, orders, events)


def _refit_short(
    seq: int,
    execution: Execution,
    ledger: Ledger,
    account: Account,
    short: list[Order],
    events: list[Event],
) -> None:
    """Re-reserve (or cancel) orders holding less than they open, oldest first."""
    for order in short:
        if execution.markets[order.spec.symbol].parked_in(order.order_id):
            continue  # untriggered: checked and reserved when it fires
        im, fee = ledger.opening_margin(account, order)
        if im + fee - order.reserved > ledger.settlement.available(account):
            execution.take_off(seq, order, events, "margin")
            continue
        ledger.release_all(order)
        ledger.reserve(order, im + fee)
        events.append(_kept_in_place(seq, order, order.remaining))


def _cancel_newest_opening(
    seq: int,
    execution: Execution,
    ledger: Ledger,
    account: Account,
    orders: dict[int, Order],
    events: list[Event],
) -> None:
    """Cancel the newest orders that open exposure until the wallet covers them."""
    markets = execution.markets
    opening = [
        order
        for order in sorted(orders.values(), key=_order_id)
        if not markets[order.spec.symbol].parked_in(order.order_id)
        and ledger.opening_margin(account, order)[0]
    ]
    while opening and account.wallet < account.order_margin:
        execution.take_off(seq, opening.pop(), events, "margin")


def _kept_in_place(seq: int, order: Order, qty: int) -> OrderAmended:
    """Report an order changed by the exchange where it rests (priority kept)."""
    return OrderAmended(
        seq=seq,
        order_id=order.order_id,
        account=order.account,
        symbol=order.spec.symbol,
        price=order.price,
        qty=qty,
        requeued=False,
        margin=order.reserved,
    )


def _order_id(order: Order) -> int:
    """Return an order's id (a sort key)."""
    return order.order_id
