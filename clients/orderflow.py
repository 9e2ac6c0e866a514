"""Our own order flow: a deterministic, realistic mixed command stream.

It feeds ``paperx bench core`` and ``paperx demo``.

`OrderFlow` plays a crowd of trading bots on one or more markets. Each symbol's
mid price random-walks; bots post passive limits a few ticks behind it
(exponential offsets), cross the spread with marketable limits (some IOC, some
FOK), send market orders, cancel and amend their live orders (mostly quantity
down, sometimes a passive re-price or a size-up that re-queues), park stop and
take-profit orders around the last trade, and now and then ask for self-trade
prevention or a client order id.

Realism needs to know what is live, so the flow keeps a private shadow
`ExchangeCore` and follows its *events* (never its internals): which orders
rest, each level's size, the last trade price. That makes the stream exact:
every command it yields is accepted on a fresh exchange with the same markets
(no rejects), order ids are 1, 2, 3, ... in the order the `PlaceOrder`
commands appear, and a cancel or amend always names a live order. The output
depends only on ``seed``, the markets, the accounts and the `FlowMix` (one
``random.Random(seed)``; no global randomness, no clock).

Typical use::

    for command in generate(1_000_000, seed=42):
        ...
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

import msgspec
from sortedcontainers import SortedDict

from exchange.core import ExchangeCore
from exchange.markets import DEFAULT_MARKETS, Market
from exchange.messages import (
    AmendOrder,
    BookDelta,
    CancelOrder,
    Command,
    CommandRejected,
    Event,
    OrderAccepted,
    OrderAmended,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRested,
    OrderTriggered,
    OrderType,
    PlaceOrder,
    Record,
    SelfTradePrevention,
    TimeInForce,
)
from exchange.units import to_e8

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping
    from decimal import Decimal

__all__ = [
    "DEFAULT_ACCOUNTS",
    "DEFAULT_START_PRICES",
    "FlowMix",
    "OrderFlow",
    "generate",
]

DEFAULT_ACCOUNTS: tuple[str, ...] = tuple(f"bot-{i}" for i in range(1, 9))
DEFAULT_START_PRICES: Mapping[str, str] = {"BTC-PERP": "60000", "ETH-PERP": "3000"}
_FALLBACK_START_TICKS = 10_000
_STP_MODES: tuple[SelfTradePrevention, ...] = (
    "expire_taker",
    "expire_maker",
    "expire_both",
)
_STOP_TYPES: tuple[OrderType, ...] = ("stop_market", "stop_limit", "take_profit_market")


class FlowMix(msgspec.Struct, frozen=True, kw_only=True):
    """The shape of the flow: per-command probabilities and sizes (lots, ticks).

    The command kinds are drawn in this order of thresholds; whatever is left
    after cancel, amend, market and stop is a new limit order (about 53%).
    """

    p_cancel: float = 0.28
    p_amend: float = 0.08
    p_market: float = 0.08
    p_stop: float = 0.03
    p_cross: float = 0.10  # base share of marketable limits (scaled by depth)
    target_depth: int = 1500  # resting orders per symbol the crossing rate steers to
    p_ioc: float = 0.25  # of marketable limits
    p_fok: float = 0.05  # of marketable limits (only when the book can fill them)
    p_post_only: float = 0.08  # of passive limits
    p_stp: float = 0.05  # of limits and market orders
    p_client_id: float = 0.10  # of new orders
    max_lots: int = 100
    max_offset: int = 25  # passive limits rest up to this many ticks behind the mid


class _Live:
    """What the flow knows of one open order of its shadow exchange."""

    __slots__ = ("account", "is_buy", "post_only", "price", "remaining", "symbol")

    def __init__(self, spec: OrderAccepted) -> None:
        self.account = spec.account
        self.symbol = spec.symbol
        self.is_buy = spec.side == "buy"
        self.post_only = spec.post_only
        self.price = spec.price
        self.remaining = spec.qty


class _Pool:
    """A set of order ids with O(1) add, remove and uniform random pick."""

    __slots__ = ("ids", "pos")

    def __init__(self) -> None:
        self.ids: list[int] = []
        self.pos: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, order_id: int) -> bool:
        return order_id in self.pos

    def add(self, order_id: int) -> None:
        self.pos[order_id] = len(self.ids)
        self.ids.append(order_id)

    def discard(self, order_id: int) -> None:
        i = self.pos.pop(order_id, None)
        if i is None:
            return
        last = self.ids.pop()
        if last != order_id:
            self.ids[i] = last
            self.pos[last] = i


class _Symbol:
    """Per-symbol view: market, mid, level sizes, last trade, live orders."""

    __slots__ = ("asks", "bids", "last", "market", "mid", "resting", "stops")

    def __init__(self, market: Market, mid: int) -> None:
        self.market = market
        self.mid = mid
        self.bids: SortedDict = SortedDict()  # price ticks -> open lots
        self.asks: SortedDict = SortedDict()
        self.last: int | None = None
        self.resting = _Pool()
        self.stops = _Pool()

    def best_bid(self) -> int | None:
        return self.bids.peekitem(-1)[0] if self.bids else None

    def best_ask(self) -> int | None:
        return self.asks.peekitem(0)[0] if self.asks else None

    def fillable(self, is_buy: bool, limit: int, lots: int) -> bool:
        """Return True if the opposite side holds ``lots`` at ``limit`` or better."""
        side = self.asks if is_buy else self.bids
        prices = (
            side.irange(maximum=limit)
            if is_buy
            else side.irange(minimum=limit, reverse=True)
        )
        for price in prices:
            lots -= side[price]
            if lots <= 0:
                return True
        return False


class OrderFlow:
    """An endless, deterministic iterator of realistic paperx commands (E8 units)."""

    def __init__(
        self,
        markets: Iterable[Market] = DEFAULT_MARKETS,
        seed: int = 42,
        *,
        mix: FlowMix | None = None,
        accounts: Iterable[str] = DEFAULT_ACCOUNTS,
        start_prices: Mapping[str, Decimal | str] = DEFAULT_START_PRICES,
    ) -> None:
        """Create the flow; ``start_prices`` are decimal mids per symbol."""
        self.markets = tuple(markets)
        if not self.markets:
            msg = "OrderFlow needs at least one market"
            raise ValueError(msg)
        self.mix = mix or FlowMix()
        self.accounts = tuple(accounts)
        self.rng = random.Random(seed)  # noqa: S311 -- a reproducible simulation, not crypto
        self.symbols = [_Symbol(m, _start_ticks(m, start_prices)) for m in self.markets]
        self._by_symbol = {s.market.symbol: s for s in self.symbols}
        self._shadow = ExchangeCore(self.markets)
        self._seq = 0
        self._orders: dict[int, _Live] = {}
        self._client_ids = 0
        self.counts: dict[str, int] = {}
        """Commands yielded so far, by kind ("limit", "ioc", "market", ...)."""
        self.rejects = 0
        """Commands the shadow rejected: always 0 unless the flow has a bug."""
        self.fills = 0
        """Fills the shadow reported (the same a fresh exchange will report)."""

    def __iter__(self) -> Iterator[Command]:
        """Yield commands forever."""
        while True:
            yield self.next_command()

    def next_command(self) -> Command:
        """Draw the next command and apply it to the shadow exchange."""
        rng = self.rng
        sym = (
            self.symbols[int(rng.random() * len(self.symbols))]
            if len(self.symbols) > 1
            else self.symbols[0]
        )
        self._walk(sym)
        cmd, kind = self._draw(sym)
        self.counts[kind] = self.counts.get(kind, 0) + 1
        self._seq += 1
        self._observe(self._shadow.handle(Record(self._seq, 0, cmd)))
        return cmd

    # ------------------------------------------------------------ drawing

    def _walk(self, sym: _Symbol) -> None:
        """Move the mid one tick up or down with probability 5% each."""
        r = self.rng.random()
        lo, hi = (
            sym.market.min_price // sym.market.tick_size,
            (sym.market.max_price // sym.market.tick_size),
        )
        if r < 0.05 and sym.mid < hi - self.mix.max_offset - 1:
            sym.mid += 1
        elif r < 0.10 and sym.mid > lo + self.mix.max_offset + 1:
            sym.mid -= 1

    def _draw(self, sym: _Symbol) -> tuple[Command, str]:
        """Pick the kind of the next command and build it."""
        mix, r = self.mix, self.rng.random()
        live = len(sym.resting) + len(sym.stops)
        if r < mix.p_cancel:
            if live:
                return self._cancel(sym), "cancel"
        elif r < mix.p_cancel + mix.p_amend:
            amend = self._amend(sym)
            if amend is not None:
                return amend
        elif r < mix.p_cancel + mix.p_amend + mix.p_market:
            return self._place(sym, "market", self._side(), 0, self._lots()), "market"
        elif r < mix.p_cancel + mix.p_amend + mix.p_market + mix.p_stop:
            return self._stop(sym)
        return self._limit(sym)

    def _cancel(self, sym: _Symbol) -> CancelOrder:
        """Cancel a uniformly chosen live order (resting or parked stop)."""
        i = int(self.rng.random() * (len(sym.resting) + len(sym.stops)))
        ids = sym.resting.ids
        order_id = ids[i] if i < len(ids) else sym.stops.ids[i - len(ids)]
        return CancelOrder(account=self._orders[order_id].account, order_id=order_id)

    def _amend(self, sym: _Symbol) -> tuple[AmendOrder, str] | None:
        """Amend a random resting order: size down, or re-price away, or size up."""
        if not sym.resting:
            return None
        rng = self.rng
        order_id = sym.resting.ids[int(rng.random() * len(sym.resting))]
        o = self._orders[order_id]
        m = sym.market
        r = rng.random()
        if r < 0.7 and o.remaining >= 2:
            lots = rng.randint(1, o.remaining - 1)
            return AmendOrder(
                account=o.account, order_id=order_id, qty=lots * m.lot_size
            ), "amend_down"
        if r < 0.85:
            step = rng.randint(1, 3)
            price = o.price - step if o.is_buy else o.price + step
            if m.min_price <= price * m.tick_size <= m.max_price:
                return AmendOrder(
                    account=o.account, order_id=order_id, price=price * m.tick_size
                ), "amend_price"
        lots = min(o.remaining + rng.randint(1, 20), m.max_qty // m.lot_size)
        if lots == o.remaining:
            return None
        return AmendOrder(
            account=o.account, order_id=order_id, qty=lots * m.lot_size
        ), "amend_up"

    def _limit(self, sym: _Symbol) -> tuple[PlaceOrder, str]:
        """Build a limit: marketable (GTC, IOC or FOK) or passive (maybe post-only)."""
        rng, mix = self.rng, self.mix
        is_buy = self._side()
        lots = self._lots()
        bb, ba = sym.best_bid(), sym.best_ask()
        pc = mix.p_cross * len(sym.resting) / mix.target_depth
        pc = min(max(pc, 0.02), 0.5)
        lo, hi = _tick_range(sym.market)
        if rng.random() < pc:
            opposite = ba if is_buy else bb
            base = opposite if opposite is not None else sym.mid
            price = base + rng.randint(0, 3) if is_buy else base - rng.randint(0, 3)
            price = min(max(price, lo), hi)
            r = rng.random()
            if r < mix.p_fok and sym.fillable(is_buy, price, lots):
                return self._place(
                    sym, "limit", is_buy, price, lots, tif="FOK", stp=False
                ), "fok"
            if r < mix.p_fok + mix.p_ioc:
                return self._place(sym, "limit", is_buy, price, lots, tif="IOC"), "ioc"
            return self._place(sym, "limit", is_buy, price, lots), "cross"
        off = min(int(rng.expovariate(1 / 6.0)), mix.max_offset)
        if is_buy:
            price = sym.mid - 1 - off
            if ba is not None and price >= ba:
                price = ba - 1
        else:
            price = sym.mid + 1 + off
            if bb is not None and price <= bb:
                price = bb + 1
        price = min(max(price, lo), hi)
        crosses = (
            (ba is not None and price >= ba)
            if is_buy
            else (bb is not None and price <= bb)
        )
        if not crosses and rng.random() < mix.p_post_only:
            return self._place(
                sym, "limit", is_buy, price, lots, post_only=True
            ), "post_only"
        return self._place(sym, "limit", is_buy, price, lots), "limit"

    def _stop(self, sym: _Symbol) -> tuple[PlaceOrder, str]:
        """Build a stop or take-profit a few ticks beyond the last trade."""
        rng = self.rng
        kind = _STOP_TYPES[rng.randint(0, len(_STOP_TYPES) - 1)]
        is_buy = self._side()
        rising = is_buy == kind.startswith("stop")
        ref = sym.last if sym.last is not None else sym.mid
        lo, hi = _tick_range(sym.market)
        trigger = ref + rng.randint(1, 30) if rising else ref - rng.randint(1, 30)
        trigger = min(max(trigger, lo + 1), hi - 1)
        if sym.last is not None and (
            trigger <= sym.last if rising else trigger >= sym.last
        ):
            return self._place(sym, "market", is_buy, 0, self._lots()), "market"
        price = 0
        if kind == "stop_limit":
            slip = rng.randint(0, 5)
            price = min(max(trigger + slip if is_buy else trigger - slip, lo), hi)
        return self._place(
            sym, kind, is_buy, price, self._lots(), trigger=trigger
        ), kind

    def _place(
        self,
        sym: _Symbol,
        order_type: OrderType,
        is_buy: bool,
        price: int,
        lots: int,
        *,
        tif: TimeInForce = "GTC",
        post_only: bool = False,
        stp: bool = True,
        trigger: int = 0,
    ) -> PlaceOrder:
        """Build a `PlaceOrder` from ticks and lots; STP and client ids by chance."""
        rng, mix, m = self.rng, self.mix, sym.market
        stp_mode: SelfTradePrevention = "none"
        if stp and rng.random() < mix.p_stp:
            stp_mode = _STP_MODES[rng.randint(0, 2)]
        client_order_id = ""
        if rng.random() < mix.p_client_id:
            self._client_ids += 1
            client_order_id = f"c{self._client_ids}"
        return PlaceOrder(
            account=self.accounts[rng.randint(0, len(self.accounts) - 1)],
            symbol=m.symbol,
            side="buy" if is_buy else "sell",
            type=order_type,
            qty=lots * m.lot_size,
            price=price * m.tick_size,
            tif=tif,
            post_only=post_only,
            trigger_price=trigger * m.tick_size,
            stp=stp_mode,
            client_order_id=client_order_id,
        )

    def _side(self) -> bool:
        return self.rng.random() < 0.5

    def _lots(self) -> int:
        return self.rng.randint(1, self.mix.max_lots)

    # ------------------------------------------------------------ following

    def _observe(self, events: list[Event]) -> None:  # noqa: C901, PLR0912 -- one dispatch
        """Update the flow's view from the shadow exchange's events."""
        orders = self._orders
        matched: list[int] = []  # ids that went through matching in this record
        for e in events:
            match e:
                case BookDelta():
                    sym = self._by_symbol[e.symbol]
                    side = sym.bids if e.side == "buy" else sym.asks
                    if e.qty:
                        side[e.price] = e.qty
                    else:
                        side.pop(e.price, None)
                case OrderFilled():
                    self.fills += 1
                    self._by_symbol[e.symbol].last = e.price
                    maker = orders[e.maker_order_id]
                    maker.remaining -= e.qty
                    if not maker.remaining:
                        self._forget(e.maker_order_id)
                case OrderAccepted():
                    orders[e.order_id] = _Live(e)
                    if e.trigger_price:
                        self._by_symbol[e.symbol].stops.add(e.order_id)
                    else:
                        matched.append(e.order_id)
                case OrderRested():
                    o = orders[e.order_id]
                    o.price, o.remaining = e.price, e.qty
                    self._by_symbol[e.symbol].resting.add(e.order_id)
                case OrderCanceled() | OrderExpired():
                    self._forget(e.order_id)
                case OrderAmended():
                    o = orders[e.order_id]
                    o.price, o.remaining = e.price, e.qty
                    if e.requeued:
                        self._by_symbol[e.symbol].resting.discard(e.order_id)
                        matched.append(e.order_id)
                case OrderTriggered():
                    self._by_symbol[e.symbol].stops.discard(e.order_id)
                    matched.append(e.order_id)
                case CommandRejected():
                    self.rejects += 1
                case _:
                    pass
        # An order that went through matching in this record and neither rests
        # nor waits for its trigger has closed (filled or expired): forget it.
        for order_id in matched:
            closed = orders.get(order_id)
            if closed is not None:
                sym = self._by_symbol[closed.symbol]
                if order_id not in sym.resting and order_id not in sym.stops:
                    del orders[order_id]

    def _forget(self, order_id: int) -> None:
        """Drop a closed order from every pool."""
        o = self._orders.pop(order_id, None)
        if o is not None:
            sym = self._by_symbol[o.symbol]
            sym.resting.discard(order_id)
            sym.stops.discard(order_id)


def _tick_range(market: Market) -> tuple[int, int]:
    """Return the market's price limits in ticks."""
    return market.min_price // market.tick_size, market.max_price // market.tick_size


def _start_ticks(market: Market, start_prices: Mapping[str, Decimal | str]) -> int:
    """Return a symbol's starting mid in ticks, inside its price limits."""
    lo, hi = _tick_range(market)
    price = start_prices.get(market.symbol)
    ticks = _FALLBACK_START_TICKS if price is None else to_e8(price) // market.tick_size
    return min(max(ticks, lo + 100), hi - 100)


def generate(
    n: int,
    seed: int = 42,
    markets: Iterable[Market] = DEFAULT_MARKETS,
    *,
    mix: FlowMix | None = None,
) -> Iterator[Command]:
    """Yield ``n`` commands of an `OrderFlow` (same ``n``, seed, markets: same stream).

    Every command is accepted on a fresh ``ExchangeCore(markets)``; order ids
    are assigned 1, 2, 3, ... to the `PlaceOrder` commands in order.
    """
    flow = OrderFlow(markets, seed, mix=mix)
    for _ in range(n):
        yield flow.next_command()
