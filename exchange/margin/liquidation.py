"""Liquidation: find positions whose margin ran out, and close them through the book.

Detection (DESIGN step 4) runs after every record, on what the record moved:
accounts whose wallet or positions changed, and markets whose mark changed.
A mark change does not scan positions: `LiquidationIndex` keeps every
position of a market sorted by its liquidation price (or, for a cross account
holding several markets, by the edge of a safe band around the mark), so only
the positions the new mark has crossed are checked exactly.

A position due for liquidation gets a `MarginCall` event and a `Liquidate`
system command in the core's outbox, which the shell journals as the next
record. Running it: cancel the orders that hold margin, send an IOC
reduce-only order at the bankruptcy price into the book (the counterparty
sees an ordinary fill), auto-deleverage what the book could not absorb, and
move what is left of the margin (clearance fee, then surplus) to the
insurance fund. Isolated liquidation takes only that position's bucket; cross
liquidation closes every cross position and takes the cross wallet.

Partial liquidation (a market setting, on by default as on Binance): a
position whose notional is beyond the first tier is first cut down to the
tier below, at the same bankruptcy price. The lots left keep their share of
the margin, and detection after the record decides whether another step is
due, so a step down the tiers repeats only while the margin still falls short.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from fractions import Fraction
from typing import TYPE_CHECKING

from sortedcontainers import SortedList

from exchange.margin.accounts import Account, Position
from exchange.margin.tiers import position_bankruptcy_price, position_liquidation_price
from exchange.messages import (
    Event,
    Liquidate,
    LiquidationSkipped,
    MarginCall,
    OrderFilled,
    PositionDeleveraged,
    PositionLiquidated,
)
from exchange.units import PPM, SCALE, ceil_div

if TYPE_CHECKING:
    from exchange.margin.interfaces import LiquidationOrders
    from exchange.margin.ledger import Ledger
    from exchange.margin.market_margin import MarketMargin

__all__ = ["LiquidationIndex", "Liquidator"]


class LiquidationIndex:
    """One market's positions by a cautious liquidation price (E8), by side.

    A long is reported once the mark falls to its entry, a short once it rises
    to it; an entry of 0 is crossed by a long never, by a short always. An
    entry is at least as cautious as the position's edge (the mark where its
    margin check may turn): the index may report an account that is not due,
    never miss one that is. Entries are ``(price, account)``: ties break by
    account name, so the order of checks is deterministic.
    """

    __slots__ = ("at", "longs", "shorts")

    def __init__(self) -> None:
        """Create an empty index."""
        self.longs: SortedList = SortedList()
        self.shorts: SortedList = SortedList()
        self.at: dict[str, tuple[bool, int]] = {}

    def put(self, account: str, is_long: bool, edge: int, mark: int) -> None:
        """Index an account's position at ``edge``, or keep a more cautious entry.

        ``edge`` is the position's cautious price at mark ``mark``: a long must
        be checked once the mark falls to it, a short once it rises to it (0:
        a long never, a short always). The entry may be more cautious than
        ``edge`` (it reports the account earlier, never later). An entry on
        the mark's side of ``edge`` and at most halfway from it to the mark is
        kept: most re-checks after a fill move the edge a little, and keeping
        the entry saves re-sorting it. A new entry is put a quarter of the way
        from ``edge`` toward the mark, so the edge can move a little toward
        the mark before the entry must follow it.
        """
        stored = self.at.get(account)
        if stored is not None and stored[0] is is_long:
            entry = stored[1]
            if is_long:
                if 0 <= entry - edge <= max(0, mark - edge) // 2:
                    return
            elif 0 <= edge - entry <= max(0, edge - mark) // 2:
                return
            (self.longs if is_long else self.shorts).remove((entry, account))
        elif stored is not None:
            (self.shorts if is_long else self.longs).remove((stored[1], account))
        if is_long:
            entry = edge + max(0, mark - edge) // 4
            self.longs.add((entry, account))
        else:
            entry = edge - max(0, edge - mark) // 4
            self.shorts.add((entry, account))
        self.at[account] = (is_long, entry)

    def drop(self, account: str) -> None:
        """Forget an account's position (closed)."""
        where = self.at.pop(account, None)
        if where is not None:
            is_long, price = where
            (self.longs if is_long else self.shorts).remove((price, account))

    def crossed(self, mark: int) -> list[str]:
        """Return the accounts whose entry ``mark`` reached (the due, maybe more)."""
        out = []
        longs = self.longs
        for i in range(len(longs) - 1, -1, -1):
            price, account = longs[i]
            if price < mark:
                break
            out.append(account)
        for price, account in self.shorts:
            if price > mark:
                break
            out.append(account)
        return out


