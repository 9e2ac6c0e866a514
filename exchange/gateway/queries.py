"""Queries: a bot's reads of its balance, positions, open orders and a book.

Queries never reach the core or the journal. The book comes from the
published L2 book (it matches the deltas already sent); orders from the
published order views; balances and positions from the ledger's applied
state, which may include records still waiting for durability (their acks
have not left yet).
"""

from __future__ import annotations

from typing import assert_never

import msgspec

from exchange.codes import Refusal, RejectCode
from exchange.core import ExchangeCore
from exchange.gateway import answers as out
from exchange.gateway import wire
from exchange.gateway.publish import Publisher
from exchange.shell.account_views import balance_view, position_views

__all__ = ["answer_query"]


def answer_query(
    core: ExchangeCore, publisher: Publisher, account: str, query: wire.Query
) -> out.Answer | Refusal:
    """Return the answer to ``account``'s query, or why it is refused."""
    seq = core.last_seq
    symbol = (
        query.symbol if isinstance(query, wire.GetBook | wire.GetOpenOrders) else ""
    )
    if (symbol or isinstance(query, wire.GetBook)) and symbol not in publisher.books:
        return Refusal(RejectCode.UNKNOWN_SYMBOL, f"unknown symbol {symbol!r}")
    match query:
        case wire.GetBook():
            return publisher.snapshot(query.symbol, query.depth, seq, query.id)
        case wire.GetOpenOrders():
            rows = publisher.orders.open_rows(
                account,
                query.symbol,
                lambda view: (
                    core.markets[view.spec.symbol].parked_in(view.spec.order_id)
                    is not None
                ),
            )
            orders = msgspec.convert(rows, list[out.OpenOrder], from_attributes=True)
            return out.OpenOrdersInfo(id=query.id, seq=seq, orders=orders)
        case wire.GetBalance() | wire.GetPositions():
            ledger = core.ledger
            if ledger is None:
                return Refusal(
                    RejectCode.MARGIN_DISABLED,
                    "this exchange runs without margin accounts",
                )
            if isinstance(query, wire.GetBalance):
                return out.BalanceInfo(
                    id=query.id, seq=seq, **balance_view(ledger, account)
                )
            positions = msgspec.convert(
                position_views(ledger, account), list[out.PositionInfo]
            )
            return out.PositionsInfo(id=query.id, seq=seq, positions=positions)
        case _:
            assert_never(query)
