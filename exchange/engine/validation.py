"""Order checks: every reason a new order or an amend is refused before it acts.

Each check returns a `Refusal` (a code and a human reason) or the converted
values; none of them mutates anything, so the core can refuse without having
changed state ("check, then mutate").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from exchange.codes import Refusal, RejectCode
from exchange.units import e8_str

if TYPE_CHECKING:
    from exchange.markets import Market
    from exchange.messages import PlaceOrder

__all__ = ["MAX_CLIENT_ORDER_ID", "check_order", "to_lots", "to_ticks"]

MAX_CLIENT_ORDER_ID = 36  # Binance's limit for newClientOrderId
_PRICED_TYPES = frozenset({"limit", "stop_limit", "take_profit_limit"})
_TRIGGERED_TYPES = frozenset(
    {"stop_market", "stop_limit", "take_profit_market", "take_profit_limit"}
)


# A new order's (price ticks, quantity lots, trigger ticks); 0 = none. A plain
# tuple: it is built for every order, and a NamedTuple costs several times more.
Converted = tuple[int, int, int]


def to_lots(market: Market, qty_e8: int) -> int | Refusal:
    """Return a positive in-range E8 quantity in lots, or why it is refused."""
    return _on_grid(
        qty_e8,
        market.lot_size,
        market.min_qty,
        market.max_qty,
        "quantity",
        "lot",
        (RejectCode.INVALID_QUANTITY, RejectCode.OFF_LOT, RejectCode.QTY_OUT_OF_RANGE),
    )


def to_ticks(market: Market, price_e8: int, what: str = "price") -> int | Refusal:
    """Return a positive in-range E8 price in ticks, or why it is refused."""
    return _on_grid(
        price_e8,
        market.tick_size,
        market.min_price,
        market.max_price,
        what,
        "tick",
        (RejectCode.INVALID_PRICE, RejectCode.OFF_TICK, RejectCode.PRICE_OUT_OF_RANGE),
    )


def _on_grid(
    value: int,
    step: int,
    low: int,
    high: int,
    what: str,
    step_name: str,
    codes: tuple[RejectCode, RejectCode, RejectCode],
) -> int | Refusal:
    """Return ``value`` (E8) in steps if positive, on the grid and within limits."""
    not_positive, off_grid, out_of_range = codes
    if value <= 0:
        return Refusal(not_positive, f"{what} must be positive")
    steps, rest = divmod(value, step)
    if rest:
        return Refusal(
            off_grid,
            f"{what} {e8_str(value)} is not a multiple of the {step_name} size "
            f"{e8_str(step)}",
        )
    if not low <= value <= high:
        return Refusal(
            out_of_range,
            f"{what} {e8_str(value)} is outside [{e8_str(low)}, {e8_str(high)}]",
        )
    return steps


def check_order(market: Market, cmd: PlaceOrder) -> Converted | Refusal:  # noqa: C901, PLR0911
    """Check a new order against its market; return it in ticks and lots.

    The common case (a valid limit or market order) costs two divmods and a few
    comparisons; the helpers that word a refusal run only when one is due.
    """
    if not cmd.account:
        return Refusal(RejectCode.INVALID_ACCOUNT, "account must not be empty")
    if len(cmd.client_order_id) > MAX_CLIENT_ORDER_ID:
        return Refusal(
            RejectCode.INVALID_CLIENT_ORDER_ID,
            f"client order id longer than {MAX_CLIENT_ORDER_ID} characters",
        )
    qty_e8 = cmd.qty
    lot = market.lot_size
    if qty_e8 % lot or not market.min_qty <= qty_e8 <= market.max_qty:
        return to_lots(market, qty_e8)  # type: ignore[return-value]  # a Refusal
    price = 0
    price_e8 = cmd.price
    if cmd.type in _PRICED_TYPES:
        if not price_e8:
            return Refusal(
                RejectCode.PRICE_REQUIRED, f"a {cmd.type} order needs a price"
            )
        tick = market.tick_size
        if price_e8 % tick or not market.min_price <= price_e8 <= market.max_price:
            return to_ticks(market, price_e8)  # type: ignore[return-value]
        price = price_e8 // tick
    elif price_e8:
        return Refusal(
            RejectCode.PRICE_NOT_ALLOWED, f"a {cmd.type} order takes no price"
        )
    trigger = 0
    if cmd.trigger_price or cmd.type in _TRIGGERED_TYPES:
        checked = _check_trigger(market, cmd)
        if isinstance(checked, Refusal):
            return checked
        trigger = checked
    if cmd.post_only and (price == 0 or cmd.tif != "GTC"):
        return Refusal(
            RejectCode.INVALID_FLAGS,
            "post-only needs a priced order with time in force GTC",
        )
    return price, qty_e8 // lot, trigger


def _check_trigger(market: Market, cmd: PlaceOrder) -> int | Refusal:
    """Return the trigger price in ticks, or why it is refused."""
    if cmd.type not in _TRIGGERED_TYPES:
        return Refusal(
            RejectCode.TRIGGER_NOT_ALLOWED, f"a {cmd.type} order takes no trigger price"
        )
    if not cmd.trigger_price:
        return Refusal(
            RejectCode.TRIGGER_REQUIRED, f"a {cmd.type} order needs a trigger price"
        )
    return to_ticks(market, cmd.trigger_price, "trigger price")