class Liquidator:
    """Runs detection after each record and the `Liquidate` system command."""

    def __init__(self, ledger: Ledger, orders: LiquidationOrders) -> None:
        """Work on ``ledger``'s accounts; cancel and liquidate through ``orders``."""
        self.ledger = ledger
        self.orders = orders
        self.indexes = {symbol: LiquidationIndex() for symbol in ledger.markets}
        self.pending: dict[tuple[str, str], None] = {}  # asked for, not yet run
        self.outbox: list[Liquidate] = []  # system commands for the shell

    # ------------------------------------------------------------ detection

    def detect(self, seq: int, moved_marks: list[str], events: list[Event]) -> None:
        """Re-price what this record changed and call margin on what ran out.

        Accounts the record changed come first, in the order it changed them,
        then those the index reports, by name: which extra accounts a cautious
        index reports depends on its history, so the order of margin calls
        must not (a core restored from a log calls them in the same order).
        """
        ledger = self.ledger
        suspects: dict[str, None] = dict.fromkeys(ledger.dirty)
        crossed = {
            name
            for symbol in moved_marks
            for name in self.indexes[symbol].crossed(ledger.markets[symbol].mark)
        }
        suspects.update(dict.fromkeys(sorted(crossed - suspects.keys())))
        ledger.dirty.clear()
        for name in suspects:
            for symbol, balance, mm in self._index_account(ledger.accounts[name]):
                self._call(seq, name, symbol, balance, mm, events)

    def reindex(self) -> None:
        """Index every account's positions afresh (after a rebuild or a restore).

        Margin calls due are not made here: at a record boundary each one
        already was (its liquidation is pending).
        """
        for account in self.ledger.accounts.values():
            self._index_account(account)

    def _index_account(self, account: Account) -> list[tuple[str, int, int]]:
        """Re-index an account's positions; return the margin calls now due.

        Isolated positions and a cross account's only cross position are
        indexed at their exact liquidation price. A cross account holding
        several markets is indexed in each at the edge of a *safe band*: its
        headroom (margin balance minus maintenance margin) is split evenly
        between its cross positions, and each band edge is where that market's
        mark alone would use up its share. While every mark stays inside its
        band the account cannot be liquidatable; once one leaves it, the index
        reports the account and it is checked exactly and re-banded. So a mark
        move never scans accounts, whatever markets they hold.

        Returns:
            ``(symbol, margin balance, maintenance margin)`` per call due:
            an isolated position's symbol, or "" for the cross account.
        """
        due: list[tuple[str, int, int]] = []
        ledger = self.ledger
        upnl, mm, crosses = ledger.settlement.cross_upnl_mm(account)
        headroom = account.wallet + upnl - mm
        for symbol, position in account.positions.items():
            index = self.indexes[symbol]
            if not position.size:
                index.drop(account.name)
                continue
            risk = ledger.markets[symbol]
            if position.mode == "isolated":
                own_mm = risk.tiers.maintenance_margin(risk.notional(position.size))
                price = _index_price(risk, position, position.margin)
                index.put(account.name, position.size > 0, price, risk.mark)
                balance = position.margin + risk.upnl(position)
                if risk.mark and balance <= own_mm:
                    due.append((symbol, balance, own_mm))
            elif crosses > 1:
                # each position's values round by at most a unit or two: keep
                # that much of the headroom out of the bands
                budget = (headroom - 4 * crosses) // crosses
                edge = _band_edge(risk, position.size, budget)
                index.put(account.name, position.size > 0, edge, risk.mark)
            else:  # the only cross position: upnl and mm are its own
                price = _index_price(risk, position, account.wallet)
                index.put(account.name, position.size > 0, price, risk.mark)
        if mm and headroom <= 0 and self._has_marked_cross(account):
            due.append(("", account.wallet + upnl, mm))
        return due

    def _has_marked_cross(self, account: Account) -> bool:
        """Return True if the account holds a cross position with a known mark."""
        return any(
            p.size and p.mode == "cross" and self.ledger.markets[s].mark
            for s, p in account.positions.items()
        )

    def _call(
        self,
        seq: int,
        account: str,
        symbol: str,
        balance: int,
        mm: int,
        events: list[Event],
    ) -> None:
        """Emit a margin call and queue the liquidation, once per target."""
        key = (account, symbol)
        if key in self.pending:
            return
        self.pending[key] = None
        events.append(
            MarginCall(
                seq=seq,
                account=account,
                symbol=symbol,
                margin_balance=balance,
                maintenance_margin=mm,
            )
        )
        self.outbox.append(Liquidate(account=account, symbol=symbol))

    # ------------------------------------------------------------ execution

    def run(self, seq: int, cmd: Liquidate, events: list[Event]) -> None:
        """Carry out one `Liquidate` system command."""
        self.pending.pop((cmd.account, cmd.symbol), None)
        ledger = self.ledger
        account = ledger.accounts.get(cmd.account)
        if cmd.symbol:
            position = account.positions.get(cmd.symbol) if account else None
            if (
                account is None
                or position is None
                or not position.size
                or (position.mode != "isolated")
            ):
                self._skip(seq, cmd, "flat", events)
                return
            risk = ledger.markets[cmd.symbol]
            if position.margin + risk.upnl(position) > risk.tiers.maintenance_margin(
                risk.notional(position.size)
            ):
                self._skip(seq, cmd, "recovered", events)
                return
            self.orders.cancel_orders(
                seq, account.name, (cmd.symbol,), "liquidation", events
            )
            self._liquidate(seq, account, position, _step_lots(position, risk), events)
            return
        if account is None or not self._has_marked_cross(account):
            self._skip(seq, cmd, "flat", events)
            return
        upnl, _, mm = ledger.settlement.cross_totals(account)
        if account.wallet + upnl > mm:
            self._skip(seq, cmd, "recovered", events)
            return
        cross = sorted(
            s for s, p in account.positions.items() if p.size and p.mode == "cross"
        )
        isolated = {s for s, p in account.positions.items() if p.mode == "isolated"}
        self.orders.cancel_orders(
            seq,
            account.name,
            tuple(s for s in ledger.markets if s not in isolated),
            "liquidation",
            events,
        )
        steps = {s: _step_lots(account.positions[s], ledger.markets[s]) for s in cross}
        partial = [s for s in cross if steps[s] < abs(account.positions[s].size)]
        # Above the first tier, one step down per record: only the positions
        # there are cut, and the account keeps its wallet. Else all close.
        for symbol in partial or cross:
            self._liquidate(
                seq,
                account,
                account.positions[symbol],
                steps[symbol],
                events,
                last=not partial and symbol == cross[-1],
            )

    def _skip(self, seq: int, cmd: Liquidate, reason: str, events: list[Event]) -> None:
        """Report a liquidation that no longer applies."""
        events.append(
            LiquidationSkipped(
                seq=seq, account=cmd.account, symbol=cmd.symbol, reason=reason
            )
        )

    def _liquidate(
        self,
        seq: int,
        account: Account,
        position: Position,
        lots: int,
        events: list[Event],
        *,
        last: bool = True,
    ) -> None:
        """Close ``lots`` of a position at its bankruptcy price: book, then ADL.

        Whole position: what is left of the margin afterwards goes to the
        insurance fund, the isolated bucket's remainder or, for cross (once
        ``last`` of the account's cross positions is closed), the whole cross
        wallet. Partial step: only what the fills made beyond the bankruptcy
        price does (the rest of the margin stays with the lots left). Its
        clearance-fee part is reported as ``fee``, the rest as ``surplus``.
        """
        ledger = self.ledger
        risk = ledger.markets[position.symbol]
        held, is_long = abs(position.size), position.size > 0
        price = self._bankruptcy_ticks(account, position, risk)
        wallet_before = account.wallet
        first = len(events)
        order_id = self.orders.place_liquidation(
            seq, account.name, position.symbol, not is_long, lots, price, events
        )
        unfilled = lots - (held - abs(position.size))
        if unfilled:
            self._deleverage(seq, account, position, unfilled, price, events)
        # isolated: what came back to the wallet from the bucket
        gained = account.wallet - wallet_before
        if lots < held:  # a step: what the fills made beyond the bankruptcy price
            gained = min(
                gained if position.mode == "isolated" else account.wallet,
                _surplus(events[first:], order_id, price, is_long, risk),
            )
        elif position.mode == "cross":  # the cross wallet, with the last position
            gained = account.wallet if last else 0
        remainder = max(0, min(gained, account.wallet))
        fee_due = ceil_div(
            risk.value(lots, price * risk.tick_size) * risk.market.liquidation_fee_ppm,
            PPM,
        )
        fee = min(fee_due, remainder)
        if remainder:
            ledger.settlement.transfer_to_fund(
                seq, account, fee, "liquidation_fee", events
            )
            ledger.settlement.transfer_to_fund(
                seq, account, remainder - fee, "liquidation_surplus", events
            )
        events.append(
            PositionLiquidated(
                seq=seq,
                account=account.name,
                symbol=position.symbol,
                mode=position.mode,
                qty=lots,
                bankruptcy_price=price,
                order_id=order_id,
                filled=lots - unfilled,
                deleveraged=unfilled,
                fee=fee,
                surplus=remainder - fee,
                left=abs(position.size),
            )
        )

    def _bankruptcy_ticks(
        self, account: Account, position: Position, risk: MarketMargin
    ) -> int:
        """Return the bankruptcy price on the tick grid, inside the market's limits.

        Cross positions count only the other positions' losses (not their
        profits), so closing at this price never leaves the wallet negative.
        """
        if position.mode == "isolated":
            wallet, other = position.margin, 0
        else:
            upnl, _, _ = self.ledger.settlement.cross_totals(account)
            wallet, other = account.wallet, min(0, upnl - risk.upnl(position))
        exact = position_bankruptcy_price(
            position.size * risk.lot_size, position.cost, wallet, other_upnl=other
        )
        tick, market = risk.tick_size, risk.market
        if exact is None:
            exact = risk.mark
        # round toward the trader: a long sells no lower, a short buys no higher
        ticks = ceil_div(exact, tick) if position.size > 0 else exact // tick
        return max(market.min_price // tick, min(ticks, market.max_price // tick))

    def _deleverage(
        self,
        seq: int,
        account: Account,
        position: Position,
        lots: int,
        price: int,
        events: list[Event],
    ) -> None:
        """Close ``lots`` the book could not take against the best-ranked opponents."""
        ledger = self.ledger
        risk = ledger.markets[position.symbol]
        bankrupt_long = position.size > 0
        pending = self.pending
        # Opponents are the symbol's holders: every one indexed at the last
        # detection, and those whose positions changed since (not indexed yet).
        index = self.indexes[position.symbol]
        candidates = index.at.keys() | ledger.dirty.keys()
        candidates.discard(account.name)
        accounts = ledger.accounts
        ranked: list[tuple[bool, Fraction, str, Position]] = []
        for name in candidates:
            other = accounts[name]
            p = other.positions.get(position.symbol)
            if p is not None and p.size and (p.size > 0) != bankrupt_long:
                # opponents awaiting their own liquidation come last: they are
                # bankrupt themselves, and would book that shortfall here
                awaiting = (name, "") in pending or (name, position.symbol) in pending
                ranked.append((awaiting, -self._adl_rank(other, p, risk), name, p))
        # best first, taken only as far as the lots need (names break ties)
        heapq.heapify(ranked)
        while ranked and lots:
            _, _, name, opponent = heapq.heappop(ranked)
            taken = min(lots, abs(opponent.size))
            lots -= taken
            ledger.settlement.settle_transfer(
                seq,
                position.symbol,
                price,
                taken,
                seller=account.name if bankrupt_long else name,
                buyer=name if bankrupt_long else account.name,
                events=events,
            )
            events.append(
                PositionDeleveraged(
                    seq=seq,
                    symbol=position.symbol,
                    account=name,
                    counterparty=account.name,
                    qty=taken,
                    price=price,
                )
            )

    def _adl_rank(
        self, account: Account, position: Position, risk: MarketMargin
    ) -> Fraction:
        """Return PnL% x effective leverage (profitable) or PnL% / leverage (not)."""
        upnl = risk.upnl(position)
        if position.mode == "isolated":
            balance = position.margin + upnl
        else:
            cross_upnl, _, _ = self.ledger.settlement.cross_totals(account)
            balance = account.wallet + cross_upnl
        # PnL% = upnl / |cost|, effective leverage = notional / balance (each
        # denominator at least 1), put over one denominator: a single Fraction
        cost, notional = max(abs(position.cost), 1), risk.notional(position.size)
        balance = max(balance, 1)
        if upnl > 0:
            return Fraction(upnl * notional, cost * balance)
        if notional > balance:  # leverage above 1 divides the loss
            return Fraction(upnl * balance, cost * notional)
        return Fraction(upnl, cost)

    # ------------------------------------------------------------ state

    def canonical_state(self) -> list[object]:
        """Return the pending liquidations (the index is derived from positions)."""
        return [list(key) for key in self.pending]


def _index_price(risk: MarketMargin, position: Position, base: int) -> int:
    """Return a price to index a position at: at least as cautious as its edge.

    ``base`` is as for `_exact_edge`. The liquidation price of the first
    tier's line (the formula's price for every position whose liquidation
    notional falls in that tier, and one candidate of the others) is off the
    exact edge only by the roundings, which move margin balance minus MM by a
    few E8 money: a few E8 money's worth of mark past it (on the safe side)
    is beyond the edge, which one check of the rule confirms. That price is
    returned while the mark is far from it; near the mark, or if the check
    fails (a position in a higher tier), the edge is searched exactly from
    the formula's price, so that a mark resting just outside the edge does
    not report the account on every move.
    """
    size, lot, cost = position.size, risk.lot_size, position.cost
    tiers, mark = risk.tiers, risk.mark
    size_e8 = size * lot
    qty = abs(size_e8)
    first = tiers.tiers[0]  # its cum is 0
    # `position_liquidation_price` with the first tier's line alone
    if size > 0:
        line = ceil_div(
            (base - cost) * SCALE * PPM, qty * first.mmr_ppm - size_e8 * PPM
        )
    else:
        line = (base - cost) * SCALE * PPM // (qty * first.mmr_ppm - size_e8 * PPM)
    if line > 0:
        pad = 4 * SCALE * PPM // (qty * (PPM - tiers.tiers[-1].mmr_ppm)) + 1
        guess = line + pad if size > 0 else line - pad  # a move worth 4 E8 money
        if (mark - guess if size > 0 else guess - mark) > _NEAR * pad:
            value = size_e8 * guess // SCALE  # floored, as `MarketMargin.upnl`
            notional = qty * guess // SCALE  # as `.notional`
            if base + value - cost > tiers.maintenance_margin(notional):
                return guess  # not due there: the edge is on the mark's far side
    price = position_liquidation_price(size_e8, cost, base, tiers)
    return _exact_edge(risk, position, base, price)


# How many pads (see `_index_price`) away from the mark an index price can be
# the cautious formula's rather than the exact edge.
_NEAR = 64


def _exact_edge(
    risk: MarketMargin, position: Position, base: int, price: int | None
) -> int:
    """Return the index price of a position: where the exact margin check turns.

    The exact check (`Liquidator._index_account`) says a position is due at
    mark ``m`` when ``base + UPNL(m) <= MM(m)``, with UPNL and the notional
    rounded as the ledger rounds them; ``base`` is the bucket (isolated) or
    the cross wallet plus the other cross positions' UPNL less their MM. The
    formula's price (``price``; None: none) ignores those roundings, so it can
    sit a few E8 off. The result is exact: a long is due at every mark at or
    below it (0: at none), a short at every mark at or above it (0: at every
    mark), so index and check agree at the boundary, whatever the history.
    Both sides of the check move monotonically with the mark (MM's slope is
    below 1), so a search from the formula's price finds the edge in a few steps.
    """
    size, cost, lot = position.size, position.cost, risk.lot_size
    tiers = risk.tiers

    def due(mark: int) -> bool:
        value = size * lot * mark // SCALE  # floored, as `MarketMargin.upnl`
        return base + value - cost <= tiers.maintenance_margin(
            abs(size) * lot * mark // SCALE  # as `MarketMargin.notional`
        )

    if size > 0:
        return _last_true(due, price or 0)
    if price is None:
        return 0  # due at every price by the formula; the check decides
    return _last_true(lambda mark: not due(mark), price - 1) + 1


def _last_true(holds: Callable[[int], bool], start: int) -> int:
    """Return the largest mark at which ``holds`` is true (0 if none).

    ``holds`` is true up to some mark and false beyond (monotone); 0 counts
    as true. The search gallops from ``start`` and then bisects.
    """
    if start <= 0 or holds(start):
        lo, step = max(start, 0), 1
        while holds(lo + step):
            lo += step
            step *= 2
        hi = lo + step
    else:
        hi, step = start, 1
        while hi - step > 0 and not holds(hi - step):
            hi -= step
            step *= 2
        lo = max(hi - step, 0)
    while hi - lo > 1:  # holds(lo) (or lo == 0), not holds(hi)
        mid = (lo + hi) // 2
        if holds(mid):
            lo = mid
        else:
            hi = mid
    return lo


def _band_edge(risk: MarketMargin, size: int, budget: int) -> int:
    """Return the mark (E8) at which a cross position alone uses up ``budget``.

    A mark move of d changes the position's margin balance minus maintenance
    margin by at most ``|size| x d x (1 + MMR)``, MMR at most the last tier's
    (tiers only raise the rate), so the edge is conservative: reaching it is a
    reason to look again, never a liquidation by itself. No budget left: the
    edge is the mark itself (the next move on the losing side crosses it).
    """
    mark = risk.mark
    if budget <= 0 or not mark:
        return mark
    slope = abs(size) * risk.lot_size * (PPM + risk.tiers.tiers[-1].mmr_ppm)
    # rounded down: the band is never wider than the headroom allows
    room = budget * SCALE * PPM // slope
    return mark - room if size > 0 else mark + room


def _step_lots(position: Position, risk: MarketMargin) -> int:
    """Return the lots one liquidation step closes: down to the tier below, or all.

    A position whose notional (at the mark) is beyond the first tier keeps
    the most lots that fit under the next lower tier's cap, if its market
    liquidates partially; otherwise the step is the whole position.
    """
    held = abs(position.size)
    tiers = risk.tiers.tiers
    notional = risk.notional(held)
    if not risk.market.partial_liquidation or notional < tiers[0].cap:
        return held
    below = next(t for t in reversed(tiers) if t.cap <= notional)
    # the most lots whose value at the mark stays under that tier's cap
    keep = (below.cap * SCALE - 1) // (risk.lot_size * risk.mark)
    return held - min(keep, held)


def _surplus(
    events: list[Event], order_id: int, price: int, is_long: bool, risk: MarketMargin
) -> int:
    """Return what a liquidation order's fills made beyond the bankruptcy price (E8)."""
    total = 0
    for event in events:
        if type(event) is OrderFilled and event.taker_order_id == order_id:
            beyond = risk.fill_value(event.qty, event.price) - risk.fill_value(
                event.qty, price
            )
            total += beyond if is_long else -beyond
    return total
