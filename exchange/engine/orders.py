"""Order entry: the order commands (place, amend, cancel, cancel-all) and their checks.

`OrderEntry` validates each command, refuses it with a coded reject or
accepts it, and hands accepted orders to the `Execution` it is given (the
books). With the margin ledger, the pre-trade risk check runs before an order
is accepted; `Execution` settles its fills and releases its margin.
`ExchangeCore` owns both and dispatches the commands here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from exchange.codes import Refusal, RejectCode
from exchange.engine.book import Order
from exchange.engine.execution import Execution, MarketBooks
from exchange.engine.matching import STP_MODES, can_fill, would_take
from exchange.engine.triggers import is_rising
from exchange.engine.validation import check_order, to_lots, to_ticks
from exchange.messages import (
    AllCanceled,
    AmendOrder,
    CancelAll,
    CancelOrder,
    CommandRejected,
    Event,
    OrderAccepted,
    OrderAmended,
    PlaceOrder,
)

if TYPE_CHECKING:
    from exchange.engine.risk import RiskGate
    from exchange.markets import Market

__all__ = ["OrderEntry", "reject"]


class OrderEntry:
    """The order commands on top of the books: every check, then the change."""

    def __init__(self, execution: Execution, risk: RiskGate | None) -> None:
        """Enter orders into ``execution``'s books, risk-checked by ``risk``."""
        self.execution = execution
        self.markets = execution.markets
        self.index = execution.index
        self.risk = risk

    def place(self, seq: int, cmd: PlaceOrder, events: list[Event]) -> None:  # noqa: C901, PLR0912, PLR0915 -- hot path kept in one frame
        """Check, accept and execute (or park) a new order."""
        # 1. check
        state = self.markets.get(cmd.symbol)
        if state is None:
            reject(
                seq,
                cmd.account,
                RejectCode.UNKNOWN_SYMBOL,
                f"unknown symbol {cmd.symbol!r}",
                events,
                cmd.client_order_id,
            )
            return
        checked = check_order(state.market, cmd)
        if isinstance(checked, Refusal):
            self._refuse(seq, cmd, checked, events)
            return
        price, qty, trigger = checked
        if (
            cmd.client_order_id
            and self._open_by_client_id(cmd.account, cmd.client_order_id) is not None
        ):
            reject(
                seq,
                cmd.account,
                RejectCode.DUPLICATE_CLIENT_ORDER_ID,
                f"client order id {cmd.client_order_id!r} is already in use "
                "by an open order",
                events,
                cmd.client_order_id,
            )
            return
        if state.market.max_open_orders and (trigger or (price and cmd.tif == "GTC")):
            refusal = self._open_order_limit(cmd.account, state.market)
            if refusal is not None:
                self._refuse(seq, cmd, refusal, events)
                return
        is_buy = cmd.side == "buy"
        book = state.book
        level = (book.bids if is_buy else book.asks).get(price)
        if level is not None:
            price = level.price  # the level's own int: see `Level`
        stp = STP_MODES[cmd.stp]
        refusal = None
        if trigger:
            rising = is_rising(cmd.type, is_buy)
            refusal = self._trigger_refusal(state, cmd.trigger_by, rising, trigger)
        elif cmd.post_only and would_take(book, is_buy, price):
            refusal = Refusal(
                RejectCode.POST_ONLY_WOULD_TAKE, "post-only order would take liquidity"
            )
        elif cmd.tif == "FOK" and not can_fill(
            book, is_buy, cmd.account, price or None, qty, stp
        ):
            refusal = Refusal(
                RejectCode.FOK_NOT_FILLED, "fill-or-kill order cannot be filled whole"
            )
        margin = 0
        if refusal is None and self.risk is not None and not trigger:
            needed = self.risk.check_order(
                cmd.account, cmd.symbol, is_buy, price, qty, cmd.reduce_only, book
            )
            if isinstance(needed, Refusal):
                refusal = needed
            else:
                margin = needed
        if refusal is not None:
            self._refuse(seq, cmd, refusal, events)
            return
        # Accepted: from here on, state changes.
        order_id = self.execution.next_id()
        spec = OrderAccepted.placed(seq, order_id, cmd, qty, price, trigger, margin)
        events.append(spec)
        if cmd.client_order_id:
            self._remember_client_id(cmd.account, cmd.client_order_id, order_id)
        order = Order(order_id, cmd.account, is_buy, price, qty, spec)
        if margin:
            self.risk.reserve(order, margin)  # type: ignore[union-attr]
        if trigger:
            by_mark = cmd.trigger_by == "mark"
            (state.mark_triggers if by_mark else state.triggers).add(
                order, trigger, rising
            )
            return
        # 2.-3. match and settle
        self.execution.execute(seq, state, order, events)
        # 4. trigger
        if state.triggers.parked:
            self.execution.fire_triggers(seq, state, events)

    def _open_order_limit(self, account: str, market: Market) -> Refusal | None:
        """Refuse an order that could stay open once the account is at the limit.

        Only orders that can be open are checked (a GTC limit order, a stop
        or take-profit), so an account at its limit can still trade and
        close with market, IOC and FOK orders; liquidation orders never come
        here. Open orders are those resting plus those waiting to trigger.
        """
        symbol = market.symbol
        orders = self.execution.by_account.get(account, {}).values()
        open_orders = sum(1 for o in orders if o.spec.symbol == symbol)
        if open_orders < market.max_open_orders:
            return None
        return Refusal(
            RejectCode.MAX_OPEN_ORDERS,
            f"{open_orders} open orders in {symbol}: the market's limit is "
            f"{market.max_open_orders} per account",
        )

    def _trigger_refusal(
        self, state: MarketBooks, source: str, rising: bool, trigger: int
    ) -> Refusal | None:
        """Refuse a stop whose trigger is already reached (or has no price source)."""
        if source == "mark":
            if self.risk is None:
                return Refusal(
                    RejectCode.MARGIN_DISABLED,
                    "triggers on the mark price need the margin ledger",
                )
            mark = self.risk.mark(state.market.symbol)
            if state.mark_triggers.would_fire(
                rising, trigger, mark, state.market.tick_size
            ):
                return Refusal(
                    RejectCode.WOULD_TRIGGER_IMMEDIATELY,
                    f"the mark price is already past the trigger {trigger} ticks",
                )
        elif state.triggers.would_fire(rising, trigger, state.last_price):
            return Refusal(
                RejectCode.WOULD_TRIGGER_IMMEDIATELY,
                f"last price {state.last_price} ticks is already past "
                f"the trigger {trigger} ticks",
            )
        return None

    def cancel(self, seq: int, cmd: CancelOrder, events: list[Event]) -> None:
        """Cancel one open order of the sender's (resting or untriggered)."""
        order = self._find_or_refuse(seq, cmd, events)
        if order is None:
            return
        self.execution.take_off(seq, order, events, "user")

    def cancel_all(self, seq: int, cmd: CancelAll, events: list[Event]) -> None:
        """Cancel every open order of the account (of one symbol, or all)."""
        if cmd.symbol and cmd.symbol not in self.markets:
            reject(
                seq,
                cmd.account,
                RejectCode.UNKNOWN_SYMBOL,
                f"unknown symbol {cmd.symbol!r}",
                events,
            )
            return
        symbols = (cmd.symbol,) if cmd.symbol else tuple(self.markets)
        count = self.execution.cancel_orders(
            seq, cmd.account, symbols, "cancel_all", events
        )
        events.append(
            AllCanceled(seq=seq, account=cmd.account, symbol=cmd.symbol, count=count)
        )

    def amend(self, seq: int, cmd: AmendOrder, events: list[Event]) -> None:  # noqa: C901, PLR0912 -- every amend rule, checked before any change
        """Change a resting order's price and/or open quantity."""
        order = self._find_or_refuse(seq, cmd, events)
        if order is None:
            return
        spec = order.spec
        state = self.markets[spec.symbol]
        refusal: Refusal | None = None
        price, qty = order.price, order.remaining
        if state.parked_in(order.order_id) is not None:
            refusal = Refusal(
                RejectCode.NOT_AMENDABLE, "only resting limit orders can be amended"
            )
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
            refusal = Refusal(
                RejectCode.AMEND_NO_CHANGE,
                "the order already has this price and quantity",
            )
        if (
            refusal is None
            and spec.post_only
            and price != order.price
            and would_take(state.book, order.is_buy, price)
        ):
            refusal = Refusal(
                RejectCode.POST_ONLY_WOULD_TAKE,
                "post-only order would take liquidity at the new price",
            )
        margin = 0
        if refusal is None and self.risk is not None:
            needed = self.risk.check_order(
                order.account,
                spec.symbol,
                order.is_buy,
                price,
                qty,
                spec.reduce_only,
                state.book,
                credit=order.reserved,
            )
            refusal = needed if isinstance(needed, Refusal) else None
            margin = needed if isinstance(needed, int) else 0
        if refusal is not None:
            self._refuse(seq, cmd, refusal, events, with_order_id=True)
            return
        book = state.book
        self.execution.touch(state, order.is_buy, order.price)
        self.execution.release_all(order)
        in_place = price == order.price and qty < order.remaining
        events.append(
            OrderAmended(
                seq=seq,
                order_id=order.order_id,
                account=order.account,
                symbol=spec.symbol,
                price=price,
                qty=qty,
                requeued=not in_place,
                margin=margin,
            )
        )
        if in_place:
            book.reduce(order, qty)
            if margin:
                self.risk.reserve(order, margin)  # type: ignore[union-attr]
            return
        book.remove(order)
        requeued = Order(order.order_id, order.account, order.is_buy, price, qty, spec)
        if margin:
            self.risk.reserve(requeued, margin)  # type: ignore[union-attr]
        self.execution.execute(seq, state, requeued, events)
        if state.triggers.parked:
            self.execution.fire_triggers(seq, state, events)

    def _find_or_refuse(
        self, seq: int, cmd: CancelOrder | AmendOrder, events: list[Event]
    ) -> Order | None:
        """Return the open order a cancel or amend names, or reject it as unknown."""
        order = self._find(cmd.account, cmd.order_id, cmd.client_order_id)
        if order is None:
            reject(
                seq,
                cmd.account,
                RejectCode.UNKNOWN_ORDER,
                "no such open order for this account",
                events,
                cmd.client_order_id,
                cmd.order_id,
            )
        return order

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
        order_id = self.execution.client_ids.get((account, client_order_id))
        if order_id is None or order_id not in self.index:
            return None
        return order_id

    def _remember_client_id(
        self, account: str, client_order_id: str, order_id: int
    ) -> None:
        """Map a client id to its order; prune closed orders' ids when many pile up."""
        ids = self.execution.client_ids
        ids[account, client_order_id] = order_id
        if len(ids) > 2 * len(self.index) + 1024:
            self.execution.client_ids = {
                k: v for k, v in ids.items() if v in self.index
            }

    def _refuse(
        self,
        seq: int,
        cmd: PlaceOrder | AmendOrder,
        refusal: Refusal,
        events: list[Event],
        *,
        with_order_id: bool = False,
    ) -> None:
        """Reject an order command for ``refusal``, echoing its client or order id."""
        reject(
            seq,
            cmd.account,
            refusal.code,
            refusal.reason,
            events,
            cmd.client_order_id,
            cmd.order_id if with_order_id and isinstance(cmd, AmendOrder) else 0,
        )


def reject(
    seq: int,
    account: str,
    code: RejectCode,
    reason: str,
    events: list[Event],
    client_order_id: str = "",
    order_id: int = 0,
) -> None:
    """Emit an `CommandRejected` for a refused command; nothing else changes."""
    events.append(
        CommandRejected(
            seq=seq,
            account=account,
            code=int(code),
            reason=reason,
            order_id=order_id,
            client_order_id=client_order_id,
        )
    )
