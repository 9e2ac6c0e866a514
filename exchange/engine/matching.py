"""Matching rules: price-time priority at the maker's price, with self-trade prevention.

These functions walk an `OrderBook` on behalf of an incoming (taker) order.
They mutate the book but create no events: a fill is reported as a
``(maker, price, qty)`` tuple appended to the caller's list, so the same code
serves the full core and the bare matching benchmark.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from exchange.engine.book import Level, Order, OrderBook

__all__ = [
    "EXPIRE_BOTH",
    "EXPIRE_MAKER",
    "EXPIRE_TAKER",
    "STP_MODES",
    "can_fill",
    "match",
    "would_take",
]

# Self-trade prevention, as small ints so the hot loop tests one truthy value.
EXPIRE_TAKER: Final = 1
EXPIRE_MAKER: Final = 2
EXPIRE_BOTH: Final = 3
STP_MODES: Final = {
    "none": 0,
    "expire_taker": EXPIRE_TAKER,
    "expire_maker": EXPIRE_MAKER,
    "expire_both": EXPIRE_BOTH,
}

Fill = tuple["Order", int, int]


def match(  # noqa: C901 -- the hot loop stays in one frame on purpose
    book: OrderBook,
    is_buy: bool,
    account: str,
    limit: int | None,
    qty: int,
    stp: int,
    fills: list[Fill],
    expired: list[tuple[Order, int]],
) -> tuple[int, bool]:
    """Match ``qty`` lots against the opposite side, best price first.

    Args:
        book: the symbol's book; filled and STP-expired makers leave it.
        is_buy: the taker's side.
        account: the taker's account (self-trade prevention compares it).
        limit: the worst price the taker accepts in ticks; None for market.
        qty: lots to match.
        stp: 0 or one of EXPIRE_TAKER / EXPIRE_MAKER / EXPIRE_BOTH.
        fills: receives ``(maker, price, qty)`` per trade, in trade order.
        expired: receives ``(maker, open_qty)`` per maker expired by STP.

    Returns:
        The taker's unmatched lots, and True if self-trade prevention stopped
        the taker (EXPIRE_TAKER / EXPIRE_BOTH met an own order).
    """
    side = book.asks if is_buy else book.bids
    keys = book.ask_keys if is_buy else book.bid_keys
    best = 0 if is_buy else -1
    index = book.index
    by_account = book.by_account
    remaining = qty
    while remaining and keys:
        price = keys[best][best]
        level = side[price]
        if limit is not None and (price > limit if is_buy else price < limit):
            break
        orders = level.orders
        while orders:
            maker = orders[0]
            open_qty = maker.remaining
            if not open_qty:  # lazily canceled
                orders.popleft()
                continue
            if stp and maker.account == account:
                if stp != EXPIRE_TAKER:
                    _take_out(level, maker, open_qty)
                    index.pop(maker.order_id)
                    del by_account[maker.account][maker.order_id]
                    expired.append((maker, open_qty))
                if stp != EXPIRE_MAKER:
                    if not level.live:
                        del side[price]
                    return remaining, True
                continue
            if remaining < open_qty:
                maker.remaining = open_qty - remaining
                level.total -= remaining
                fills.append((maker, price, remaining))
                return 0, False
            _take_out(level, maker, open_qty)
            del index[maker.order_id]
            del by_account[maker.account][maker.order_id]
            fills.append((maker, price, open_qty))
            remaining -= open_qty
            if not remaining:
                break
        if not level.live:
            del side[price]
    return remaining, False


def _take_out(level: Level, maker: Order, open_qty: int) -> None:
    """Pop the front maker of a level and account for its open quantity."""
    level.orders.popleft()
    level.total -= open_qty
    level.live -= 1
    maker.remaining = 0


def can_fill(
    book: OrderBook, is_buy: bool, account: str, limit: int | None, qty: int, stp: int
) -> bool:
    """Return True if `match` would fill all ``qty`` lots (the fill-or-kill test).

    Own orders count as matching would treat them: skipped under EXPIRE_MAKER,
    a stop under EXPIRE_TAKER / EXPIRE_BOTH. The book is not changed.
    """
    side = book.asks if is_buy else book.bids
    prices = iter(side) if is_buy else reversed(side)
    need = qty
    for price in prices:
        if limit is not None and (price > limit if is_buy else price < limit):
            return False
        level = side[price]
        if not stp:
            need -= level.total
        else:
            for maker in level.orders:
                if not maker.remaining:
                    continue
                if maker.account == account:
                    if stp != EXPIRE_MAKER:
                        return False
                    continue
                need -= maker.remaining
                if need <= 0:
                    return True
        if need <= 0:
            return True
    return False


def would_take(book: OrderBook, is_buy: bool, limit: int) -> bool:
    """Return True if a limit order at ``limit`` ticks would trade on arrival."""
    if is_buy:
        keys = book.ask_keys
        return bool(keys) and keys[0][0] <= limit
    keys = book.bid_keys
    return bool(keys) and keys[-1][-1] >= limit
