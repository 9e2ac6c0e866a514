"""The exchange core: one pure, synchronous state machine over every market.

``ExchangeCore.handle(record) -> list[Event]`` is the whole contract. It does
no I/O, reads no clock and draws no random numbers; the record's ``seq`` and
``ts_ns`` are the only outside facts it sees, so the same records always give
the same events and the same `state_hash`. Each command runs the pipeline of
DESIGN.md:

1. check   - validate the command against its market (and, with margin, risk);
             a refusal emits `OrderRejected` and changes nothing.
2. match   - `matching.match` against the book, price-time priority.
3. settle  - fills become `OrderFilled` events (the ledger hooks in here).
4. trigger - a moved last price fires stop / take-profit orders, which run
             steps 2-3 again, one at a time, until nothing more fires.

Finally every price level the record touched is reported as a `BookDelta`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import assert_never

import msgspec

from exchange.book import Order, OrderBook
from exchange.codes import RejectCode
from exchange.errors import InvariantViolation
from exchange.ledger import Ledger
from exchange.margin import TierTable
from exchange.markets import DEFAULT_MARKETS, Market
from exchange.matching import STP_MODES, can_fill, match, would_take
from exchange.messages import (
    AdjustMargin,
    AdvanceTime,
    AllCanceled,
    AmendOrder,
    BookDelta,
    CancelAll,
    CancelOrder,
    Checkpoint,
    CheckpointTaken,
    Deposit,
    Event,
    OrderAccepted,
    OrderAmended,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderRested,
    OrderTriggered,
    PlaceOrder,
    Record,
    SetIndexPrice,
    SetLeverage,
    SetMarginMode,
    Withdraw,
)
from exchange.triggers import TriggerBook, is_rising
from exchange.validation import Refusal, check_order, to_lots, to_ticks

__all__ = ["STATE_SCHEMA", "ExchangeCore", "MarketState"]

STATE_SCHEMA = 1  # bump when the canonical state encoding changes
_MARKET_TYPES = frozenset({"market", "stop_market", "take_profit_market"})
_HASH_ENCODER = msgspec.msgpack.Encoder()


class MarketState:
    """Everything the core keeps per symbol: spec, book, triggers, last price."""

    __slots__ = ("book", "last_price", "market", "triggers")

    def __init__(
        self,
        market: Market,
        index: dict[int, Order],
        by_account: dict[str, dict[int, Order]],
    ) -> None:
        """Create an empty market sharing the exchange's order indexes."""
        self.market = market
        self.book = OrderBook(market.symbol, index, by_account)
        self.triggers = TriggerBook(index, by_account)
        self.last_price: int | None = None


