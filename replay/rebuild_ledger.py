"""The ledger's side of a rebuild: margin events checked and folded into the ledger.

`LedgerFold` applies the journal's ledger events (wallets, positions and the
insurance fund after every change, margin calls, liquidation steps, funding,
ADL, risk limits) to the rebuilt margin ledger, checking each against the
state it meets. Four parts of the ledger are not in any snapshot event and
are derived the way the live core derives them, through the same `Ledger`
methods so the arithmetic cannot drift:

* order margin: reserved at acceptance (see `replay.rebuild_books`) and from
  ``OrderAmended`` / ``OrderTriggered.margin``, released pro rata on fills
  (`Ledger.release`) and whole on cancel, expiry and amend
  (`Ledger.release_all`);
* fees collected: the sum of the fills' ``taker_fee`` and ``maker_fee``. Those
  are exactly what settlement adds (`Ledger.settle` books each fill with the
  fees it carries). ``PositionChanged.fee`` reports the same numbers today but
  is a report per position change, not the booking, so it is only checked
  against the fill's fee, never summed;
* funding windows: advanced when a record moves exchange time (the payments
  themselves are logged); the exchange day too, and each account's PnL of the
  day is booked (`Account.book_day`) from the ``realized`` and ``fee`` of the
  position changes a fill or a deleveraging caused;
* mark state: the index price is an outside fact read from the record's
  `SetIndexPrice` command; trades feed the last price; at the end of every
  record the marks the core would refresh (symbols with an index or a fill in
  the record) are refreshed with `Ledger.refresh_mark` on the rebuilt book,
  and the `MarkPriceChanged` events that produces must equal the logged ones.

Without margin there is no ledger: an order holds no margin, and a fill that
charges a fee or an event that needs the ledger is a `Divergence`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from exchange.codes import Refusal
from exchange.messages import (
    BalanceChanged,
    Command,
    CommandRejected,
    Event,
    FundingPaid,
    InsuranceFundChanged,
    Liquidate,
    MarginCall,
    MarkPriceChanged,
    OrderFilled,
    PlaceOrder,
    PositionChanged,
    PositionDeleveraged,
    PositionLiquidated,
    RiskLimitsSet,
    SetIndexPrice,
)
from replay.errors import Divergence

if TYPE_CHECKING:
    from exchange.core import ExchangeCore
    from exchange.engine.book import Order
    from exchange.margin.interfaces import Quotes
    from exchange.margin.ledger import Ledger


COMMANDS_TAKEN: frozenset[type[Command]] = frozenset({SetIndexPrice, Liquidate})
"""The commands whose outside facts `LedgerFold.take_command` takes; no other."""


class LedgerFold:
    """Applies ledger events to the rebuilt ledger, and derives what they omit."""

    def __init__(self, core: ExchangeCore) -> None:
        """Fold into ``core``'s ledger (``None`` without margin), reading its books."""
        self.core = core
        self.ledger: Ledger | None = core.ledger
        # Per record: symbols whose mark the core refreshes, in the core's order,
        # and the marks the log reports for them.
        self._marks_touched: dict[str, None] = {}
        self._logged_marks: list[MarkPriceChanged] = []
        self._produced_marks: list[Event] = []
        # Position changes the record's fills still owe, in settlement order:
        # (account, symbol, size change, fee).
        self._settling: deque[tuple[str, str, int, int]] = deque()
        # Size changes no fill explains, until auto-deleveraging explains them.
        self._unexplained: dict[tuple[str, str], int] = {}
        # Funding boundaries the record's time crossed: (symbol, time, rate).
        self._funding_ticks: set[tuple[str, int, int]] = set()

    @property
    def funding_due(self) -> bool:
        """Whether the record's time crossed a funding boundary (it pays first)."""
        return bool(self._funding_ticks)

    def on_time(self, ts_ns: int) -> None:
        """Take the clock step of a record that moved exchange time to ``ts_ns``."""
        if self.ledger is not None:  # the same clock step as the live core
            due = self.ledger.on_time(ts_ns)
            if due:  # rare: most records cross no funding time
                self._funding_ticks = {
                    (symbol, tick.ts_ns, tick.rate_e8) for symbol, tick in due
                }

    def take_command(self, seq: int, cmd: Command, events: list[Event]) -> None:
        """Take the outside facts a record's command brings, before its events."""
        if isinstance(cmd, SetIndexPrice):
            self._index(seq, cmd, events)
        elif isinstance(cmd, Liquidate) and self.core.liquidator is not None:
            # `Liquidator.run` forgets the request before anything else
            self.core.liquidator.pending.pop((cmd.account, cmd.symbol), None)

    def end(self, seq: int) -> None:
        """Check that the record's fills all settled; refresh and compare marks."""
        if self._settling:
            account, symbol, _, _ = self._settling[0]
            raise Divergence(
                seq, f"a fill of {account} in {symbol} has no position change"
            )
        if self._unexplained:
            raise Divergence(
                seq,
                f"positions {sorted(self._unexplained)} changed "
                "size without a fill or a deleveraging",
            )
        if self._funding_ticks:
            self._funding_ticks = set()
        if self._marks_touched or self._logged_marks:
            self._refresh_marks(seq)

    def handlers(self) -> dict[type[Event], Callable[[int, Any], None]]:
        """Return the fold of each ledger event type (a skipped liquidation: none)."""
        return {
            BalanceChanged: self._balance,
            PositionChanged: self._position,
            InsuranceFundChanged: self._insurance,
            MarkPriceChanged: self._mark,
            MarginCall: self._margin_call,
            PositionDeleveraged: self._deleveraged,
            PositionLiquidated: self._liquidated,
            FundingPaid: self._funding,
            RiskLimitsSet: self._risk_limits,
        }

    # ------------------------------------------------------------ order margin

    def check_order(
        self, seq: int, cmd: PlaceOrder, price: int, qty: int, book: Quotes
    ) -> int:
        """Return the margin the pre-trade check asks of an accepted order now.

        Without margin that is none. ``price`` and ``qty`` are the command's in
        ticks and lots; ``book`` is its market's book as the order meets it.

        Raises:
            Divergence: if the ledger refuses the order the log accepted.
        """
        if self.ledger is None:
            return 0
        needed = self.ledger.check_order(
            cmd.account,
            cmd.symbol,
            cmd.side == "buy",
            price,
            qty,
            cmd.reduce_only,
            book,
        )
        if isinstance(needed, Refusal):
            raise Divergence(
                seq,
                f"an order the ledger refuses was not rejected: {needed.reason}",
            )
        return needed

    def reserve(self, seq: int, order: Order, margin: int) -> None:
        """Hold the margin the log says the ledger reserved for ``order``."""
        if margin:
            self._ledger(seq).reserve(order, margin)

    def release_all(self, order: Order) -> None:
        """Free all the margin an order leaving the book holds, as the core does."""
        if self.ledger is not None:
            self.ledger.release_all(order)

    def settle(self, seq: int, fill: OrderFilled, taker: Order, maker: Order) -> None:
        """Do a fill's bookkeeping that no snapshot event carries.

        Called before the fill's lots leave ``taker`` and ``maker``, so their
        ``remaining`` is the open quantity the core's release saw.

        Raises:
            Divergence: if the fill charges fees in a journal without margin.
        """
        ledger = self.ledger
        if ledger is None:
            if fill.taker_fee or fill.maker_fee:
                raise Divergence(
                    seq, f"fill {fill.trade_id} charges fees without margin"
                )
            return
        ledger.release(maker, fill.qty, maker.remaining)
        ledger.release(taker, fill.qty, taker.remaining)
        ledger.settlement.fees_collected += fill.taker_fee + fill.maker_fee
        ledger.markets[fill.symbol].on_trade(fill.price)  # as `Ledger.settle`
        self._marks_touched[fill.symbol] = None
        taker_lots = fill.qty if fill.taker_side == "buy" else -fill.qty
        self._settling.append(
            (fill.taker_account, fill.symbol, taker_lots, fill.taker_fee)
        )
        self._settling.append(
            (fill.maker_account, fill.symbol, -taker_lots, fill.maker_fee)
        )

    # ------------------------------------------------------------ ledger events

    def _ledger(self, seq: int) -> Ledger:
        """Return the ledger, or raise `Divergence` for a margin event without one."""
        if self.ledger is None:
            raise Divergence(seq, "a margin event in a journal recorded without margin")
        return self.ledger

    def _insurance(self, seq: int, event: InsuranceFundChanged) -> None:
        """Set the insurance fund, checking the move against its last balance."""
        ledger = self._ledger(seq)
        if event.amount != event.balance - ledger.settlement.insurance_fund:
            raise Divergence(
                seq,
                f"insurance fund moves {event.amount} from "
                f"{ledger.settlement.insurance_fund} to {event.balance}",
            )
        ledger.settlement.insurance_fund = event.balance
        ledger.settlement.bad_debt = event.bad_debt

    def _mark(self, seq: int, event: MarkPriceChanged) -> None:
        """Refresh the touched marks now: a logged change marks a round.

        The core refreshes every touched mark in one round, then fires mark
        triggers (whose fills touch marks again) and repeats; so refresh
        what is touched here, against the book as it stood at that moment.
        """
        self._refresh_round(seq)
        self._logged_marks.append(event)

    def _margin_call(self, seq: int, event: MarginCall) -> None:
        """Note the liquidation the margin call asks for."""
        liquidator = self.core.liquidator
        if liquidator is None:
            raise Divergence(seq, "a margin call without margin")
        liquidator.pending[event.account, event.symbol] = None

    def _funding(self, seq: int, event: FundingPaid) -> None:
        """Check a funding payment is due at this time, rate and mark."""
        ledger = self._ledger(seq)
        tick = (event.symbol, event.funding_ts_ns, event.rate)
        if tick not in self._funding_ticks or (
            event.mark != ledger.markets[event.symbol].mark
        ):
            raise Divergence(
                seq, f"funding {event!r} is not due at this time, rate and mark"
            )

    def _risk_limits(self, seq: int, event: RiskLimitsSet) -> None:
        """Set an account's risk limits."""
        account = self._ledger(seq).settlement.account(event.account)
        account.max_order_margin_ppm = event.max_order_margin_ppm
        account.daily_loss_limit = event.daily_loss_limit

    def _balance(self, seq: int, event: BalanceChanged) -> None:
        """Set a cross wallet from the log, checking the move against the last one."""
        ledger = self._ledger(seq)
        account = ledger.settlement.account(event.account)
        if event.wallet < 0 or event.amount != event.wallet - account.wallet:
            raise Divergence(
                seq,
                f"{event.account}'s wallet moves {event.amount} from "
                f"{account.wallet} to {event.wallet}",
            )
        account.wallet = event.wallet
        if event.reason == "deposit":
            ledger.settlement.deposits += event.amount
        elif event.reason == "withdraw":
            ledger.settlement.withdrawals -= event.amount

    def _position(self, seq: int, event: PositionChanged) -> None:
        """Set a position from its snapshot, checking what can be checked.

        A change owed by a fill must move the size by the fill's lots and pay
        its fee. Any other change pays no fee; if it moves the size (only
        auto-deleveraging does), the `PositionDeleveraged` that follows must
        account for it before the record ends.
        """
        ledger = self._ledger(seq)
        if event.symbol not in ledger.markets:
            raise Divergence(seq, f"position in unknown symbol {event.symbol!r}")
        owner = ledger.settlement.account(event.account)
        position = owner.position(event.symbol)
        key = (event.account, event.symbol)
        # A fill or a deleveraging (the only size changes) books the day's PnL.
        settled = bool(self._settling) or event.size != position.size
        if self._settling:
            account, symbol, lots, fee = self._settling.popleft()
        else:
            account, symbol, lots, fee = *key, event.size - position.size, 0
            if lots:
                self._unexplained[key] = self._unexplained.get(key, 0) + lots
        if (
            (account, symbol) != key
            or event.size - position.size != lots
            or event.fee != fee
            or (not event.size and event.cost)
            or event.margin < 0
            or (event.mode == "cross" and event.margin)
            or event.leverage < 1
        ):
            raise Divergence(
                seq,
                f"position change {event!r} does not follow "
                f"{position.row()} (expected {lots:+} lots of "
                f"{account} {symbol}, fee {fee})",
            )
        if settled:
            owner.book_day(ledger.settlement.day, event.realized - event.fee)
        position.size = event.size
        position.cost = event.cost
        position.margin = event.margin
        position.mode = event.mode
        position.leverage = event.leverage

    def _liquidated(self, seq: int, event: PositionLiquidated) -> None:
        """Check a liquidation's lots add up and the position kept ``left`` lots."""
        account = self._ledger(seq).accounts.get(event.account)
        position = None if account is None else account.positions.get(event.symbol)
        left = 0 if position is None else abs(position.size)
        if event.filled + event.deleveraged != event.qty or left != event.left:
            raise Divergence(
                seq,
                f"liquidation of {event.qty} lots filled {event.filled} and "
                f"deleveraged {event.deleveraged}, leaving {event.left}; the "
                f"position holds {left}",
            )

    def _deleveraged(self, seq: int, event: PositionDeleveraged) -> None:
        """Explain a deleveraging's two size changes: opposite, ``qty`` lots each."""
        unexplained = self._unexplained
        moved = unexplained.pop((event.account, event.symbol), 0)
        bankrupt = (event.counterparty, event.symbol)
        rest = unexplained.pop(bankrupt, 0) + moved
        if abs(moved) != event.qty or rest:
            raise Divergence(
                seq,
                f"deleveraging of {event.qty} lots between "
                f"{event.account} and {event.counterparty} does "
                "not match their position changes",
            )

    def _index(self, seq: int, cmd: SetIndexPrice, events: list[Event]) -> None:
        """Take an index price the core accepted (an outside fact of the record)."""
        if any(isinstance(e, CommandRejected) for e in events):
            return
        if cmd.symbol not in self.core.markets:
            raise Divergence(
                seq, f"index price for unknown symbol {cmd.symbol!r} was not rejected"
            )
        # The book is the one the core saw: nothing before the index moves it.
        self._ledger(seq).markets[cmd.symbol].take_index(
            cmd.price, self.core.ts_ns, self.core.markets[cmd.symbol].book
        )
        self._marks_touched[cmd.symbol] = None

    def _refresh_round(self, seq: int) -> None:
        """Refresh every touched mark now, as one round of the core's refresh loop."""
        if self._marks_touched:
            ledger = self._ledger(seq)
            for symbol in self._marks_touched:
                ledger.markets[symbol].refresh_mark(
                    seq,
                    self.core.markets[symbol].book,
                    self.core.ts_ns,
                    self._produced_marks,
                )
            self._marks_touched.clear()

    def _refresh_marks(self, seq: int) -> None:
        """Finish the record's last refresh round; compare the marks with the log."""
        self._refresh_round(seq)
        produced, logged = self._produced_marks, self._logged_marks
        if produced != logged:
            raise Divergence(
                seq, f"mark prices {produced!r} rebuilt, log says {logged!r}"
            )
        produced.clear()
        logged.clear()
