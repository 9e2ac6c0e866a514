"""Random command streams: small-integer "steps" read as commands against live state.

A step is a tuple of small ints (easy for hypothesis to draw and shrink, or for
`random.Random` to produce). `to_command` reads it against the current state of
an exchange (its open orders and last prices) so cancels and amends mostly name
real orders, sometimes another account's or no order at all. The same
interpreter feeds the property tests (core only) and the differential test
(core and naive reference).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple, Protocol

from hypothesis import strategies as st

from exchange.markets import Market
from exchange.messages import AmendOrder, CancelAll, CancelOrder, Command, PlaceOrder

if TYPE_CHECKING:
    import random

# X: tick 1, lot 1. Q: tick 0.5, lot 0.01, so E8 <-> ticks/lots conversion matters.
STREAM_MARKETS = (
    Market.from_decimals(
        "X", tick_size="1", lot_size="1", max_price="100000", max_qty="100000"
    ),
    Market.from_decimals(
        "Q", tick_size="0.5", lot_size="0.01", max_price="100000", max_qty="1000"
    ),
)
_BY_SYMBOL = {m.symbol: m for m in STREAM_MARKETS}
SYMBOLS = ("X", "Q")
ACCOUNTS = ("a", "b", "c", "d")
MID = 200  # ticks, before the first trade
# The `Step.bad` value that makes a command malformed: mid-range, so neither the
# all-zero stream hypothesis tries first nor a shrunk one is all malformed.
MALFORMED = 13
_TRIGGERED = ("stop_market", "stop_limit", "take_profit_market", "take_profit_limit")
_STPS = (
    "none",
    "none",
    "none",
    "none",
    "expire_taker",
    "expire_maker",
    "expire_both",
    "none",
)


class Step(NamedTuple):
    """One random step; every field is a small int read by `to_command`."""

    kind: int  # 0..99: what to do
    acct: int  # 0..3
    sym: int  # 0..1
    side: int  # 0..1
    typ: int  # 0..9
    qty: int  # 1..12 lots
    off: int  # -12..12 ticks from the mid
    tif: int  # 0..9
    flag: int  # 0..9
    stp: int  # 0..7
    cid: int  # 0..9
    toff: int  # 1..10 ticks between last price and trigger
    ref: int  # 0..999: which order / which variant
    bad: int  # 0..19: MALFORMED makes the command malformed (when allowed)


STEP_BOUNDS = (
    (0, 99),
    (0, 3),
    (0, 1),
    (0, 1),
    (0, 9),
    (1, 12),
    (-12, 12),
    (0, 9),
    (0, 9),
    (0, 7),
    (0, 9),
    (1, 10),
    (0, 999),
    (0, 19),
)


def steps_strategy(min_size: int, max_size: int) -> st.SearchStrategy[list[Step]]:
    """Return a hypothesis strategy for a list of steps."""
    step = st.builds(Step, *(st.integers(lo, hi) for lo, hi in STEP_BOUNDS))
    return st.lists(step, min_size=min_size, max_size=max_size)


def random_steps(rng: random.Random, n: int) -> list[Step]:
    """Return ``n`` steps drawn from a seeded generator."""
    return [Step(*(rng.randint(lo, hi) for lo, hi in STEP_BOUNDS)) for _ in range(n)]


@dataclass(frozen=True)
class OpenOrder:
    """What a stream needs to know of an open order to cancel or amend it."""

    order_id: int
    account: str
    client_order_id: str
    symbol: str
    price: int  # ticks (0 for untriggered market types)
    remaining: int  # lots
    pending: bool


class View(Protocol):
    """The state a stream reads: open orders (by id) and last trade prices."""

    def open_orders(self) -> list[OpenOrder]:
        """Return every open order, sorted by id."""
        ...

    def last_price(self, symbol: str) -> int | None:
        """Return the market's last trade price in ticks, if any."""
        ...