class ExchangeCore:
    """Books, triggers and sequencer counters of one exchange; one writer only."""

    def __init__(
        self,
        markets: Iterable[Market] = DEFAULT_MARKETS,
        *,
        margin: bool = False,
        tiers: Mapping[str, TierTable] | None = None,
    ) -> None:
        """Create an exchange with empty books for ``markets``.

        Args:
            markets: the markets to trade.
            margin: run the margin ledger (accounts must deposit, orders are
                risk-checked, fills settle into positions). Without it the core
                is a pure matching venue: every order is accepted on its merits
                as an order, and account commands are refused (MARGIN_DISABLED).
            tiers: maintenance-margin tier tables by symbol (default per symbol).
        """
        markets = list(markets)
        self.ledger: Ledger | None = Ledger(markets, tiers) if margin else None
        self.index: dict[int, Order] = {}
        self.by_account: dict[str, dict[int, Order]] = {}
        self.markets: dict[str, MarketState] = {
            m.symbol: MarketState(m, self.index, self.by_account) for m in markets
        }
        # (account, client id) -> order id; entries of closed orders are pruned lazily.
        self.client_ids: dict[tuple[str, str], int] = {}
        self.next_order_id = 1
        self.next_trade_id = 1
        self.last_seq = 0
        # Levels changed by the current record, in first-touch order (never a set:
        # set order depends on string hashing, which differs between processes).
        self._touched: dict[tuple[MarketState, bool, int], None] = {}
        # Symbols whose mark may have moved during the current record.
        self._marks_touched: dict[str, None] = {}
        self.ts_ns = 0  # exchange time: the latest record stamp
        # Scratch lists reused by every match (cleared after use): no allocation
        # per command on the hot path.
        self._fills: list[tuple[Order, int, int]] = []
        self._expired: list[tuple[Order, int]] = []

    # ------------------------------------------------------------ entry point

    def handle(self, record: Record) -> list[Event]:
        """Apply one sequenced record and return the events it caused, in order.

        Raises:
            InvariantViolation: if ``record.seq`` does not follow the last one
                (a bug in the caller; the core refuses to apply it).
        """
        seq = record.seq
        if seq != self.last_seq + 1:
            msg = f"record seq {seq} does not follow {self.last_seq}"
            raise InvariantViolation(msg)
        self.last_seq = seq
        if record.ts_ns > self.ts_ns:
            self.ts_ns = record.ts_ns
        events: list[Event] = []
        cmd = record.command
        match cmd:
            case PlaceOrder():
                self._place(seq, cmd, events)
            case CancelOrder():
                self._cancel(seq, cmd, events)
            case AmendOrder():
                self._amend(seq, cmd, events)
            case CancelAll():
                self._cancel_all(seq, cmd, events)
            case Checkpoint():
                events.append(CheckpointTaken(seq=seq, state_hash=self.state_hash()))
            case Deposit() | Withdraw() | SetMarginMode() | SetLeverage() | AdjustMargin():
                self._account_command(seq, cmd, events)
            case SetIndexPrice():
                self._set_index(seq, cmd, events)
            case AdvanceTime():
                self.ts_ns = max(self.ts_ns, cmd.ts_ns)  # funding: TODO(#3)
            case _:
                assert_never(cmd)
        if self._touched:
            self._report_levels(seq, events)
        if self._marks_touched:
            self._refresh_marks(seq, events)
        return events

    # ------------------------------------------------------------ commands

    def _place(self, seq: int, cmd: PlaceOrder, events: list[Event]) -> None:
        """Check, accept and execute (or park) a new order."""
        # 1. check
        state = self.markets.get(cmd.symbol)
        if state is None:
            self._reject(seq, cmd.account, RejectCode.UNKNOWN_SYMBOL,
                         f"unknown symbol {cmd.symbol!r}", events, cmd.client_order_id)
            return
        checked = check_order(state.market, cmd)
        if isinstance(checked, Refusal):
            self._reject(seq, cmd.account, checked.code, checked.reason, events,
                         cmd.client_order_id)
            return
        price, qty, trigger = checked
        if cmd.client_order_id and self._open_by_client_id(
            cmd.account, cmd.client_order_id
        ) is not None:
            self._reject(seq, cmd.account, RejectCode.DUPLICATE_CLIENT_ORDER_ID,
                         f"client order id {cmd.client_order_id!r} is already in use "
                         "by an open order", events, cmd.client_order_id)
            return
        is_buy = cmd.side == "buy"
        book = state.book
        stp = STP_MODES[cmd.stp]
        refusal = None
        if trigger:
            rising = is_rising(cmd.type, is_buy)
            if state.triggers.would_fire(rising, trigger, state.last_price):
                refusal = Refusal(RejectCode.WOULD_TRIGGER_IMMEDIATELY,
                                  f"last price {state.last_price} ticks is already past "
                                  f"the trigger {trigger} ticks")
        elif cmd.post_only and would_take(book, is_buy, price):
            refusal = Refusal(RejectCode.POST_ONLY_WOULD_TAKE,
                              "post-only order would take liquidity")
        elif cmd.tif == "FOK" and not can_fill(
            book, is_buy, cmd.account, price or None, qty, stp
        ):
            refusal = Refusal(RejectCode.FOK_NOT_FILLED,
                              "fill-or-kill order cannot be filled whole")
        margin = 0
        if refusal is None and self.ledger is not None and not trigger:
            needed = self.ledger.check_order(cmd.account, cmd.symbol, is_buy, price,
                                             qty, cmd.reduce_only, book)
            if isinstance(needed, Refusal):
                refusal = needed
            else:
                margin = needed
        if refusal is not None:
            self._reject(seq, cmd.account, refusal.code, refusal.reason, events,
                         cmd.client_order_id)
            return
        # Accepted: from here on, state changes.
        order_id = self.next_order_id
        self.next_order_id = order_id + 1
        spec = OrderAccepted(
            seq=seq, order_id=order_id, account=cmd.account, symbol=cmd.symbol,
            side=cmd.side, type=cmd.type, qty=qty, price=price, tif=cmd.tif,
            post_only=cmd.post_only, reduce_only=cmd.reduce_only,
            trigger_price=trigger, stp=cmd.stp, client_order_id=cmd.client_order_id,
            margin=margin,
        )
        events.append(spec)
        if cmd.client_order_id:
            self._remember_client_id(cmd.account, cmd.client_order_id, order_id)
        order = Order(order_id, cmd.account, is_buy, price, qty, spec)
        if margin:
            self.ledger.reserve(order, margin)  # type: ignore[union-attr]
        if trigger:
            state.triggers.add(order, trigger, rising)
            return
        # 2.-3. match and settle
        self._execute(seq, state, order, events)
        # 4. trigger
        if state.triggers.parked:
            self._fire_triggers(seq, state, events)

    def _cancel(self, seq: int, cmd: CancelOrder, events: list[Event]) -> None:
        """Cancel one open order of the sender's (resting or untriggered)."""
        order = self._find(cmd.account, cmd.order_id, cmd.client_order_id)
        if order is None:
            self._reject(seq, cmd.account, RejectCode.UNKNOWN_ORDER,
                         "no such open order for this account", events,
                         cmd.client_order_id, cmd.order_id)
            return
        self._take_off(seq, order, events, "user")

    def _cancel_all(self, seq: int, cmd: CancelAll, events: list[Event]) -> None:
        """Cancel every open order of the account (of one symbol, or all)."""
        if cmd.symbol and cmd.symbol not in self.markets:
            self._reject(seq, cmd.account, RejectCode.UNKNOWN_SYMBOL,
                         f"unknown symbol {cmd.symbol!r}", events)
            return
        open_orders = self.by_account.get(cmd.account, {})
        doomed = [
            o for o in open_orders.values()
            if not cmd.symbol or o.spec.symbol == cmd.symbol
        ]
        for order in doomed:
            self._take_off(seq, order, events, "cancel_all")
        events.append(AllCanceled(seq=seq, account=cmd.account, symbol=cmd.symbol,
                                  count=len(doomed)))

    def _account_command(
        self,
        seq: int,
        cmd: Deposit | Withdraw | SetMarginMode | SetLeverage | AdjustMargin,
        events: list[Event],
    ) -> None:
        """Hand an account command to the ledger; refuse it without one."""
        ledger = self.ledger
        refusal: Refusal | None
        if ledger is None:
            refusal = Refusal(RejectCode.MARGIN_DISABLED,
                              "this exchange runs without margin accounts")
        elif not cmd.account:
            refusal = Refusal(RejectCode.INVALID_ACCOUNT, "account must not be empty")
        elif not isinstance(cmd, Deposit | Withdraw) and cmd.symbol not in self.markets:
            refusal = Refusal(RejectCode.UNKNOWN_SYMBOL, f"unknown symbol {cmd.symbol!r}")
        else:
            match cmd:
                case Deposit():
                    refusal = ledger.deposit(seq, cmd, events)
                case Withdraw():
                    refusal = ledger.withdraw(seq, cmd, events)
                case SetMarginMode():
                    has_orders = any(o.spec.symbol == cmd.symbol for o in
                                     self.by_account.get(cmd.account, {}).values())
                    refusal = ledger.set_margin_mode(seq, cmd, has_orders, events)
                case SetLeverage():
                    refusal = ledger.set_leverage(seq, cmd, events)
                case AdjustMargin():
                    refusal = ledger.adjust_margin(seq, cmd, events)
                case _:
                    assert_never(cmd)
        if refusal is not None:
            self._reject(seq, cmd.account, refusal.code, refusal.reason, events)

    def _set_index(self, seq: int, cmd: SetIndexPrice, events: list[Event]) -> None:
        """Take an index price: the mark moves, and margin is checked against it."""
        if self.ledger is None:
            self._reject(seq, "", RejectCode.MARGIN_DISABLED,
                         "this exchange runs without an index or mark price", events)
            return
        if cmd.symbol not in self.markets:
            self._reject(seq, "", RejectCode.UNKNOWN_SYMBOL,
                         f"unknown symbol {cmd.symbol!r}", events)
            return
        if cmd.price <= 0:
            self._reject(seq, "", RejectCode.INVALID_PRICE,
                         "index price must be positive", events)
            return
        self.ledger.set_index(cmd.symbol, cmd.price, self.ts_ns)
        self._marks_touched[cmd.symbol] = None

    def _amend(self, seq: int, cmd: AmendOrder, events: list[Event]) -> None:  # noqa: C901
        """Change a resting order's price and/or open quantity."""
        order = self._find(cmd.account, cmd.order_id, cmd.client_order_id)
        if order is None:
            self._reject(seq, cmd.account, RejectCode.UNKNOWN_ORDER,
                         "no such open order for this account", events,
                         cmd.client_order_id, cmd.order_id)
            return
        spec = order.spec
        state = self.markets[spec.symbol]
        refusal: Refusal | None = None
        price, qty = order.price, order.remaining
        if order.order_id in state.triggers:
            refusal = Refusal(RejectCode.NOT_AMENDABLE,
                              "only resting limit orders can be amended")
        elif cmd.qty or cmd.price:
            if cmd.qty:
                lots = to_lots(state.market, cmd.qty)
                refusal = lots if isinstance(lots, Refusal) else None
                qty = lots if isinstance(lots, int) else qty
            if cmd.price and refusal is None:
                ticks = to_ticks(state.market, cmd.price)
                refusal = ticks if isinstance(ticks, Refusal) else None
                price = ticks if isinstance(ticks, int) else price
        if refusal is None and (price, qty) == (order.price, order.remaining):
            refusal = Refusal(RejectCode.AMEND_NO_CHANGE, "the order already has "
                              "this price and quantity")
        if refusal is None and spec.post_only and price != order.price and would_take(
            state.book, order.is_buy, price
        ):
            refusal = Refusal(RejectCode.POST_ONLY_WOULD_TAKE,
                              "post-only order would take liquidity at the new price")
        margin = 0
        if refusal is None and self.ledger is not None:
            needed = self.ledger.check_order(order.account, spec.symbol, order.is_buy,
                                             price, qty, spec.reduce_only, state.book,
                                             credit=order.reserved)
            refusal = needed if isinstance(needed, Refusal) else None
            margin = needed if isinstance(needed, int) else 0
        if refusal is not None:
            self._reject(seq, cmd.account, refusal.code, refusal.reason, events,
                         cmd.client_order_id, cmd.order_id)
            return
        book = state.book
        self._touch(state, order.is_buy, order.price)
        self._release_all(order)
        in_place = price == order.price and qty < order.remaining
        events.append(OrderAmended(seq=seq, order_id=order.order_id,
                                   account=order.account, symbol=spec.symbol,
                                   price=price, qty=qty, requeued=not in_place,
                                   margin=margin))
        if in_place:
            book.reduce(order, qty)
            if margin:
                self.ledger.reserve(order, margin)  # type: ignore[union-attr]
            return
        book.remove(order)
        requeued = Order(order.order_id, order.account, order.is_buy, price, qty, spec)
        if margin:
            self.ledger.reserve(requeued, margin)  # type: ignore[union-attr]
        self._execute(seq, state, requeued, events)
        if state.triggers.parked:
            self._fire_triggers(seq, state, events)

    # ------------------------------------------------------------ execution

    def _execute(
        self, seq: int, state: MarketState, order: Order, events: list[Event]
    ) -> None:
        """Match an accepted order, report its fills, then rest or expire the rest."""
        spec = order.spec
        book = state.book
        limit = order.price or None
        fills = self._fills
        expired = self._expired
        if limit is None or would_take(book, order.is_buy, limit):
            remaining, stp_stopped = match(
                book, order.is_buy, order.account, limit, order.remaining,
                STP_MODES[spec.stp], fills, expired,
            )
        else:  # most limit orders do not cross: skip the matching walk
            remaining, stp_stopped = order.remaining, False
        if fills:
            self._report_fills(seq, state, order, fills, events)
            fills.clear()
        if expired:
            for maker, open_qty in expired:
                self._release_all(maker)
                self._touched[state, maker.is_buy, maker.price] = None
                events.append(OrderExpired(seq=seq, order_id=maker.order_id,
                                           account=maker.account, symbol=spec.symbol,
                                           qty=open_qty, reason="stp_maker"))
            expired.clear()
        if not remaining:
            return
        order.remaining = remaining
        if stp_stopped or limit is None or spec.tif != "GTC":
            self._release_all(order)
            events.append(OrderExpired(seq=seq, order_id=order.order_id,
                                       account=order.account, symbol=spec.symbol,
                                       qty=remaining,
                                       reason="stp_taker" if stp_stopped else "ioc"))
            return
        book.add(order)
        self._touched[state, order.is_buy, order.price] = None
        events.append(OrderRested(seq=seq, order_id=order.order_id, symbol=spec.symbol,
                                  side=spec.side, price=order.price, qty=remaining))

    def _report_fills(
        self,
        seq: int,
        state: MarketState,
        taker: Order,
        fills: list[tuple[Order, int, int]],
        events: list[Event],
    ) -> None:
        """Turn matched ``(maker, price, qty)`` tuples into `OrderFilled` events."""
        symbol = state.market.symbol
        taker_side = "buy" if taker.is_buy else "sell"
        trade_id = self.next_trade_id
        last_level = None
        ledger = self.ledger
        taker_open = taker.remaining
        for maker, price, qty in fills:
            taker_fee = maker_fee = 0
            if ledger is not None:
                taker_fee, maker_fee = ledger.fees(symbol, price, qty)
            fill = OrderFilled(
                seq=seq, trade_id=trade_id, symbol=symbol, price=price, qty=qty,
                taker_order_id=taker.order_id, taker_account=taker.account,
                taker_side=taker_side, maker_order_id=maker.order_id,
                maker_account=maker.account, taker_fee=taker_fee, maker_fee=maker_fee,
            )
            events.append(fill)
            if ledger is not None:  # 3. settle
                ledger.release(maker, qty, maker.remaining + qty)
                ledger.release(taker, qty, taker_open)
                taker_open -= qty
                ledger.settle(seq, fill, events)
            trade_id += 1
            if price != last_level:
                self._touched[state, maker.is_buy, price] = None
                last_level = price
        self.next_trade_id = trade_id
        state.last_price = fills[-1][1]
        if ledger is not None:
            self._marks_touched[symbol] = None

    def _fire_triggers(self, seq: int, state: MarketState, events: list[Event]) -> None:
        """Run every stop / take-profit the last price has reached, one at a time."""
        triggers = state.triggers
        while triggers.parked and state.last_price is not None:
            order = triggers.pop_next(state.last_price)
            if order is None:
                return
            spec = order.spec
            reason, margin = self._trigger_check(state, order)
            events.append(OrderTriggered(seq=seq, order_id=order.order_id,
                                         account=order.account, symbol=spec.symbol,
                                         trigger_price=spec.trigger_price,
                                         last_price=state.last_price, margin=margin))
            if margin:
                self.ledger.reserve(order, margin)  # type: ignore[union-attr]
            if reason is not None:
                events.append(OrderExpired(seq=seq, order_id=order.order_id,
                                           account=order.account, symbol=spec.symbol,
                                           qty=order.remaining, reason=reason))
                continue
            self._execute(seq, state, order, events)

    # ------------------------------------------------------------ helpers

    def _take_off(self, seq: int, order: Order, events: list[Event], reason: str) -> None:
        """Remove an open order from its book or trigger book and report it."""
        spec = order.spec
        state = self.markets[spec.symbol]
        qty = order.remaining
        self._release_all(order)
        if order.order_id in state.triggers:
            rising = is_rising(spec.type, order.is_buy)
            state.triggers.remove(order, spec.trigger_price, rising)
        else:
            self._touch(state, order.is_buy, order.price)
            state.book.remove(order)
        events.append(OrderCanceled(seq=seq, order_id=order.order_id,
                                    account=order.account, symbol=spec.symbol,
                                    qty=qty, reason=reason))

    def _trigger_check(self, state: MarketState, order: Order) -> tuple[str | None, int]:
        """Return why a triggered order expires at once (or None), and its margin."""
        spec = order.spec
        if spec.post_only and would_take(state.book, order.is_buy, order.price):
            return "post_only", 0
        if spec.tif == "FOK" and not can_fill(
            state.book, order.is_buy, order.account, order.price or None,
            order.remaining, STP_MODES[spec.stp],
        ):
            return "fok", 0
        if self.ledger is None:
            return None, 0
        needed = self.ledger.check_order(order.account, spec.symbol, order.is_buy,
                                         order.price, order.remaining,
                                         spec.reduce_only, state.book)
        if isinstance(needed, Refusal):
            return ("reduce_only" if needed.code == RejectCode.REDUCE_ONLY_REJECTED
                    else "margin"), 0
        return None, needed

    def _release_all(self, order: Order) -> None:
        """Give back the margin an order that is leaving the book still holds."""
        if self.ledger is not None:
            self.ledger.release_all(order)

    def _find(self, account: str, order_id: int, client_order_id: str) -> Order | None:
        """Return the account's open order by id (or client id), else None."""
        if not order_id and client_order_id:
            order_id = self._open_by_client_id(account, client_order_id) or 0
        order = self.index.get(order_id)
        if order is None or order.account != account:
            return None  # another account's order is "unknown", never "not yours"
        return order

    def _open_by_client_id(self, account: str, client_order_id: str) -> int | None:
        """Return the open order id using this client id, if there is one."""
        order_id = self.client_ids.get((account, client_order_id))
        if order_id is None or order_id not in self.index:
            return None
        return order_id

    def _remember_client_id(self, account: str, client_order_id: str, order_id: int) -> None:
        """Map a client id to its order; prune ids of closed orders when many pile up."""
        ids = self.client_ids
        ids[account, client_order_id] = order_id
        if len(ids) > 2 * len(self.index) + 1024:
            self.client_ids = {k: v for k, v in ids.items() if v in self.index}

    def _reject(  # noqa: PLR0913 -- mirrors the OrderRejected fields
        self,
        seq: int,
        account: str,
        code: RejectCode,
        reason: str,
        events: list[Event],
        client_order_id: str = "",
        order_id: int = 0,
    ) -> None:
        """Emit an `OrderRejected`; nothing else changes."""
        events.append(OrderRejected(seq=seq, account=account, code=int(code),
                                    reason=reason, order_id=order_id,
                                    client_order_id=client_order_id))

    def _touch(self, state: MarketState, is_buy: bool, price: int) -> None:
        """Note that a level changed, to report it once at the end of the record."""
        self._touched[state, is_buy, price] = None

    def _refresh_marks(self, seq: int, events: list[Event]) -> None:
        """4. Recompute the marks this record may have moved."""
        ledger = self.ledger
        assert ledger is not None
        for symbol in self._marks_touched:
            ledger.refresh_mark(seq, symbol, self.markets[symbol].book, self.ts_ns,
                                events)
        self._marks_touched.clear()

    def _report_levels(self, seq: int, events: list[Event]) -> None:
        """Emit one `BookDelta` per level the record changed, then forget them."""
        for state, is_buy, price in self._touched:
            level = (state.book.bids if is_buy else state.book.asks).get(price)
            events.append(BookDelta(seq=seq, symbol=state.market.symbol,
                                    side="buy" if is_buy else "sell", price=price,
                                    qty=0 if level is None else level.total))
        self._touched.clear()

    # ------------------------------------------------------------ state

    def canonical_state(self, *, include_seq: bool = True) -> list[object]:
        """Return the full state as plain data in one canonical order.

        ``include_seq=False`` leaves out the last applied seq: what remains is
        everything a command can change, so a rejected command (which is still
        a record and still advances the seq) leaves it identical.
        """
        markets = []
        for symbol in sorted(self.markets):
            state = self.markets[symbol]
            book = state.book
            markets.append([
                symbol,
                state.last_price,
                [_order_row(o) for o in book.orders(is_buy=True)],
                [_order_row(o) for o in book.orders(is_buy=False)],
                [[t, r, *_order_row(o)] for t, r, o in state.triggers.pending()],
            ])
        ledger = None if self.ledger is None else self.ledger.canonical_state()
        return [STATE_SCHEMA, self.last_seq if include_seq else None,
                self.next_order_id, self.next_trade_id, markets, ledger]

    def state_hash(self, *, include_seq: bool = True) -> str:
        """Return the sha256 hex digest of the canonical state encoding."""
        encoded = _HASH_ENCODER.encode(self.canonical_state(include_seq=include_seq))
        return hashlib.sha256(encoded).hexdigest()


def _order_row(order: Order) -> list[object]:
    """Return an open order as canonical plain data (live fields, then its spec)."""
    return [order.order_id, order.account, order.price, order.remaining, order.spec]
