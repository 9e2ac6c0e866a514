"""Variant (a) of ``paperx bench core``: the matching layer alone.

Commands are compiled (before timing) into small tuples that drive
`exchange.engine.book.OrderBook` and `exchange.engine.matching.match` directly: no
records, no validation, no events, no encoding. Order ids are assigned as the core
assigns them (1, 2, 3, ... per accepted `PlaceOrder`), which is exact for
streams that produce no rejects (the standard stream, `clients.orderflow`).

What the matching layer does not model is skipped and counted: stop and
take-profit orders are parked by the core's trigger book (step 4), not by the
book, so here they only take an id; a later cancel of one finds nothing.
Cancel-all is not compiled. On a stream with stops, (a)'s fills can therefore
differ from the core's; on the standard stream they must be identical.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from exchange.engine.book import Order, OrderBook
from exchange.engine.matching import STP_MODES, can_fill, match, would_take
from exchange.messages import (
    AmendOrder,
    CancelAll,
    CancelOrder,
    Command,
    OrderAccepted,
    PlaceOrder,
)
from replay.streams import FillHash

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from exchange.markets import Market

__all__ = ["MatchingRun", "compile_ops", "run_matching"]

# Op codes: the first item of each compiled tuple; only codes below _IOC rest.
_GTC, _POST, _IOC, _FOK, _CANCEL, _AMEND, _SKIP = range(7)
_CHUNK = 1 << 16  # commands between progress reports
# The matching layer never reads an order's spec; every bench order shares this one.
_NO_SPEC = OrderAccepted(
    seq=0,
    order_id=0,
    account="",
    symbol="",
    side="buy",
    type="limit",
    qty=0,
    price=0,
    tif="GTC",
    post_only=False,
    reduce_only=False,
    trigger_price=0,
    stp="none",
    client_order_id="",
)

Op = tuple[Any, ...]


class MatchingRun:
    """The outcome of variant (a): wall time, fills and what was skipped."""

    __slots__ = ("fills", "seconds", "skipped")

    def __init__(self, seconds: float, fills: FillHash, skipped: int) -> None:
        """Keep the timed seconds, the fill hash and the count of skipped commands."""
        self.seconds = seconds
        self.fills = fills
        self.skipped = skipped


def compile_ops(commands: Iterable[Command], markets: Sequence[Market]) -> list[Op]:
    """Return matching-layer ops for ``commands`` on fresh books of ``markets``.

    Prices and quantities are converted from E8 to ticks and lots here, so
    the timed loop does no arithmetic the core's validation would do.
    """
    index: dict[int, Order] = {}
    by_account: dict[str, dict[int, Order]] = {}
    books = {m.symbol: (m, OrderBook(m.symbol, index, by_account)) for m in markets}
    book_of: dict[int, tuple[OrderBook, int]] = {}  # order id -> (book, stp mode)
    client_ids: dict[tuple[str, str], int] = {}
    next_id = 1
    ops: list[Op] = []
    for cmd in commands:
        if isinstance(cmd, PlaceOrder):
            market, book = books[cmd.symbol]
            oid, next_id = next_id, next_id + 1
            book_of[oid] = book, STP_MODES[cmd.stp]
            if cmd.client_order_id:
                client_ids[cmd.account, cmd.client_order_id] = oid
            ops.append(_place_op(cmd, oid, market, book))
        elif isinstance(cmd, CancelOrder | AmendOrder):
            oid = cmd.order_id or client_ids.get((cmd.account, cmd.client_order_id), 0)
            known = book_of.get(oid)
            if known is None:
                ops.append((_SKIP,))
            elif isinstance(cmd, CancelOrder):
                ops.append((_CANCEL, oid, known[0]))
            else:
                market = books[known[0].symbol][0]
                ops.append(
                    (
                        _AMEND,
                        oid,
                        cmd.price // market.tick_size,
                        cmd.qty // market.lot_size,
                        known[1],
                        known[0],
                    )
                )
        elif isinstance(cmd, CancelAll):
            ops.append((_SKIP,))
    return ops


def _place_op(cmd: PlaceOrder, oid: int, market: Market, book: OrderBook) -> Op:
    """Compile one new order."""
    if cmd.trigger_price:
        return (_SKIP,)
    is_buy = cmd.side == "buy"
    price = cmd.price // market.tick_size or None
    lots = cmd.qty // market.lot_size
    stp = STP_MODES[cmd.stp]
    if price is None or cmd.tif == "IOC":
        code = _IOC
    elif cmd.tif == "FOK":
        code = _FOK
    elif cmd.post_only:
        code = _POST
    else:
        code = _GTC
    return (code, oid, cmd.account, is_buy, price, lots, stp, book)


def run_matching(
    ops: Sequence[Op], progress: Callable[[int], None] | None = None
) -> MatchingRun:
    """Run compiled ops through the matching layer and time it.

    Fills are folded into the fill hash as they happen (as the reference
    engine of ``workload.py`` does) rather than kept: a million retained fill
    tuples would make every full garbage collection walk them.
    """
    fills = FillHash()
    skipped = 0
    started = time.perf_counter()
    for start in range(0, len(ops), _CHUNK):
        skipped += _run_chunk(ops[start : start + _CHUNK], fills)
        if progress is not None:
            progress(min(start + _CHUNK, len(ops)))
    seconds = time.perf_counter() - started
    return MatchingRun(seconds, fills, skipped)


def _run_chunk(ops: Sequence[Op], out: FillHash) -> int:  # noqa: C901, PLR0912 -- one hot loop
    """Apply ops, folding their fills into ``out``; return how many were skipped."""
    fills: list[tuple[Order, int, int]] = []
    expired: list[tuple[Order, int]] = []
    skipped = 0
    for op in ops:
        code = op[0]
        if code <= _FOK:
            _, oid, account, is_buy, price, lots, stp, book = op
            if (
                code == _FOK and not can_fill(book, is_buy, account, price, lots, stp)
            ) or (code == _POST and would_take(book, is_buy, price)):
                continue
            if price is None or would_take(book, is_buy, price):
                remaining, stopped = match(
                    book, is_buy, account, price, lots, stp, fills, expired
                )
            else:  # most limits do not cross: skip the walk, as the core does
                remaining, stopped = lots, False
            if remaining and not stopped and code < _IOC:
                book.add(Order(oid, account, is_buy, price, remaining, _NO_SPEC))
        elif code == _CANCEL:
            order = op[2].index.get(op[1])
            if order is not None:
                op[2].remove(order)
            continue
        elif code == _AMEND:
            oid = op[1]
            _amend(op, fills, expired)
        else:
            skipped += 1
            continue
        if fills:
            for maker, fill_price, qty in fills:
                out.add(oid, maker.order_id, fill_price, qty)
            fills.clear()
        if expired:
            expired.clear()
    return skipped


def _amend(
    op: Op, fills: list[tuple[Order, int, int]], expired: list[tuple[Order, int]]
) -> None:
    """Reduce in place (same price, less qty) or re-queue through matching."""
    _, oid, price, lots, stp, book = op
    order = book.index.get(oid)
    if order is None:
        return
    price = price or order.price
    lots = lots or order.remaining
    if price == order.price and lots < order.remaining:
        book.reduce(order, lots)
        return
    if price == order.price and lots == order.remaining:
        return
    book.remove(order)
    remaining, stopped = match(
        book, order.is_buy, order.account, price, lots, stp, fills, expired
    )
    if remaining and not stopped:
        book.add(Order(oid, order.account, order.is_buy, price, remaining, _NO_SPEC))
