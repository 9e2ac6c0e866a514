"""Wire commands to core commands: decimals to E8, the account from the topic.

`to_command` is where a decoded wire command meets the core's types. It
refuses, with the core's own codes and wording, everything it can judge from
the static market table: unknown symbols, more than 8 decimals, and for a new
order every rule of `exchange.engine.validation.check_order` (off-tick,
off-lot, out of range, missing or extra price or trigger, contradictory
flags). What depends on the exchange's state (margin, open orders, an
amend's grid, which needs the order's market) the core judges and journals.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import assert_never

from exchange import messages as core
from exchange.codes import Refusal, RejectCode
from exchange.engine.validation import check_order
from exchange.gateway import wire
from exchange.markets import Market
from exchange.units import checked_e8

__all__ = ["to_command"]


def to_command(  # noqa: PLR0911 -- one return per kind of command
    account: str, request: wire.BatchItem, markets: Mapping[str, Market]
) -> core.UserCommand | Refusal:
    """Return the core command of a wire command, acting for ``account``.

    ``account`` is the authenticated one (the topic's); the wire never names
    another, so a command can only act for its sender.
    """
    match request:
        case wire.NewOrder():
            return _place(account, request, markets)
        case wire.CancelOrder():
            if not request.order_id and not request.cid:
                return _malformed("cancel needs order_id or cid")
            return core.CancelOrder(
                account=account, order_id=request.order_id, client_order_id=request.cid
            )
        case wire.AmendOrder():
            return _amend(account, request)
        case wire.CancelAll():
            if request.symbol and request.symbol not in markets:
                return _unknown_symbol(request.symbol)
            return core.CancelAll(account=account, symbol=request.symbol)
        case wire.SetLeverage() | wire.SetMarginMode() | wire.AdjustMargin():
            if request.symbol not in markets:
                return _unknown_symbol(request.symbol)
            return _setting(account, request)
        case _:
            assert_never(request)


def _setting(
    account: str, request: wire.SetLeverage | wire.SetMarginMode | wire.AdjustMargin
) -> core.UserCommand | Refusal:
    """Return a per-symbol account setting (the symbol is known)."""
    match request:
        case wire.SetLeverage():
            return core.SetLeverage(
                account=account, symbol=request.symbol, leverage=request.leverage
            )
        case wire.SetMarginMode():
            return core.SetMarginMode(
                account=account, symbol=request.symbol, mode=request.mode
            )
        case wire.AdjustMargin():
            amount = checked_e8("amount", request.amount)
            if isinstance(amount, Refusal):
                return amount
            return core.AdjustMargin(
                account=account, symbol=request.symbol, amount=amount
            )
        case _:
            assert_never(request)


def _place(
    account: str, request: wire.NewOrder, markets: Mapping[str, Market]
) -> core.PlaceOrder | Refusal:
    """Return a new order as a `PlaceOrder` its market's rules accept."""
    market = markets.get(request.symbol)
    if market is None:
        return _unknown_symbol(request.symbol)
    values = _e8_fields(
        ("qty", request.qty),
        ("price", request.price),
        ("trigger_price", request.trigger_price),
    )
    if isinstance(values, Refusal):
        return values
    qty, price, trigger_price = values
    command = core.PlaceOrder(
        account=account,
        symbol=request.symbol,
        side=request.side,
        type=request.type,
        qty=qty,
        price=price,
        tif=request.tif,
        post_only=request.post_only,
        reduce_only=request.reduce_only,
        trigger_price=trigger_price,
        stp=request.stp,
        client_order_id=request.cid,
        trigger_by=request.trigger_by,
    )
    checked = check_order(market, command)
    return checked if isinstance(checked, Refusal) else command


def _amend(account: str, request: wire.AmendOrder) -> core.AmendOrder | Refusal:
    """Return an amend in E8 (its grid is the core's to check: see the module)."""
    if not request.order_id and not request.cid:
        return _malformed("amend needs order_id or cid")
    values = _e8_fields(("qty", request.qty), ("price", request.price))
    if isinstance(values, Refusal):
        return values
    qty, price = values
    return core.AmendOrder(
        account=account,
        order_id=request.order_id,
        client_order_id=request.cid,
        qty=qty,
        price=price,
    )


def _e8_fields(*fields: tuple[str, Decimal | None]) -> list[int] | Refusal:
    """Return optional decimals as E8 ints (None -> 0), or the first refusal."""
    values: list[int] = []
    for name, value in fields:
        if value is None:
            values.append(0)
            continue
        scaled = checked_e8(name, value)
        if isinstance(scaled, Refusal):
            return scaled
        values.append(scaled)
    return values


def _unknown_symbol(symbol: str) -> Refusal:
    """Refuse a symbol no market trades, in the core's words."""
    return Refusal(RejectCode.UNKNOWN_SYMBOL, f"unknown symbol {symbol!r}")


def _malformed(reason: str) -> Refusal:
    """Refuse a request that cannot mean anything."""
    return Refusal(RejectCode.MALFORMED, reason)
