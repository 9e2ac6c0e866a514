"""ccxt-style order arguments to the wire's `NewOrder` / `AmendOrder` fields.

``create_order(symbol, type, side, amount, price=None, params={})``: ``type``
is ccxt's ``limit`` / ``market`` (or a paperx type such as ``stop_limit``);
``params`` takes ``reduceOnly``, ``postOnly``, ``timeInForce`` (GTC, IOC,
FOK, or PO for post-only), ``triggerPrice`` (alias ``stopPrice``: makes a
stop order), ``takeProfitPrice`` (a take-profit order), ``triggerBy``
(``last`` or ``mark``), ``clientOrderId`` and ``selfTradePrevention``
(none, expire_taker, expire_maker, expire_both; any case). An unknown key
is a `TypeError`, so that a typo never silently changes an order.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, get_args

from clients.sdk._shapes import as_decimal, paperx_symbol
from exchange.messages import OrderType, SelfTradePrevention, TimeInForce, TriggerSource

__all__ = ["Number", "order_fields"]

Number = Decimal | str | int | float

_ORDER_PARAMS = frozenset(
    {
        "reduceOnly",
        "postOnly",
        "timeInForce",
        "triggerPrice",
        "stopPrice",
        "takeProfitPrice",
        "triggerBy",
        "clientOrderId",
        "selfTradePrevention",
    }
)


def order_fields(
    symbol: str,
    type_: str,
    side: str,
    amount: Number,
    price: Number | None,
    params: Mapping[str, Any],
) -> dict[str, Any]:
    """Return the `NewOrder` fields (but id, ts_ms and cid) of a ccxt order call.

    Raises:
        TypeError: an unknown key in ``params``, or a value of the wrong type.
        ValueError: a value no order can have (an unknown type or side).
    """
    unknown = set(params) - _ORDER_PARAMS
    if unknown:
        msg = f"unknown order params: {sorted(unknown)}"
        raise TypeError(msg)
    if side not in ("buy", "sell"):
        msg = f"side must be buy or sell, not {side!r}"
        raise ValueError(msg)
    tif = str(params.get("timeInForce", "GTC")).upper()
    post_only = bool(params.get("postOnly", False)) or tif == "PO"
    if tif == "PO":
        tif = "GTC"
    if tif not in get_args(TimeInForce):
        msg = f"timeInForce {tif!r} is not one of GTC, IOC, FOK, PO"
        raise ValueError(msg)
    trigger = params.get("triggerPrice", params.get("stopPrice"))
    take_profit = params.get("takeProfitPrice")
    kind = _order_type(type_, trigger is not None, take_profit is not None)
    trigger = take_profit if take_profit is not None else trigger
    stp = str(params.get("selfTradePrevention", "none")).lower()
    if stp not in get_args(SelfTradePrevention):
        msg = (
            f"selfTradePrevention {stp!r} is not one of {get_args(SelfTradePrevention)}"
        )
        raise ValueError(msg)
    trigger_by = str(params.get("triggerBy", "last")).lower()
    if trigger_by not in get_args(TriggerSource):
        msg = f"triggerBy {trigger_by!r} is not last or mark"
        raise ValueError(msg)
    return {
        "symbol": paperx_symbol(symbol),
        "side": side,
        "type": kind,
        "qty": as_decimal(amount, "amount"),
        "price": None if price is None else as_decimal(price, "price"),
        "tif": tif,
        "post_only": post_only,
        "reduce_only": bool(params.get("reduceOnly", False)),
        "trigger_price": None if trigger is None else as_decimal(trigger, "trigger"),
        "trigger_by": trigger_by,
        "stp": stp,
    }


def _order_type(type_: str, stop: bool, take_profit: bool) -> str:
    """Return the paperx order type of ccxt's type and trigger params."""
    if type_ in get_args(OrderType) and type_ not in ("limit", "market"):
        return type_
    if type_ not in ("limit", "market"):
        msg = f"order type {type_!r} is not limit, market or a paperx type"
        raise ValueError(msg)
    if take_profit:
        return f"take_profit_{type_}"
    if stop:
        return f"stop_{type_}"
    return type_