class CoreView:
    """A `View` of an `ExchangeCore` driven by a test `Harness`."""

    def __init__(self, harness: object) -> None:
        """Wrap a harness (anything with ``open_orders`` and ``last_price``)."""
        self.harness = harness

    def open_orders(self) -> list[OpenOrder]:
        """Return the core's open orders, sorted by id."""
        return [OpenOrder(*row) for row in self.harness.open_orders()]  # type: ignore[attr-defined]

    def last_price(self, symbol: str) -> int | None:
        """Return the core's last trade price of a market."""
        return self.harness.last_price(symbol)  # type: ignore[attr-defined]


class NaiveView:
    """A `View` of the naive reference exchange."""

    def __init__(self, naive: object) -> None:
        """Wrap a `NaiveExchange`."""
        self.naive = naive

    def open_orders(self) -> list[OpenOrder]:
        """Return the reference's open orders, sorted by id."""
        return sorted(
            (
                OpenOrder(
                    o.order_id,
                    o.account,
                    o.client_order_id,
                    o.symbol,
                    o.price,
                    o.remaining,
                    o.pending,
                )
                for o in self.naive.open_orders()
            ),  # type: ignore[attr-defined]
            key=lambda o: o.order_id,
        )

    def last_price(self, symbol: str) -> int | None:
        """Return the reference's last trade price of a market."""
        return self.naive.markets[symbol].last_price  # type: ignore[attr-defined]


def to_command(step: Step, view: View, *, allow_invalid: bool = True) -> Command:
    """Turn one step into a command, reading the current state through ``view``."""
    if step.kind < 60 or step.kind >= 88:
        if allow_invalid and step.bad == MALFORMED:
            return _malformed(step)
        return _place(step, view)
    if step.kind < 72:
        target = _target(step, view)
        return CancelOrder(
            account=target[0], order_id=target[1], client_order_id=target[2]
        )
    if step.kind < 86:
        return _amend(step, view, allow_invalid=allow_invalid)
    symbol = ("", "X", "Q")[step.ref % 3] if step.ref % 17 else "NOPE"
    return CancelAll(account=ACCOUNTS[step.acct], symbol=symbol)


def _e8_price(symbol: str, ticks: int) -> int:
    """Return a price in ticks as E8 (any unknown symbol counts as tick 1)."""
    market = _BY_SYMBOL.get(symbol, STREAM_MARKETS[0])
    return ticks * market.tick_size


def _e8_qty(symbol: str, lots: int) -> int:
    """Return a quantity in lots as E8."""
    market = _BY_SYMBOL.get(symbol, STREAM_MARKETS[0])
    return lots * market.lot_size


