"""The margin ledger: the margin policy over the `Settlement` it owns.

It sits inside the pure core (DESIGN.md steps 1 and 3): `check_order` is the
pre-trade risk check, order margin is reserved and released here, funding is
paid here, and the account commands (deposit, withdraw, margin mode,
leverage, isolated margin, risk limits) act here; its settlement books every
fill and moves every amount. To the engine it is a `RiskGate`. All money is
E8 collateral units; every division rounds in the exchange's favour
and says so. Work per command is O(1) in the number of accounts and O(markets)
per account at most (an account's cross positions are summed for its free
balance; there are as many as markets, not as accounts).

Free balance. ``available = wallet + min(0, cross UPNL) - cross IM - order
margin``: a loss reduces what can be opened, an unrealized profit does not
fund new orders until it is realized (stricter than Binance's cross mode, and
what keeps every wallet non-negative when fees and isolated margin leave it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from exchange.codes import Refusal, RejectCode
from exchange.margin.accounts import (
    DEFAULT_LEVERAGE,
    Account,
    Position,
)
from exchange.margin.funding import FundingTick, settle_funding
from exchange.margin.market_margin import MarketMargin
from exchange.margin.settlement import Settlement
from exchange.messages import (
    AdjustMargin,
    Deposit,
    Event,
    FundingPaid,
    RiskLimitsSet,
    SetLeverage,
    SetMarginMode,
    SetRiskLimits,
    Withdraw,
)
from exchange.units import PPM, SCALE, ceil_div, e8_str

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from exchange.margin.interfaces import HeldOrder, Quotes
    from exchange.markets import Market

__all__ = ["DAY_NS", "MAX_BALANCE", "Ledger"]

DAY_NS = 86_400 * 10**9  # an exchange day (UTC) in ns: daily loss limits reset
# The largest wallet (and loss limit), E8: ~46 billion USDT. Every amount the
# journal stores must fit msgpack's 64-bit ints, with room for sums of them.
MAX_BALANCE = 2**62


class Ledger:
    """The margin policy over a `Settlement`: account commands, risk, order margin.

    It owns the `Settlement` that keeps and moves the money; the accounts, the
    markets and the accounts a record touched are the settlement's own
    containers, shared here for reading.
    """

    def __init__(self, markets: Iterable[Market]) -> None:
        """Create an empty ledger for ``markets`` (each with its tier table)."""
        self.settlement = Settlement(markets)
        self.accounts = self.settlement.accounts
        self.markets = self.settlement.markets
        self.dirty = self.settlement.dirty
        # The engine settles fills here (`RiskGate.settle`): the settlement's
        # own method, bound once, so a fill costs no extra call.
        self.settle = self.settlement.settle
        self._next_funding_ns = 0  # the earliest funding time of any market

    def on_time(self, ts_ns: int) -> list[tuple[str, FundingTick]]:
        """Move the ledger's clock to ``ts_ns``; return the funding intervals it ended.

        Sets the exchange day (UTC) the daily loss limits count in, and closes
        every funding window that ended at or before ``ts_ns``. It runs on every
        record, so it costs one comparison until the next funding time. The
        caller pays the intervals (`pay_funding`); a rebuild only checks the
        logged payments against them.
        """
        self.settlement.day = ts_ns // DAY_NS
        if ts_ns < self._next_funding_ns:
            return []
        due = []
        for symbol, risk in self.markets.items():
            window = risk.funding_window(ts_ns)
            if ts_ns >= window.next_funding_ns:
                due += [(symbol, tick) for tick in window.advance(ts_ns)]
        self._next_funding_ns = min(
            risk.funding_window(ts_ns).next_funding_ns for risk in self.markets.values()
        )
        return due

    def pay_funding(
        self,
        seq: int,
        due: list[tuple[str, FundingTick]],
        holders: Callable[[str], Iterable[str]],
        events: list[Event],
    ) -> None:
        """Settle ended funding intervals.

        Every position pays or receives ``mark x size x rate``, exactly
        zero-sum (the rounding remainder goes to the insurance fund); isolated
        positions pay from their own wallet. ``holders(symbol)`` names every
        account with a position in ``symbol`` (the liquidation index keeps
        them), so the work grows with the holders, not with the accounts.
        """
        for symbol, tick in due:
            self._pay_funding(
                seq, symbol, self.markets[symbol], tick, holders(symbol), events
            )

    def _pay_funding(
        self,
        seq: int,
        symbol: str,
        risk: MarketMargin,
        tick: FundingTick,
        names: Iterable[str],
        events: list[Event],
    ) -> None:
        """Move one interval's funding between the positions of ``symbol``."""
        if not risk.mark or not risk.market.funding:
            return  # no price yet (nothing can be valued), or funding is off
        # in the order the accounts were opened, as a scan of them all would be
        held = sorted((self.accounts[name] for name in names), key=_ordinal)
        holders = [(a, a.positions[symbol]) for a in held]
        settlement = settle_funding(
            [(i, p.size * risk.lot_size) for i, (_, p) in enumerate(holders)],
            risk.mark,
            tick.rate_e8,
        )
        for i, amount in settlement.payments:
            account, position = holders[i]
            events.append(
                FundingPaid(
                    seq=seq,
                    symbol=symbol,
                    account=account.name,
                    amount=amount,
                    rate=tick.rate_e8,
                    mark=risk.mark,
                    funding_ts_ns=tick.ts_ns,
                )
            )
            if position.mode == "cross":
                self.settlement.move_wallet(seq, account, -amount, "funding", events)
                continue
            self.settlement.move_bucket(seq, account, position, -amount, events)
            self.settlement.report_position(seq, position, 0, 0, events)
        if settlement.remainder:
            self.settlement.move_fund(
                seq, settlement.remainder, "funding_remainder", events
            )

    def deposit(self, seq: int, cmd: Deposit, events: list[Event]) -> Refusal | None:
        """Credit a paper deposit to the cross wallet."""
        if cmd.amount <= 0:
            return Refusal(RejectCode.INVALID_AMOUNT, "deposit amount must be positive")
        held = self.accounts[cmd.account].wallet if cmd.account in self.accounts else 0
        if held + cmd.amount > MAX_BALANCE:
            return Refusal(
                RejectCode.INVALID_AMOUNT,
                f"a wallet holds at most {e8_str(MAX_BALANCE)}",
            )
        account = self.settlement.account(cmd.account)
        self.settlement.deposits += cmd.amount
        self.settlement.move_wallet(seq, account, cmd.amount, "deposit", events)
        return None

    def withdraw(self, seq: int, cmd: Withdraw, events: list[Event]) -> Refusal | None:
        """Debit a withdrawal; never more than the free balance."""
        if cmd.amount <= 0:
            return Refusal(
                RejectCode.INVALID_AMOUNT, "withdraw amount must be positive"
            )
        account = self.accounts.get(cmd.account)
        free = self.settlement.available(account) if account is not None else 0
        if account is None or cmd.amount > free:
            return Refusal(
                RejectCode.INSUFFICIENT_BALANCE,
                f"withdraw {e8_str(cmd.amount)} exceeds the free balance "
                f"{e8_str(max(free, 0))}",
            )
        self.settlement.withdrawals += cmd.amount
        self.settlement.move_wallet(seq, account, -cmd.amount, "withdraw", events)
        return None

    def set_margin_mode(
        self, seq: int, cmd: SetMarginMode, has_orders: bool, events: list[Event]
    ) -> Refusal | None:
        """Switch a symbol between isolated and cross (flat and without orders)."""
        existing = self._existing(cmd.account, cmd.symbol)
        if existing is not None and existing.size:
            return Refusal(
                RejectCode.MODE_CHANGE_WITH_POSITION,
                "close the position before changing its margin mode",
            )
        if has_orders:
            return Refusal(
                RejectCode.MODE_CHANGE_WITH_ORDERS,
                "cancel the open orders before changing the margin mode",
            )
        position = self.settlement.account(cmd.account).position(cmd.symbol)
        position.mode = cmd.mode
        self.settlement.report_position(seq, position, 0, 0, events)
        return None

    def set_leverage(
        self, seq: int, cmd: SetLeverage, has_orders: bool, events: list[Event]
    ) -> Refusal | None:
        """Set a symbol's leverage, capped by the tier of the current position.

        Lowering it while the symbol has open orders is refused: their fills
        would need more initial margin than the orders hold.
        """
        existing = self._existing(cmd.account, cmd.symbol)
        size = existing.size if existing is not None else 0
        risk = self.markets[cmd.symbol]
        cap = risk.tiers.max_leverage_for(risk.notional(size))
        if not 1 <= cmd.leverage <= cap:
            return Refusal(
                RejectCode.INVALID_LEVERAGE,
                f"leverage must be 1..{cap} for this position size",
            )
        current = existing.leverage if existing is not None else DEFAULT_LEVERAGE
        if has_orders and cmd.leverage < current:
            return Refusal(
                RejectCode.LEVERAGE_WITH_ORDERS,
                "cancel the open orders before lowering the leverage",
            )
        account = self.settlement.account(cmd.account)
        position = account.position(cmd.symbol)
        if position.size:
            notional = risk.notional(position.size)
            need = risk.tiers.initial_margin(notional, cmd.leverage)
            if position.mode == "isolated":
                if position.margin + risk.upnl(position) < need:
                    return Refusal(
                        RejectCode.MARGIN_BELOW_INITIAL,
                        "add isolated margin before lowering the leverage",
                    )
            elif cmd.leverage < current:
                # cross (Binance -2028): the extra initial margin must be free
                more = need - risk.tiers.initial_margin(notional, current)
                free = self.settlement.available(account)
                if more > free:
                    return Refusal(
                        RejectCode.MARGIN_BELOW_INITIAL,
                        f"at {cmd.leverage}x the position needs {e8_str(more)} more "
                        f"initial margin, the free balance is {e8_str(max(free, 0))}",
                    )
        position.leverage = cmd.leverage
        self.settlement.report_position(seq, position, 0, 0, events)
        return None

    def adjust_margin(
        self, seq: int, cmd: AdjustMargin, events: list[Event]
    ) -> Refusal | None:
        """Add to or remove from an isolated position's own wallet."""
        account = self.accounts.get(cmd.account)
        position = account.positions.get(cmd.symbol) if account else None
        if (
            account is None
            or position is None
            or position.mode != "isolated"
            or (not position.size)
        ):
            return Refusal(
                RejectCode.NO_ISOLATED_POSITION,
                "margin can be adjusted only on an open isolated position",
            )
        if cmd.amount == 0:
            return Refusal(RejectCode.INVALID_AMOUNT, "amount must not be zero")
        if cmd.amount > 0 and cmd.amount > self.settlement.available(account):
            return Refusal(
                RejectCode.INSUFFICIENT_BALANCE,
                "the free balance cannot cover this margin",
            )
        if cmd.amount < 0:
            risk = self.markets[cmd.symbol]
            keep = risk.tiers.initial_margin(
                risk.notional(position.size), position.leverage
            )
            excess = position.margin + min(0, risk.upnl(position)) - keep
            if -cmd.amount > excess:
                return Refusal(
                    RejectCode.MARGIN_BELOW_INITIAL,
                    f"at most {e8_str(max(excess, 0))} can be removed",
                )
        position.margin += cmd.amount
        self.settlement.move_wallet(
            seq, account, -cmd.amount, "isolated_margin", events
        )
        self.settlement.report_position(seq, position, 0, 0, events)
        return None

    def set_risk_limits(
        self, seq: int, cmd: SetRiskLimits, events: list[Event]
    ) -> Refusal | None:
        """Set an account's own order-margin share and daily loss limit."""
        if not 0 <= cmd.max_order_margin_ppm <= PPM or not (
            0 <= cmd.daily_loss_limit <= MAX_BALANCE
        ):
            return Refusal(
                RejectCode.INVALID_AMOUNT,
                "limits must be 0 (off) or positive; a share at most 100%",
            )
        account = self.settlement.account(cmd.account)
        account.max_order_margin_ppm = cmd.max_order_margin_ppm
        account.daily_loss_limit = cmd.daily_loss_limit
        events.append(
            RiskLimitsSet(
                seq=seq,
                account=cmd.account,
                max_order_margin_ppm=cmd.max_order_margin_ppm,
                daily_loss_limit=cmd.daily_loss_limit,
            )
        )
        return None

    def _limits_refusal(self, account: Account, required: int) -> Refusal | None:
        """Apply the account's own limits to an order that opens exposure."""
        limit = account.daily_loss_limit
        if limit and account.day == self.settlement.day and -account.day_pnl >= limit:
            return Refusal(
                RejectCode.DAILY_LOSS_LIMIT,
                f"today's loss {e8_str(-account.day_pnl)} reached the daily "
                f"limit {e8_str(limit)}; only reducing orders until 00:00 UTC",
            )
        share = account.max_order_margin_ppm
        if share:
            upnl = sum(
                self.markets[p.symbol].upnl(p) for p in account.positions.values()
            )
            equity = (
                account.wallet
                + upnl
                + sum(p.margin for p in account.positions.values())
            )
            cap = max(equity, 0) * share // PPM  # rounds down: the limit is strict
            if required > cap:
                return Refusal(
                    RejectCode.ORDER_MARGIN_LIMIT,
                    f"the order needs {e8_str(required)} of margin, over "
                    f"your limit of {e8_str(cap)} per order",
                )
        return None

    def _existing(self, account: str, symbol: str) -> Position | None:
        """Return a position if the account has one (never creates anything)."""
        found = self.accounts.get(account)
        return None if found is None else found.positions.get(symbol)

    def check_order(  # noqa: PLR0911 -- one return per reason to refuse
        self,
        account_name: str,
        symbol: str,
        is_buy: bool,
        limit: int,
        lots: int,
        reduce_only: bool,
        book: Quotes,
        credit: int = 0,
    ) -> Refusal | int:
        """Return the margin (E8) an order must hold, or why it is refused.

        Required = initial margin of the part that opens exposure + the loss of
        a limit price worse than the mark + the taker fee of the whole order.
        ``limit`` is in ticks (0 for a market order, priced at the best
        opposite level, else the mark). ``credit`` is margin the order already
        holds (an amend re-checks the order as if that were free again).
        """
        risk = self.markets[symbol]
        account = self.accounts.get(account_name)
        position = account.positions.get(symbol) if account else None
        size = position.size if position else 0
        side = 1 if is_buy else -1
        if reduce_only:
            if not size or (size > 0) == is_buy or lots > abs(size):
                return Refusal(
                    RejectCode.REDUCE_ONLY_REJECTED,
                    "a reduce-only order must not open or grow a position",
                )
            return 0
        price = (
            limit * risk.tick_size if limit else risk.market_order_price(book, is_buy)
        )
        if not price:
            return Refusal(
                RejectCode.INSUFFICIENT_MARGIN,
                "no price to value a market order against",
            )
        opening = lots if not size or (size > 0) == is_buy else max(0, lots - abs(size))
        leverage = position.leverage if position else DEFAULT_LEVERAGE
        after = risk.value(abs(size + side * lots), price)
        if after > risk.tiers.max_notional and abs(size + side * lots) > abs(size):
            return Refusal(
                RejectCode.POSITION_LIMIT,
                f"the position would exceed the largest tier "
                f"({e8_str(risk.tiers.max_notional)} notional)",
            )
        cap = risk.tiers.max_leverage_for(after)
        if leverage > cap:
            return Refusal(
                RejectCode.POSITION_LIMIT,
                f"at {leverage}x the position would exceed its tier; "
                f"lower the leverage to {cap}x or less",
            )
        value = risk.value(lots, price)
        required = risk.tiers.initial_margin(risk.value(opening, price), leverage)
        required += ceil_div(value * risk.taker_fee_ppm, PPM)  # fee, rounded up
        mark = risk.mark or price
        worse = (price - mark) * side
        if worse > 0:
            required += ceil_div(lots * risk.lot_size * worse, SCALE)
        if opening and account is not None:
            limited = self._limits_refusal(account, required)
            if limited is not None:
                return limited
        free = (
            self.settlement.available(account) if account is not None else 0
        ) + credit
        if opening and required > free:  # closing never needs free balance
            return Refusal(
                RejectCode.INSUFFICIENT_MARGIN,
                f"the order needs {e8_str(required)} of margin, the free "
                f"balance is {e8_str(max(free, 0))}",
            )
        return required

    def opening_margin(self, account: Account, order: HeldOrder) -> tuple[int, int]:
        """Return what a resting order needs against the position as it is now.

        Returns ``(initial margin of the lots that would open exposure, taker
        fee of the open quantity)``, both valued at the order's limit price
        and rounded up, as `check_order` values them. The initial margin is 0
        for an order that only closes: its fill moves no margin into a bucket.
        """
        risk = self.markets[order.spec.symbol]
        position = account.positions.get(order.spec.symbol)
        size = position.size if position is not None else 0
        lots = order.remaining
        opening = (
            lots if not size or (size > 0) == order.is_buy else max(0, lots - abs(size))
        )
        if not opening:
            return 0, 0
        price = order.price * risk.tick_size
        leverage = position.leverage if position is not None else DEFAULT_LEVERAGE
        return (
            risk.tiers.initial_margin(risk.value(opening, price), leverage),
            ceil_div(risk.value(lots, price) * risk.taker_fee_ppm, PPM),
        )

    def reserve(self, order: HeldOrder, amount: int) -> None:
        """Hold ``amount`` of the account's free balance for an open order."""
        order.reserved = amount
        self.settlement.account(order.account).order_margin += amount

    def release(self, order: HeldOrder, lots: int, open_before: int) -> None:
        """Release the margin of ``lots`` of an order that had ``open_before`` open."""
        held = order.reserved
        if not held:
            return
        # the last lots release everything; otherwise pro rata, rounded down
        part = held if lots >= open_before else held * lots // open_before
        order.reserved = held - part
        self.accounts[order.account].order_margin -= part

    def release_all(self, order: HeldOrder) -> None:
        """Release everything an order holds (it was canceled or expired)."""
        if order.reserved:
            self.accounts[order.account].order_margin -= order.reserved
            order.reserved = 0

    def mark(self, symbol: str) -> int:
        """Return the market's mark price in E8 (0: no price yet)."""
        return self.markets[symbol].mark

    def fees(self, symbol: str, ticks: int, lots: int) -> tuple[int, int]:
        """Return the (taker, maker) fees in E8 of a fill; fees round up."""
        risk = self.markets[symbol]
        value = risk.fill_value(lots, ticks)
        return (
            ceil_div(value * risk.taker_fee_ppm, PPM),
            ceil_div(value * risk.maker_fee_ppm, PPM),
        )

    def canonical_state(self) -> list[object]:
        """Return the ledger as plain data in one canonical order."""
        accounts = [a.row() for _, a in sorted(self.accounts.items())]
        prices = [
            [
                s,
                r.mark,
                r.mark_state.state_rows(),
                None if r.funding is None else r.funding.state_rows(),
            ]
            for s, r in sorted(self.markets.items())
        ]
        return [
            self.settlement.insurance_fund,
            self.settlement.fees_collected,
            self.settlement.bad_debt,
            self.settlement.deposits,
            self.settlement.withdrawals,
            prices,
            accounts,
        ]


def _ordinal(account: Account) -> int:
    """Return where an account stands in the order accounts were opened (a key)."""
    return account.ordinal
