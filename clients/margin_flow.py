"""A margin workload that looks like a venue: a seeded stream of timestamped commands.

`generate` returns a `MarginStream`: the ``setup`` commands (every account's
deposit, margin mode and leverage per market) and then exactly ``n`` ``flow``
commands, each as ``(ts_ns, command)`` with non-decreasing exchange
timestamps. Its shape, with the default `MarginShape`:

- accounts: ``shape.accounts`` (1,000-10,000), of which ``shape.makers`` are
  market makers (``mm-N``, cross margin, large deposits) and the rest takers
  (``t-N``). Takers' activity is skewed (Zipf weights, exponent
  ``shape.activity``): a few takers trade often, most rarely.
- takers: each has an effective leverage of 5-20x (``shape.leverage``) and a
  deposit of 100-2,000 USDT (log-uniform, ``shape.deposit``), a leverage
  setting a quarter above its effective leverage, and per market a margin mode
  (isolated with probability ``shape.p_isolated``, else cross). A position's
  notional is the taker's equity times its effective leverage, kept within the
  first tier (45,000 USDT) so that a liquidation closes it whole. A taker holds
  one position at a time: it opens with a market or IOC limit order, places a
  reduce-only stop-loss (``stop_market``) and sometimes a take-profit
  (``take_profit_market``), both on the mark price, trails or halves it now
  and then, adds isolated margin, and closes with a reduce-only market or IOC
  order after an exponential holding time, canceling what is left by client
  order id. A taker whose equity runs low deposits again.
- makers: quote a ladder of ``shape.levels`` GTC limits on both sides around
  the index (outer levels post-only), skewed against the crowd's net
  position; each re-quotes (`CancelAll`, then the ladder) when the index has
  moved more than its own threshold from its last centre.
- index: per market, ``shape.legs`` legs that each move the index 2-5 %
  (``shape.move_ppm``) up or down, with a little noise, one `SetIndexPrice`
  per market every ``shape.index_every`` flow commands. A share
  ``shape.gap_share`` of the legs happens as one jump while the makers have
  pulled their quotes (a flash move): stops fire into an empty book and
  liquidations find no bids, so the exchange auto-deleverages.
- time: the flow spans ``shape.hours`` of exchange time from 01:00 UTC
  (default 26 h), and an `AdvanceTime` lands on every funding time it
  crosses (08:00, 16:00, 00:00: three funding intervals by default).

Run through ``ExchangeCore(margin=True)`` the default shape gives a few per
mille of positions liquidated, some ADL, a funding payment per open position at
each funding time and well under 2 % rejects (see ``bench._margin``, which
counts them). The generator never consults an exchange: it is an input
stream, pure given its seed, shape and markets. To send reduce-only and
closing orders it keeps its own approximate view of every position: an
opening order fills whole at about the index, a stop fires when the index
crosses it (into an empty book during a jump, where it cannot fill), a
position is liquidated when the index crosses its estimated liquidation price.
Where that view is wrong (an auto-deleveraged position, a stop on the
boundary) the exchange refuses a command; those refusals are the rejects.

Write one to a file (msgpack, or JSON by suffix)::

    python -m clients.margin_flow 1000000 --seed 42 --out margin_1000000.msgpack
"""

from __future__ import annotations

import argparse
import bisect
import heapq
import math
import random
import sys
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec
from sortedcontainers import SortedList

from clients.orderflow import DEFAULT_START_PRICES
from exchange.markets import DEFAULT_MARKETS, Market
from exchange.messages import (
    AdjustMargin,
    AdvanceTime,
    CancelAll,
    CancelOrder,
    Command,
    Deposit,
    MarginMode,
    OrderType,
    PlaceOrder,
    SetIndexPrice,
    SetLeverage,
    SetMarginMode,
    Side,
)
from exchange.units import SCALE, to_e8

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

__all__ = [
    "FORMAT_VERSION",
    "MarginShape",
    "MarginStream",
    "Stamped",
    "generate",
    "main",
    "read_margin_stream",
    "write_margin_stream",
]

FORMAT_VERSION = 1
Stamped = tuple[int, Command]
"""One command of the stream with its exchange time, ``(ts_ns, command)``."""

