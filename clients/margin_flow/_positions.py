"""The takers' positions: opened, protected, closed; the generator's view of each."""

from __future__ import annotations

import heapq
import math
from typing import TYPE_CHECKING

from clients.margin_flow._market import PPM
from exchange.messages import (
    AdjustMargin,
    CancelOrder,
    Command,
    Deposit,
    OrderType,
    PlaceOrder,
    SetLeverage,
    Side,
)
from exchange.units import SCALE

if TYPE_CHECKING:
    import random
    from collections import deque

    from clients.margin_flow._market import MarketView
    from clients.margin_flow._shape import MarginShape
    from clients.margin_flow._takers import Taker

_FIRST_TIER_NOTIONAL = 45_000  # USDT: under the first tier's 50,000 cap
_MMR = 0.004  # the first tier's maintenance rate, for the liquidation estimate
_COSTS = 0.0014  # of the notional per round trip: two taker fees and some spread


class Position:
    """The generator's own view of one taker's position (package doc)."""

    __slots__ = (
        "entry",
        "keys",
        "lots",
        "market",
        "open",
        "stop",
        "stop_lots",
        "take_profit",
        "taker",
    )

    def __init__(self, taker: Taker, market: MarketView, lots: int, entry: int) -> None:
        """Open ``lots`` (signed) at ``entry`` ticks, with no stop or take-profit."""
        self.taker = taker
        self.market = market
        self.lots = lots  # signed
        self.entry = entry  # ticks
        self.open = True
        self.stop = ""  # client order id of a live stop-loss
        self.stop_lots = 0
        self.take_profit = ""
        # kind ("stop", "tp", "liq") -> its entry in the market's trigger lists
        self.keys: dict[str, tuple[int, int, str, Position]] = {}