def _place(step: Step, view: View) -> PlaceOrder:
    """Return a well-formed new order (it may still be refused by the book's state)."""
    symbol = SYMBOLS[step.sym]
    is_buy = step.side == 0
    mid = view.last_price(symbol) or MID
    tif = "GTC" if step.tif < 7 else ("IOC" if step.tif < 9 else "FOK")
    price = trigger = 0
    if step.typ < 6:
        order_type = "limit"
        price = max(1, mid + (-2 if is_buy else 2) + step.off)
    elif step.typ == 6:
        order_type = "market"
    else:
        order_type = _TRIGGERED[(step.typ + step.ref) % 4]
        rising = is_buy == order_type.startswith("stop")
        toward = step.toff if rising else -step.toff
        if step.ref % 5 == 0:  # on the wrong side: may be refused as already reached
            toward = -toward
        trigger = max(1, mid + toward)
        if order_type.endswith("limit"):
            price = max(1, trigger + step.off // 3)
    post_only = step.flag == 0 and tif == "GTC" and price > 0
    cid = f"c{step.ref % 8}" if step.cid >= 6 else ""
    return PlaceOrder(
        account=ACCOUNTS[step.acct],
        symbol=symbol,
        side="buy" if is_buy else "sell",
        type=order_type,
        qty=_e8_qty(symbol, step.qty),  # type: ignore[arg-type]
        price=_e8_price(symbol, price),
        tif=tif,
        post_only=post_only,  # type: ignore[arg-type]
        trigger_price=_e8_price(symbol, trigger),
        stp=_STPS[step.stp],  # type: ignore[arg-type]
        client_order_id=cid,
    )


def _malformed(step: Step) -> PlaceOrder:  # noqa: C901 -- one branch per defect
    """Return a plain limit order with exactly one thing wrong with it."""
    symbol = SYMBOLS[step.sym]
    fields: dict[str, object] = {
        "account": ACCOUNTS[step.acct],
        "symbol": symbol,
        "side": "buy" if step.side == 0 else "sell",
        "type": "limit",
        "qty": _e8_qty(symbol, step.qty),
        "price": _e8_price(symbol, MID + step.off),
    }
    variant = step.ref % 12
    if variant == 0:
        fields["price"] = int(fields["price"]) + 1  # type: ignore[call-overload]
    elif variant == 1:
        fields["qty"] = 0
    elif variant == 2:
        fields["qty"] = -int(fields["qty"])  # type: ignore[call-overload]
    elif variant == 3:
        fields["qty"] = int(fields["qty"]) + 1  # type: ignore[call-overload]
    elif variant == 4:
        fields["symbol"] = "NOPE"
    elif variant == 5:
        fields["account"] = ""
    elif variant == 6:
        fields["client_order_id"] = "x" * 37
    elif variant == 7:
        fields["post_only"], fields["tif"] = True, "IOC"
    elif variant == 8:
        fields["trigger_price"] = fields["price"]
    elif variant == 9:
        fields["type"] = "market"
    elif variant == 10:
        fields["qty"] = _e8_qty(symbol, 10**9)
    else:
        fields["price"] = 0
    return PlaceOrder(**fields)  # type: ignore[arg-type]


def _target(
    step: Step, view: View, *, resting: bool = False
) -> tuple[str, int, str, OpenOrder | None]:
    """Pick (account, order id, client id, order) for a cancel or amend.

    With ``resting``, nine times in ten only resting (not pending) orders are named.
    """
    opens = view.open_orders()
    if resting and step.toff != 1:
        opens = [o for o in opens if not o.pending] or opens
    account = ACCOUNTS[step.acct]
    variant = step.ref % 10
    if variant == 0 or not opens:
        return account, 10_000 + step.ref, "", None
    order = opens[step.ref % len(opens)]
    if variant == 1:
        stranger = next(a for a in ACCOUNTS if a != order.account)
        return stranger, order.order_id, "", order
    if variant == 2:
        cid = order.client_order_id or f"c{step.cid % 3}"
        return order.account, 0, cid, order if order.client_order_id else None
    return order.account, order.order_id, "", order


def _amend(step: Step, view: View, *, allow_invalid: bool) -> AmendOrder:
    """Return an amend: quantity down or up, a new price, both, or no change."""
    account, order_id, cid, order = _target(step, view, resting=True)
    qty = price = 0
    if order is not None and not order.pending:
        symbol = order.symbol
        if step.flag < 3:
            qty = _e8_qty(symbol, max(1, order.remaining - 1 - step.flag))
        elif step.flag < 5:
            qty = _e8_qty(symbol, order.remaining + 1 + step.flag)
        elif step.flag < 8:
            price = _e8_price(symbol, max(1, order.price + (step.off or 1)))
        elif step.flag == 8:
            qty = _e8_qty(symbol, order.remaining + 1)
            price = _e8_price(symbol, max(1, order.price - 1))
        else:
            qty = _e8_qty(symbol, order.remaining)
        if allow_invalid and step.bad == MALFORMED:
            qty, price = (qty or _e8_qty(symbol, 1)) + 1, 0  # off-lot
    else:
        qty = _e8_qty("X", step.qty)
    return AmendOrder(
        account=account, order_id=order_id, client_order_id=cid, qty=qty, price=price
    )
