"""A naive reference exchange: plain lists scanned linearly, same rules as the core.

It exists only to be obviously right. Every open order sits in one list per
market; the best maker is found by scanning the whole list each time; time
priority is an arrival counter. It implements what the core promises (price-time
priority at the maker's price, GTC/IOC/FOK, post-only, STP, amend priority rules,
cancel / cancel-all, client ids, stop and take-profit triggers on the last trade
price) and reports outcomes as plain tuples, so a differential test can compare
it with `ExchangeCore` event for event.

Shape checks (tick, lot, ranges, flags) are reproduced too, one problem at a
time: a command with several problems may legitimately be refused for any of
them, so the stream generators never make one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from exchange.codes import RejectCode
from exchange.messages import AmendOrder, CancelAll, CancelOrder, Command, PlaceOrder

if TYPE_CHECKING:
    from exchange.markets import Market

Outcome = tuple[Any, ...]

_STOP_TYPES = {"stop_market", "stop_limit"}
_MARKET_TYPES = {"market", "stop_market", "take_profit_market"}
_PRICED_TYPES = {"limit", "stop_limit", "take_profit_limit"}
_TRIGGERED_TYPES = {
    "stop_market",
    "stop_limit",
    "take_profit_market",
    "take_profit_limit",
}
MAX_CLIENT_ORDER_ID = 36


@dataclass
class NaiveOrder:
    """One open order: identity, what it asked for, and what is still open."""

    order_id: int
    account: str
    symbol: str
    is_buy: bool
    type: str
    price: int  # ticks; 0 for market types
    remaining: int  # lots
    tif: str
    post_only: bool
    stp: str
    client_order_id: str
    trigger: int  # ticks; 0 for plain orders
    time: int = 0  # arrival counter: lower is earlier
    pending: bool = False  # waiting for its trigger


class NaiveMarket:
    """One symbol: every open order in one list, and the last trade price."""

    def __init__(self, market: Market) -> None:
        """Start with nothing open and no trade yet."""
        self.market = market
        self.orders: list[NaiveOrder] = []
        self.last_price: int | None = None

    def resting(self, is_buy: bool) -> list[NaiveOrder]:
        """Return one side's resting orders by priority (best price, then time)."""
        side = [o for o in self.orders if not o.pending and o.is_buy == is_buy]
        if is_buy:
            return sorted(side, key=lambda o: (-o.price, o.time))
        return sorted(side, key=lambda o: (o.price, o.time))