class Positions:
    """Queues the takers' orders and follows the positions they believe they hold."""

    def __init__(
        self,
        shape: MarginShape,
        rng: random.Random,
        markets: list[MarketView],
        pending: deque[Command],
        leg_len: int,
    ) -> None:
        """Draw from ``rng`` and queue commands on ``pending``.

        A position is held for an exponential time of mean ``shape.hold``
        legs of ``leg_len`` flow steps.
        """
        self.shape = shape
        self.rng = rng
        self.markets = markets
        self.pending = pending
        self.leg_len = leg_len
        self.closes: list[tuple[int, int, Position]] = []  # (due step, seqno, pos)
        self.seqno = 0

    def act(self, taker: Taker, step: int) -> None:
        """Queue what ``taker`` does now: open a position, or act on its own."""
        if taker.position is None:
            self._flat_action(taker, step)
        else:
            self._position_action(taker.position)

    def close_due(self, step: int) -> bool:
        """Queue the close of a position whose holding time is up, if any is."""
        closes = self.closes
        while closes and not closes[0][2].open:
            heapq.heappop(closes)
        if closes and closes[0][0] <= step:
            self._close(heapq.heappop(closes)[2], whole=True)
            return True
        return False

    def fire(self, m: MarketView, old: int, *, gap: bool) -> None:
        """Apply the stops, take-profits and liquidations the index crossed."""
        new = m.index
        fired: list[tuple[int, int, str, Position]] = []
        if new > old:
            while m.up and m.up[0][0] <= new:
                fired.append(m.up.pop(0))
        elif new < old:
            while m.down and m.down[-1][0] >= new:
                fired.append(m.down.pop())
        for price, _, kind, pos in fired:
            if not pos.open:
                continue
            del pos.keys[kind]
            if kind == "liq":
                self._forget(pos, liquidated=True)
                continue
            if kind == "stop":
                pos.stop = ""
            else:
                pos.take_profit = ""
            if not gap:  # it fills; in a jump the book is empty and it expires
                self._book(pos, abs(pos.lots), price)
                self._forget(pos, cancel=("stop", "tp"))

    def _flat_action(self, taker: Taker, step: int) -> None:
        """A flat taker opens a position, or now and then changes its leverage."""
        shape, rng = self.shape, self.rng
        m = self.markets[0 if rng.random() < shape.btc_share else -1]
        if rng.random() < shape.p_leverage:
            taker.leverage = rng.randint(math.ceil(taker.target * 1.25), 25)
            for each in self.markets:
                self.pending.append(
                    SetLeverage(
                        account=taker.name,
                        symbol=each.market.symbol,
                        leverage=taker.leverage,
                    )
                )
            return
        if taker.equity < 0.3 * taker.deposit:  # topped up before trading on
            self.pending.append(
                Deposit(account=taker.name, amount=taker.deposit * SCALE)
            )
            taker.equity += taker.deposit
        market = m.market
        # 10 % of the equity stays free for fees, the IOC price and drift
        notional = min(0.9 * taker.equity * taker.target, _FIRST_TIER_NOTIONAL)
        lots = int(notional * SCALE * SCALE / (m.index * market.tick_size)) // (
            market.lot_size
        )
        if lots <= 0:
            return
        is_buy = rng.random() < 0.5
        self.pending.append(self._taker_order(taker, m, is_buy, lots, reduce=False))
        pos = Position(taker, m, lots if is_buy else -lots, m.index)
        taker.position = pos
        m.net += pos.lots
        self._schedule(pos, step)
        if rng.random() < shape.p_stop:
            self._place_stop(pos)
        if rng.random() < shape.p_take_profit:
            distance = rng.randint(*shape.stop_ppm)
            pos.take_profit = taker.client_id("p")
            trigger = away(m.index, distance if is_buy else -distance)
            self.pending.append(
                self._trigger_order(pos, "take_profit_market", trigger, pos.take_profit)
            )
            self._watch(pos, trigger, "tp", rising=is_buy)
        self._watch(pos, liquidation_price(pos), "liq", rising=not is_buy)

    def _position_action(self, pos: Position) -> None:
        """Act on an open position: close half, trail the stop, add margin, or exit."""
        shape, rng = self.shape, self.rng
        r = rng.random()
        if r < shape.p_partial and abs(pos.lots) >= 2:
            self._close(pos, whole=False)
        elif r < shape.p_partial + shape.p_trail:
            if pos.stop:
                self.pending.append(
                    CancelOrder(account=pos.taker.name, client_order_id=pos.stop)
                )
                pos.stop = ""
            self._place_stop(pos)
        elif (
            r < shape.p_partial + shape.p_trail + shape.p_add_margin
            and pos.taker.modes[pos.market.market.symbol] == "isolated"
        ):
            amount = max(int(pos.taker.equity * 0.04), 1)  # of its ~10 % free
            self.pending.append(
                AdjustMargin(
                    account=pos.taker.name,
                    symbol=pos.market.market.symbol,
                    amount=amount * SCALE,
                )
            )
        else:
            self._close(pos, whole=True)

    def _place_stop(self, pos: Position) -> None:
        """Queue a reduce-only stop-loss for the whole position, from the index."""
        m, taker = pos.market, pos.taker
        distance = self.rng.randint(*self.shape.stop_ppm)
        is_long = pos.lots > 0
        trigger = away(m.index, -distance if is_long else distance)
        pos.stop = taker.client_id("s")
        pos.stop_lots = abs(pos.lots)
        self.pending.append(self._trigger_order(pos, "stop_market", trigger, pos.stop))
        self._watch(pos, trigger, "stop", rising=not is_long)

    def _close(self, pos: Position, *, whole: bool) -> None:
        """Queue a reduce-only close of the position (or of half of it)."""
        m, taker = pos.market, pos.taker
        lots = abs(pos.lots) if whole else abs(pos.lots) // 2
        is_long = pos.lots > 0
        self.pending.append(self._taker_order(taker, m, not is_long, lots, reduce=True))
        self._book(pos, lots, m.index)
        if whole:
            self._forget(pos, cancel=("stop", "tp"))
            return
        pos.lots += -lots if is_long else lots
        m.net += -lots if is_long else lots
        if pos.stop:  # the stop now exceeds the position: replace it
            self.pending.append(
                CancelOrder(account=taker.name, client_order_id=pos.stop)
            )
            pos.stop = ""
            self._place_stop(pos)
        if pos.take_profit:
            self.pending.append(
                CancelOrder(account=taker.name, client_order_id=pos.take_profit)
            )
            pos.take_profit = ""

    def _book(self, pos: Position, lots: int, price: int) -> None:
        """Book the estimated PnL of closing ``lots`` at ``price`` ticks, less costs."""
        m = pos.market.market
        pnl = (price - pos.entry) * lots * (1 if pos.lots > 0 else -1)
        pos.taker.equity += (pnl - price * lots * _COSTS) * (
            m.tick_size * m.lot_size / (SCALE * SCALE)
        )

    def _forget(
        self,
        pos: Position,
        *,
        cancel: tuple[str, ...] = (),
        liquidated: bool = False,
    ) -> None:
        """Drop a closed position; cancel its named orders still believed live."""
        pos.open = False
        taker, m = pos.taker, pos.market
        taker.position = None
        m.net -= pos.lots
        for key in pos.keys.values():
            m.up.discard(key)
            m.down.discard(key)
        pos.keys.clear()
        if liquidated:  # the exchange cancels the orders; the margin is gone
            leverage = (
                taker.leverage
                if taker.modes[m.market.symbol] == "isolated"
                else taker.target
            )
            taker.equity -= (
                abs(pos.lots) * pos.entry * m.market.tick_size * m.market.lot_size
            ) / (SCALE * SCALE * leverage)
            return
        for kind in cancel:
            cid = pos.stop if kind == "stop" else pos.take_profit
            if cid:
                self.pending.append(
                    CancelOrder(account=taker.name, client_order_id=cid)
                )

    def _schedule(self, pos: Position, step: int) -> None:
        """Plan the position's close after an exponential holding time."""
        mean = self.shape.hold * self.leg_len
        due = step + 1 + int(self.rng.expovariate(1.0 / mean))
        self.seqno += 1
        heapq.heappush(self.closes, (due, self.seqno, pos))

    def _watch(self, pos: Position, trigger: int, kind: str, *, rising: bool) -> None:
        """Add a trigger the index path is checked against."""
        m = pos.market
        old = pos.keys.get(kind)
        if old is not None:  # a replaced stop no longer fires
            m.up.discard(old)
            m.down.discard(old)
        self.seqno += 1
        key = (trigger, self.seqno, kind, pos)
        pos.keys[kind] = key
        (m.up if rising else m.down).add(key)

    def _taker_order(
        self, taker: Taker, m: MarketView, is_buy: bool, lots: int, *, reduce: bool
    ) -> PlaceOrder:
        """Return a market order, or an IOC limit 0.1 % through the index."""
        market = m.market
        side: Side = "buy" if is_buy else "sell"
        if self.rng.random() < self.shape.p_ioc:
            price = away(m.index, 1_000 if is_buy else -1_000)
            return PlaceOrder(
                account=taker.name,
                symbol=market.symbol,
                side=side,
                type="limit",
                qty=lots * market.lot_size,
                price=price * market.tick_size,
                tif="IOC",
                reduce_only=reduce,
            )
        return PlaceOrder(
            account=taker.name,
            symbol=market.symbol,
            side=side,
            type="market",
            qty=lots * market.lot_size,
            reduce_only=reduce,
        )

    def _trigger_order(
        self, pos: Position, kind: OrderType, trigger: int, client_id: str
    ) -> PlaceOrder:
        """Return a reduce-only stop or take-profit on the mark price."""
        market = pos.market.market
        return PlaceOrder(
            account=pos.taker.name,
            symbol=market.symbol,
            side="sell" if pos.lots > 0 else "buy",
            type=kind,
            qty=abs(pos.lots) * market.lot_size,
            reduce_only=True,
            trigger_price=trigger * market.tick_size,
            trigger_by="mark",
            client_order_id=client_id,
        )


def away(ticks: int, ppm: int) -> int:
    """Return ``ticks`` moved by ``ppm`` (rounded away from the start, at least 1)."""
    step = max(abs(ticks * ppm) // PPM, 1)
    return ticks + step if ppm > 0 else max(ticks - step, 1)


def liquidation_price(pos: Position) -> int:
    """Estimate where the index liquidates a position (ticks), first tier, no fees."""
    taker = pos.taker
    isolated = taker.modes[pos.market.market.symbol] == "isolated"
    cushion = 1 / (taker.leverage if isolated else taker.target)
    if pos.lots > 0:
        return max(round(pos.entry * (1 - cushion) / (1 - _MMR)), 1)
    return round(pos.entry * (1 + cushion) / (1 + _MMR))