HOUR_NS = 3600 * 10**9
FUNDING_NS = 8 * HOUR_NS
START_NS = 1_704_070_800 * 10**9  # 2024-01-01 01:00 UTC
_PPM = 1_000_000
_FIRST_TIER_NOTIONAL = 45_000  # USDT: under the first tier's 50,000 cap
_MMR = 0.004  # the first tier's maintenance rate, for the liquidation estimate
_COSTS = 0.0014  # of the notional per round trip: two taker fees and some spread


class MarginShape(msgspec.Struct, frozen=True, kw_only=True):
    """The knobs of the workload (module doc); every range is inclusive."""

    accounts: int = 2_000
    makers: int = 8
    hours: int = 26
    index_every: int = 25  # flow commands between index updates
    legs: int = 8  # index legs per market over the run
    move_ppm: tuple[int, int] = (20_000, 50_000)  # each leg moves the index 2-5 %
    noise_ppm: int = 100  # index noise per update (standard deviation)
    gap_share: float = 0.35  # legs that jump at once with the makers pulled
    p_isolated: float = 0.5
    leverage: tuple[int, int] = (5, 20)  # takers' effective leverage
    deposit: tuple[int, int] = (100, 2_000)  # takers' deposits, USDT, log-uniform
    activity: float = 0.7  # Zipf exponent of takers' activity
    hold: float = 0.6  # mean holding time, in legs
    p_stop: float = 0.6  # positions opened with a stop-loss
    p_take_profit: float = 0.3  # positions opened with a take-profit
    stop_ppm: tuple[int, int] = (10_000, 40_000)  # stop-loss distance
    p_ioc: float = 0.3  # opening and closing orders sent as IOC limits
    p_partial: float = 0.25  # of actions on an open position: close half
    p_trail: float = 0.35  # move the stop
    p_add_margin: float = 0.1  # add isolated margin
    p_leverage: float = 0.02  # of a flat taker's actions: change leverage
    maker_deposit: int = 50_000_000  # USDT
    maker_leverage: int = 10
    levels: int = 5
    level_notional: int = 200_000  # USDT per maker level
    half_spread_ppm: int = 100
    level_step_ppm: int = 200
    requote_ppm: tuple[int, int] = (300, 1_200)  # makers' re-quote thresholds
    maker_limit: int = 3_000_000  # USDT of the crowd's net a maker fully skews at
    btc_share: float = 0.6  # of positions opened in the first market

    def __post_init__(self) -> None:
        """Refuse a shape the generator cannot honour."""
        if not 0 < self.makers < self.accounts:
            msg = "a margin flow needs at least one maker and one taker"
            raise ValueError(msg)
        if self.index_every <= 0 or self.legs <= 0 or self.hours <= 0:
            msg = "index_every, legs and hours must be positive"
            raise ValueError(msg)


class MarginStream(msgspec.Struct, frozen=True, kw_only=True):
    """A generated stream as written to a file: its recipe, then its commands."""

    version: int = FORMAT_VERSION
    seed: int
    symbols: list[str]
    shape: MarginShape
    setup: list[Stamped]
    flow: list[Stamped]


class _Position:
    """The generator's own view of one taker's position (module doc)."""

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

    def __init__(self, taker: _Taker, market: _Market, lots: int, entry: int) -> None:
        self.taker = taker
        self.market = market
        self.lots = lots  # signed
        self.entry = entry  # ticks
        self.open = True
        self.stop = ""  # client order id of a live stop-loss
        self.stop_lots = 0
        self.take_profit = ""
        # kind ("stop", "tp", "liq") -> its entry in the market's trigger lists
        self.keys: dict[str, tuple[int, int, str, _Position]] = {}


class _Taker:
    """One taker account and what the generator believes of it."""

    __slots__ = (
        "deposit",
        "equity",
        "ids",
        "leverage",
        "modes",
        "name",
        "position",
        "target",
    )

    def __init__(self, name: str, deposit: int, target: int, leverage: int) -> None:
        self.name = name
        self.deposit = deposit  # USDT of each deposit
        self.equity = float(deposit)  # USDT, estimated
        self.target = target  # effective leverage
        self.leverage = leverage  # the exchange setting
        self.modes: dict[str, MarginMode] = {}
        self.position: _Position | None = None
        self.ids = 0  # client order ids used

    def client_id(self, prefix: str) -> str:
        self.ids += 1
        return f"{prefix}{self.ids}"