class NaiveExchange:
    """The reference: apply a command, get its outcomes as tuples."""

    def __init__(self, markets: list[Market]) -> None:
        """Create empty markets."""
        self.markets = {m.symbol: NaiveMarket(m) for m in markets}
        self.next_id = 1
        self.clock = 0
        self.trades = 0

    # ------------------------------------------------------------ queries

    def open_orders(self) -> list[NaiveOrder]:
        """Return every open order of every market (resting and pending)."""
        return [o for m in self.markets.values() for o in m.orders]

    def book(self, symbol: str, is_buy: bool) -> list[tuple[int, int, int]]:
        """Return one side as (order id, price, open qty) in priority order."""
        return [
            (o.order_id, o.price, o.remaining)
            for o in self.markets[symbol].resting(is_buy)
        ]

    def pending_ids(self, symbol: str) -> list[int]:
        """Return the ids of untriggered orders, sorted."""
        return sorted(o.order_id for o in self.markets[symbol].orders if o.pending)

    def level_qty(self, symbol: str, is_buy: bool, price: int) -> int:
        """Return the open lots at one price level."""
        return sum(
            o.remaining
            for o in self.markets[symbol].resting(is_buy)
            if o.price == price
        )

    # ------------------------------------------------------------ commands

    def apply(self, cmd: Command) -> list[Outcome]:
        """Apply one command and return its outcomes, in order."""
        out: list[Outcome] = []
        if isinstance(cmd, PlaceOrder):
            self._place(cmd, out)
        elif isinstance(cmd, CancelOrder):
            order = self._find(cmd.account, cmd.order_id, cmd.client_order_id)
            if order is None:
                out.append(("rej", RejectCode.UNKNOWN_ORDER))
            else:
                self._remove(order)
                out.append(("cxl", order.order_id, order.remaining, "user"))
        elif isinstance(cmd, AmendOrder):
            self._amend(cmd, out)
        elif isinstance(cmd, CancelAll):
            if cmd.symbol and cmd.symbol not in self.markets:
                out.append(("rej", RejectCode.UNKNOWN_SYMBOL))
                return out
            doomed = [
                o
                for o in self.open_orders()
                if o.account == cmd.account
                and (not cmd.symbol or o.symbol == cmd.symbol)
            ]
            for order in sorted(doomed, key=lambda o: o.order_id):
                self._remove(order)
                out.append(("cxl", order.order_id, order.remaining, "cancel_all"))
            out.append(("all", len(doomed)))
        return out

    def _place(self, cmd: PlaceOrder, out: list[Outcome]) -> None:  # noqa: PLR0911 -- one return per refusal
        """Refuse or accept a new order, then run it (or park it)."""
        m = self.markets.get(cmd.symbol)
        if m is None:
            out.append(("rej", RejectCode.UNKNOWN_SYMBOL))
            return
        spec = m.market
        refusal = _check_shape(spec, cmd)
        if refusal is not None:
            out.append(("rej", refusal))
            return
        order = NaiveOrder(
            order_id=0,
            account=cmd.account,
            symbol=cmd.symbol,
            is_buy=cmd.side == "buy",
            type=cmd.type,
            price=cmd.price // spec.tick_size,
            remaining=cmd.qty // spec.lot_size,
            tif=cmd.tif,
            post_only=cmd.post_only,
            stp=cmd.stp,
            client_order_id=cmd.client_order_id,
            trigger=cmd.trigger_price // spec.tick_size,
        )
        if cmd.client_order_id and any(
            o.account == cmd.account and o.client_order_id == cmd.client_order_id
            for o in self.open_orders()
        ):
            out.append(("rej", RejectCode.DUPLICATE_CLIENT_ORDER_ID))
            return
        if order.trigger:
            if m.last_price is not None and _reached(order, m.last_price):
                out.append(("rej", RejectCode.WOULD_TRIGGER_IMMEDIATELY))
                return
        elif order.post_only and self._would_take(m, order):
            out.append(("rej", RejectCode.POST_ONLY_WOULD_TAKE))
            return
        elif order.tif == "FOK" and not self._can_fill(m, order):
            out.append(("rej", RejectCode.FOK_NOT_FILLED))
            return
        order.order_id = self.next_id
        self.next_id += 1
        out.append(("acc", order.order_id))
        if order.trigger:
            order.pending = True
            order.time = self._tick()
            m.orders.append(order)
            return
        self._execute(m, order, out)
        self._fire(m, out)

    def _amend(self, cmd: AmendOrder, out: list[Outcome]) -> None:
        """Change a resting order's price / open quantity under the priority rules."""
        order = self._find(cmd.account, cmd.order_id, cmd.client_order_id)
        if order is None:
            out.append(("rej", RejectCode.UNKNOWN_ORDER))
            return
        m = self.markets[order.symbol]
        if order.pending:
            out.append(("rej", RejectCode.NOT_AMENDABLE))
            return
        refusal = None
        if cmd.qty:
            refusal = _check_qty(m.market, cmd.qty)
        if cmd.price and refusal is None:
            refusal = _check_price(m.market, cmd.price)
        if refusal is not None:
            out.append(("rej", refusal))
            return
        price = cmd.price // m.market.tick_size if cmd.price else order.price
        qty = cmd.qty // m.market.lot_size if cmd.qty else order.remaining
        if (price, qty) == (order.price, order.remaining):
            out.append(("rej", RejectCode.AMEND_NO_CHANGE))
            return
        if order.post_only and price != order.price:
            probe = NaiveOrder(**{**order.__dict__, "price": price})
            if self._would_take(m, probe):
                out.append(("rej", RejectCode.POST_ONLY_WOULD_TAKE))
                return
        if price == order.price and qty < order.remaining:
            order.remaining = qty
            out.append(("amd", order.order_id, price, qty, False))
            return
        m.orders.remove(order)
        out.append(("amd", order.order_id, price, qty, True))
        order.price, order.remaining = price, qty
        self._execute(m, order, out)
        self._fire(m, out)

    # ------------------------------------------------------------ matching

    def _makers(self, m: NaiveMarket, taker: NaiveOrder) -> list[NaiveOrder]:
        """Return the opposite orders the taker's limit reaches, in priority order."""
        makers = m.resting(not taker.is_buy)
        if taker.type in _MARKET_TYPES:
            return makers
        if taker.is_buy:
            return [o for o in makers if o.price <= taker.price]
        return [o for o in makers if o.price >= taker.price]

    def _would_take(self, m: NaiveMarket, order: NaiveOrder) -> bool:
        """Return True if a limit order would trade on arrival."""
        return bool(self._makers(m, order))

    def _can_fill(self, m: NaiveMarket, taker: NaiveOrder) -> bool:
        """Return True if the taker would fill whole (its STP mode considered)."""
        need = taker.remaining
        for maker in self._makers(m, taker):
            if taker.stp != "none" and maker.account == taker.account:
                if taker.stp != "expire_maker":
                    return False
                continue
            need -= maker.remaining
            if need <= 0:
                return True
        return False

    def _execute(self, m: NaiveMarket, taker: NaiveOrder, out: list[Outcome]) -> None:
        """Match the taker, then rest or expire what is left."""
        fills: list[Outcome] = []
        stp_expired: list[Outcome] = []
        stopped = False
        while taker.remaining:
            makers = self._makers(m, taker)
            if not makers:
                break
            maker = makers[0]
            if taker.stp != "none" and maker.account == taker.account:
                if taker.stp != "expire_taker":
                    m.orders.remove(maker)
                    stp_expired.append(
                        ("exp", maker.order_id, maker.remaining, "stp_maker")
                    )
                if taker.stp != "expire_maker":
                    stopped = True
                    break
                continue
            qty = min(taker.remaining, maker.remaining)
            fills.append(("fill", taker.order_id, maker.order_id, maker.price, qty))
            self.trades += 1
            taker.remaining -= qty
            maker.remaining -= qty
            if not maker.remaining:
                m.orders.remove(maker)
            m.last_price = maker.price
        out += fills
        out += stp_expired
        if not taker.remaining:
            return
        if stopped or taker.type in _MARKET_TYPES or taker.tif != "GTC":
            reason = "stp_taker" if stopped else "ioc"
            out.append(("exp", taker.order_id, taker.remaining, reason))
            return
        taker.time = self._tick()
        m.orders.append(taker)
        out.append(("rest", taker.order_id, taker.price, taker.remaining))

    def _fire(self, m: NaiveMarket, out: list[Outcome]) -> None:
        """Run triggered orders one at a time until none is reached."""
        while m.last_price is not None:
            last = m.last_price
            pending = [o for o in m.orders if o.pending]
            rising = [o for o in pending if _rising(o) and last >= o.trigger]
            falling = [o for o in pending if not _rising(o) and last <= o.trigger]
            if rising:
                order = min(rising, key=lambda o: (o.trigger, o.time))
            elif falling:
                order = min(falling, key=lambda o: (-o.trigger, o.time))
            else:
                return
            m.orders.remove(order)
            order.pending = False
            out.append(("trig", order.order_id, order.trigger, last))
            if order.post_only and self._would_take(m, order):
                out.append(("exp", order.order_id, order.remaining, "post_only"))
            elif order.tif == "FOK" and not self._can_fill(m, order):
                out.append(("exp", order.order_id, order.remaining, "fok"))
            else:
                self._execute(m, order, out)

    # ------------------------------------------------------------ helpers

    def _find(
        self, account: str, order_id: int, client_order_id: str
    ) -> NaiveOrder | None:
        """Return the account's open order by id, else by client id."""
        for o in self.open_orders():
            if o.account != account:
                continue
            if order_id and o.order_id == order_id:
                return o
            if (
                not order_id
                and client_order_id
                and o.client_order_id == client_order_id
            ):
                return o
        return None

    def _remove(self, order: NaiveOrder) -> None:
        """Take an open order out of its market."""
        self.markets[order.symbol].orders.remove(order)

    def _tick(self) -> int:
        """Return the next arrival time."""
        self.clock += 1
        return self.clock


