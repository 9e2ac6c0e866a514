"""Order checks: every reason a new order or an amend is refused before it acts.

Each check returns a `Refusal` (a code and a human reason) or the converted
values; none of them mutates anything, so the core can refuse without having
changed state ("check, then mutate").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from exchange.codes import RejectCode
from exchange.units import e8_str

if TYPE_CHECKING:
    from exchange.markets import Market
    from exchange.messages import PlaceOrder

__all__ = ["MAX_CLIENT_ORDER_ID", "Refusal", "check_order", "to_lots", "to_ticks"]

MAX_CLIENT_ORDER_ID = 36  # Binance's limit for newClientOrderId
_PRICED_TYPES = frozenset({"limit", "stop_limit", "take_profit_limit"})
_TRIGGERED_TYPES = frozenset(
    {"stop_market", "stop_limit", "take_profit_market", "take_profit_limit"}
)


class Refusal:
    """Why a command is refused: a stable code and a reason a human can act on."""

    __slots__ = ("code", "reason")

    def __init__(self, code: RejectCode, reason: str) -> None:
        """Keep the code and the reason."""
        self.code = code
        self.reason = reason


# A new order's (price ticks, quantity lots, trigger ticks); 0 = none. A plain
# tuple: it is built for every order, and a NamedTuple costs several times more.
Converted = tuple[int, int, int]


def to_lots(market: Market, qty_e8: int) -> int | Refusal:
    """Return a positive in-range E8 quantity in lots, or why it is refused."""
    if qty_e8 <= 0:
        return Refusal(RejectCode.INVALID_QUANTITY, "quantity must be positive")
    lots, rest = divmod(qty_e8, market.lot_size)
    if rest:
        return Refusal(
            RejectCode.OFF_LOT,
            f"quantity {e8_str(qty_e8)} is not a multiple of the lot size "
            f"{e8_str(market.lot_size)}",
        )
    if not market.min_qty <= qty_e8 <= market.max_qty:
        return Refusal(
            RejectCode.QTY_OUT_OF_RANGE,
            f"quantity {e8_str(qty_e8)} is outside [{e8_str(market.min_qty)}, "
            f"{e8_str(market.max_qty)}]",
        )
    return lots


def to_ticks(market: Market, price_e8: int, what: str = "price") -> int | Refusal:
    """Return a positive in-range E8 price in ticks, or why it is refused."""
    if price_e8 <= 0:
        return Refusal(RejectCode.INVALID_PRICE, f"{what} must be positive")
    ticks, rest = divmod(price_e8, market.tick_size)
    if rest:
        return Refusal(
            RejectCode.OFF_TICK,
            f"{what} {e8_str(price_e8)} is not a multiple of the tick size "
            f"{e8_str(market.tick_size)}",
        )
    if not market.min_price <= price_e8 <= market.max_price:
        return Refusal(
            RejectCode.PRICE_OUT_OF_RANGE,
            f"{what} {e8_str(price_e8)} is outside [{e8_str(market.min_price)}, "
            f"{e8_str(market.max_price)}]",
        )
    return ticks


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