class _Market:
    """One market: its index path, makers' quote centres and trigger lists."""

    __slots__ = (
        "centres",
        "down",
        "gap_at",
        "index",
        "leg_end",
        "leg_step",
        "market",
        "net",
        "up",
    )

    def __init__(self, market: Market, start: int, makers: int) -> None:
        self.market = market
        self.index = start  # ticks
        self.centres: list[int | None] = [None] * makers  # last quote centre, ticks
        self.net = 0  # the takers' net position, lots
        # (price ticks, seqno, kind, position): fire when the index rises to /
        # falls to the price
        self.up: SortedList = SortedList()
        self.down: SortedList = SortedList()
        self.leg_end = 0  # flow step at which the current leg ends
        self.leg_step = 0.0  # drift per index update, ppm
        self.gap_at = -1  # flow step of this leg's jump (-1: none to come)


class _Generator:
    """Builds the stream step by step; see the module doc for its behaviour."""

    def __init__(
        self, n: int, seed: int, shape: MarginShape, markets: Sequence[Market]
    ) -> None:
        self.n = n
        self.shape = shape
        self.rng = random.Random(seed)  # noqa: S311 -- a reproducible simulation
        self.markets = [_Market(m, _start_ticks(m), shape.makers) for m in markets]
        self.makers = [f"mm-{i}" for i in range(1, shape.makers + 1)]
        self.thresholds = [
            self.rng.randint(*shape.requote_ppm) for _ in range(shape.makers)
        ]
        self.takers: list[_Taker] = []
        self.cumulative: list[float] = []
        self.pending: deque[Command] = deque()
        self.closes: list[tuple[int, int, _Position]] = []  # (due step, seqno, pos)
        self.seqno = 0
        self.step = 0
        self.leg_len = max(n // shape.legs, 1)
        self.span_ns = shape.hours * HOUR_NS
        self.next_funding = (START_NS // FUNDING_NS + 1) * FUNDING_NS

    # ------------------------------------------------------------ setup

    def setup(self) -> list[Stamped]:
        """Create the accounts; return their deposits, modes and leverages."""
        shape, rng = self.shape, self.rng
        out: list[Command] = []
        for maker in self.makers:
            out.append(Deposit(account=maker, amount=shape.maker_deposit * SCALE))
            for m in self.markets:
                symbol = m.market.symbol
                out.append(SetMarginMode(account=maker, symbol=symbol, mode="cross"))
                out.append(
                    SetLeverage(
                        account=maker, symbol=symbol, leverage=shape.maker_leverage
                    )
                )
        low, high = math.log(shape.deposit[0]), math.log(shape.deposit[1])
        total = 0.0
        for i in range(1, shape.accounts - shape.makers + 1):
            deposit = round(math.exp(rng.uniform(low, high)))
            target = rng.randint(*shape.leverage)
            taker = _Taker(f"t-{i}", deposit, target, math.ceil(target * 1.25))
            self.takers.append(taker)
            total += 1.0 / i**shape.activity
            self.cumulative.append(total)
            out.append(Deposit(account=taker.name, amount=deposit * SCALE))
            for m in self.markets:
                symbol = m.market.symbol
                mode: MarginMode = (
                    "isolated" if rng.random() < shape.p_isolated else "cross"
                )
                taker.modes[symbol] = mode
                out.append(SetMarginMode(account=taker.name, symbol=symbol, mode=mode))
                out.append(
                    SetLeverage(
                        account=taker.name, symbol=symbol, leverage=taker.leverage
                    )
                )
        # the takers' order is shuffled so that activity is not by number
        order = list(range(len(self.takers)))
        rng.shuffle(order)
        self.takers = [self.takers[i] for i in order]
        return [(START_NS, cmd) for cmd in out]

    # ------------------------------------------------------------ flow

    def flow(self) -> list[Stamped]:
        """Return the ``n`` flow commands, stamped."""
        out: list[Stamped] = []
        n, span = self.n, self.span_ns
        for m in self.markets:
            self._new_leg(m)
            self.pending.extend(self._index(m))
        while len(out) < n:
            self.step = len(out)
            ts = START_NS + self.step * span // n
            if ts >= self.next_funding:
                out.append((ts, AdvanceTime(ts_ns=self.next_funding)))
                self.next_funding += FUNDING_NS
                continue
            if not self.pending:
                self._next_event()
            out.append((ts, self.pending.popleft()))
        return out

    def _next_event(self) -> None:
        """Queue the commands of the next event (index, close or taker action)."""
        step = self.step
        if step and not step % self.shape.index_every:
            for m in self.markets:
                self.pending.extend(self._index(m))
            if self.pending:
                return
        closes = self.closes
        while closes and not closes[0][2].open:
            heapq.heappop(closes)
        if closes and closes[0][0] <= step:
            self._close(heapq.heappop(closes)[2], whole=True)
            return
        taker = self.takers[
            bisect.bisect(self.cumulative, self.rng.random() * self.cumulative[-1])
        ]
        if taker.position is None:
            self._flat_action(taker)
        else:
            self._position_action(taker.position)
        if not self.pending:  # nothing to do this time: the makers refresh
            self.pending.extend(
                self._ladder(self.markets[0], self.step % len(self.makers))
            )

    # ------------------------------------------------------------ index and makers

    def _new_leg(self, m: _Market) -> None:
        """Start the market's next leg: a 2-5 % move, gradual or as one jump."""
        shape, rng = self.shape, self.rng
        move = rng.randint(*shape.move_ppm)
        start = _start_ticks(m.market)
        drift = (m.index - start) / start
        up = rng.random() < (0.5 - 2 * drift)  # lean back toward the start
        move = move if up else -move
        m.leg_end = self.step + self.leg_len
        if rng.random() < shape.gap_share:
            m.gap_at = self.step + rng.randint(self.leg_len // 4, self.leg_len // 2)
            m.leg_step = float(move)  # the whole move at once
        else:
            m.gap_at = -1
            m.leg_step = move / max(self.leg_len / shape.index_every, 1.0)

    def _index(self, m: _Market) -> list[Command]:
        """Move one market's index and return its record and the makers' answers."""
        shape, rng, step = self.shape, self.rng, self.step
        if step >= m.leg_end:
            self._new_leg(m)
        symbol, tick = m.market.symbol, m.market.tick_size
        old = m.index
        noise = rng.gauss(0.0, shape.noise_ppm)
        out: list[Command] = []
        gap = 0 <= m.gap_at <= step
        if gap:
            out.extend(CancelAll(account=a, symbol=symbol) for a in self.makers)
            m.centres = [None] * len(self.makers)
            ppm = m.leg_step + noise
            m.gap_at, m.leg_step = -1, 0.0  # the leg's move is done
        else:
            ppm = (m.leg_step if m.gap_at < 0 else 0.0) + noise
        m.index = max(round(old * (1 + ppm / _PPM)), 1)
        out.append(SetIndexPrice(symbol=symbol, price=m.index * tick))
        self._fire(m, old, gap=gap)
        for i in range(len(self.makers)):
            centre = m.centres[i]
            if centre is None or abs(m.index - centre) * _PPM > (
                self.thresholds[i] * centre
            ):
                out.extend(self._ladder(m, i))
        return out

    def _ladder(self, m: _Market, i: int) -> list[Command]:
        """Return maker ``i``'s cancel-all and fresh ladder around the index."""
        shape, market = self.shape, m.market
        maker = self.makers[i]
        m.centres[i] = m.index
        out: list[Command] = [CancelAll(account=maker, symbol=market.symbol)]
        price_e8 = m.index * market.tick_size
        # the crowd's net long is the makers' short: quote more bids then
        net = m.net * market.lot_size * price_e8 // SCALE // SCALE  # USDT
        skew = max(-0.8, min(0.8, net / (len(self.makers) * shape.maker_limit)))
        base = shape.level_notional * SCALE * SCALE // price_e8  # E8 qty
        lots = max(base // market.lot_size, 1)
        for level in range(shape.levels):
            ppm = shape.half_spread_ppm + level * shape.level_step_ppm
            offset = max(m.index * ppm // _PPM, 1)
            post_only = level >= shape.levels - 2
            for side, sign, size in (
                ("buy", -1, round(lots * (1 + skew))),
                ("sell", 1, round(lots * (1 - skew))),
            ):
                out.append(
                    PlaceOrder(
                        account=maker,
                        symbol=market.symbol,
                        side=side,  # type: ignore[arg-type]
                        type="limit",
                        qty=max(size, 1) * market.lot_size,
                        price=(m.index + sign * offset) * market.tick_size,
                        post_only=post_only,
                    )
                )
        return out

    def _fire(self, m: _Market, old: int, *, gap: bool) -> None:
        """Apply the stops, take-profits and liquidations the index crossed."""
        new = m.index
        fired: list[tuple[int, int, str, _Position]] = []
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

    # ------------------------------------------------------------ takers

    def _flat_action(self, taker: _Taker) -> None:
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
        pos = _Position(taker, m, lots if is_buy else -lots, m.index)
        taker.position = pos
        m.net += pos.lots
        self._schedule(pos)
        if rng.random() < shape.p_stop:
            self._place_stop(pos)
        if rng.random() < shape.p_take_profit:
            distance = rng.randint(*shape.stop_ppm)
            pos.take_profit = taker.client_id("p")
            trigger = _away(m.index, distance if is_buy else -distance)
            self.pending.append(
                self._trigger_order(pos, "take_profit_market", trigger, pos.take_profit)
            )
            self._watch(pos, trigger, "tp", rising=is_buy)
        self._watch(pos, _liquidation_price(pos), "liq", rising=not is_buy)

    def _position_action(self, pos: _Position) -> None:
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

    def _place_stop(self, pos: _Position) -> None:
        """Queue a reduce-only stop-loss for the whole position, from the index."""
        m, taker = pos.market, pos.taker
        distance = self.rng.randint(*self.shape.stop_ppm)
        is_long = pos.lots > 0
        trigger = _away(m.index, -distance if is_long else distance)
        pos.stop = taker.client_id("s")
        pos.stop_lots = abs(pos.lots)
        self.pending.append(self._trigger_order(pos, "stop_market", trigger, pos.stop))
        self._watch(pos, trigger, "stop", rising=not is_long)

    def _close(self, pos: _Position, *, whole: bool) -> None:
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

    def _book(self, pos: _Position, lots: int, price: int) -> None:
        """Book the estimated PnL of closing ``lots`` at ``price`` ticks, less costs."""
        m = pos.market.market
        pnl = (price - pos.entry) * lots * (1 if pos.lots > 0 else -1)
        pos.taker.equity += (pnl - price * lots * _COSTS) * (
            m.tick_size * m.lot_size / (SCALE * SCALE)
        )

    def _forget(
        self,
        pos: _Position,
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

    def _schedule(self, pos: _Position) -> None:
        """Plan the position's close after an exponential holding time."""
        mean = self.shape.hold * self.leg_len
        due = self.step + 1 + int(self.rng.expovariate(1.0 / mean))
        self.seqno += 1
        heapq.heappush(self.closes, (due, self.seqno, pos))

    def _watch(self, pos: _Position, trigger: int, kind: str, *, rising: bool) -> None:
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
        self, taker: _Taker, m: _Market, is_buy: bool, lots: int, *, reduce: bool
    ) -> PlaceOrder:
        """Return a market order, or an IOC limit 0.1 % through the index."""
        market = m.market
        side: Side = "buy" if is_buy else "sell"
        if self.rng.random() < self.shape.p_ioc:
            price = _away(m.index, 1_000 if is_buy else -1_000)
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
        self, pos: _Position, kind: OrderType, trigger: int, client_id: str
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


def _away(ticks: int, ppm: int) -> int:
    """Return ``ticks`` moved by ``ppm`` (rounded away from the start, at least 1)."""
    step = max(abs(ticks * ppm) // _PPM, 1)
    return ticks + step if ppm > 0 else max(ticks - step, 1)


def _liquidation_price(pos: _Position) -> int:
    """Estimate where the index liquidates a position (ticks), first tier, no fees."""
    taker = pos.taker
    isolated = taker.modes[pos.market.market.symbol] == "isolated"
    cushion = 1 / (taker.leverage if isolated else taker.target)
    if pos.lots > 0:
        return max(round(pos.entry * (1 - cushion) / (1 - _MMR)), 1)
    return round(pos.entry * (1 + cushion) / (1 + _MMR))


def _start_ticks(market: Market) -> int:
    """Return a market's starting index in ticks (orderflow's start prices)."""
    price = DEFAULT_START_PRICES.get(market.symbol, "1000")
    return to_e8(price) // market.tick_size


# ------------------------------------------------------------------ public


def generate(
    n: int,
    seed: int = 42,
    shape: MarginShape | None = None,
    markets: Iterable[Market] = DEFAULT_MARKETS,
) -> MarginStream:
    """Return the setup and ``n`` flow commands of the workload (module doc).

    The same ``n``, seed, shape and markets always give the same stream.

    Raises:
        ValueError: if ``n`` is not positive or the shape is unusable.
    """
    if n <= 0:
        msg = "a margin flow needs a positive number of commands"
        raise ValueError(msg)
    shape = shape or MarginShape()
    chosen = tuple(markets)
    gen = _Generator(n, seed, shape, chosen)
    setup = gen.setup()
    return MarginStream(
        seed=seed,
        symbols=[m.symbol for m in chosen],
        shape=shape,
        setup=setup,
        flow=gen.flow(),
    )


def write_margin_stream(path: str | Path, stream: MarginStream) -> None:
    """Write a stream as msgpack (``.msgpack``) or JSON (``.json``), by suffix.

    Raises:
        ValueError: for another suffix.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".msgpack":
        p.write_bytes(msgspec.msgpack.encode(stream))
    elif suffix == ".json":
        p.write_bytes(msgspec.json.encode(stream))
    else:
        msg = f"{p}: cannot write format {suffix!r}; use .msgpack or .json"
        raise ValueError(msg)


def read_margin_stream(path: str | Path) -> MarginStream:
    """Read a stream `write_margin_stream` wrote.

    Raises:
        ValueError: for an unknown suffix, a malformed file or another version.
        OSError: if the file cannot be read.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in {".msgpack", ".json"}:
        msg = f"{p}: unknown margin stream format {suffix!r}; use .msgpack or .json"
        raise ValueError(msg)
    data = p.read_bytes()
    try:
        stream = (
            msgspec.msgpack.decode(data, type=MarginStream)
            if suffix == ".msgpack"
            else msgspec.json.decode(data, type=MarginStream)
        )
    except msgspec.DecodeError as exc:
        msg = f"{p}: not a margin stream: {exc}"
        raise ValueError(msg) from exc
    if stream.version != FORMAT_VERSION:
        msg = f"{p}: margin stream version {stream.version}, expected {FORMAT_VERSION}"
        raise ValueError(msg)
    return stream


def main(argv: list[str] | None = None) -> int:
    """Write a margin stream to a file (``python -m clients.margin_flow --help``)."""
    p = argparse.ArgumentParser(
        prog="python -m clients.margin_flow",
        description="Write the seeded margin workload (setup and N flow commands, "
        "each with its exchange time) to a .msgpack or .json file.",
    )
    p.add_argument("n", type=int, help="number of flow commands")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--accounts", type=int, default=MarginShape().accounts)
    p.add_argument("--out", required=True, metavar="FILE")
    args = p.parse_args(argv)
    try:
        stream = generate(args.n, args.seed, MarginShape(accounts=args.accounts))
        write_margin_stream(args.out, stream)
    except (OSError, ValueError) as exc:
        print(f"margin_flow: {exc}", file=sys.stderr)  # noqa: T201 -- a command line
        return 2
    print(  # noqa: T201 -- a command line
        f"{args.out}: {len(stream.setup):,} setup + {len(stream.flow):,} flow "
        f"commands, {args.accounts:,} accounts, seed {args.seed}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