def _rising(order: NaiveOrder) -> bool:
    """Return True if the order fires when the price rises to its trigger."""
    return order.is_buy == (order.type in _STOP_TYPES)


def _reached(order: NaiveOrder, price: int) -> bool:
    """Return True if ``price`` is at or past the order's trigger."""
    return price >= order.trigger if _rising(order) else price <= order.trigger


def _check_qty(market: Market, qty: int) -> RejectCode | None:
    """Return why an E8 quantity is refused, if it is."""
    if qty <= 0:
        return RejectCode.INVALID_QUANTITY
    if qty % market.lot_size:
        return RejectCode.OFF_LOT
    if not market.min_qty <= qty <= market.max_qty:
        return RejectCode.QTY_OUT_OF_RANGE
    return None


def _check_price(market: Market, price: int) -> RejectCode | None:
    """Return why an E8 price (or trigger) is refused, if it is."""
    if price <= 0:
        return RejectCode.INVALID_PRICE
    if price % market.tick_size:
        return RejectCode.OFF_TICK
    if not market.min_price <= price <= market.max_price:
        return RejectCode.PRICE_OUT_OF_RANGE
    return None


def _check_shape(  # noqa: C901, PLR0911 -- one branch per rule, read as a table
    market: Market, cmd: PlaceOrder
) -> RejectCode | None:
    """Return why a new order's shape is refused, if it is."""
    if not cmd.account:
        return RejectCode.INVALID_ACCOUNT
    if len(cmd.client_order_id) > MAX_CLIENT_ORDER_ID:
        return RejectCode.INVALID_CLIENT_ORDER_ID
    refusal = _check_qty(market, cmd.qty)
    if refusal is not None:
        return refusal
    priced = cmd.type in _PRICED_TYPES
    if priced:
        if not cmd.price:
            return RejectCode.PRICE_REQUIRED
        refusal = _check_price(market, cmd.price)
        if refusal is not None:
            return refusal
    elif cmd.price:
        return RejectCode.PRICE_NOT_ALLOWED
    if cmd.type in _TRIGGERED_TYPES:
        if not cmd.trigger_price:
            return RejectCode.TRIGGER_REQUIRED
        refusal = _check_price(market, cmd.trigger_price)
        if refusal is not None:
            return refusal
    elif cmd.trigger_price:
        return RejectCode.TRIGGER_NOT_ALLOWED
    if cmd.post_only and (not priced or cmd.tif != "GTC"):
        return RejectCode.INVALID_FLAGS
    return None
