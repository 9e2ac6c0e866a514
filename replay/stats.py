"""The statistics of one run: a fold of its records' events, per account and market.

`RunStats.observe(record, events, ledger)` is called after each record, with
the state the record left (a rebuild's or a rerun's ledger), and adds up:

* per account: its requests (the commands it sent: orders, cancels,
  amends, leverage and margin settings) and their rejects by code (what a
  client under test made of a stressed venue), fills, traded notional,
  fees, realized PnL, funding, the
  liquidations (time, market, mode, size, mark and bankruptcy price, and
  whether the cross wallet ended that record lower: an isolated liquidation
  takes at most its bucket, so it never does), auto-deleveraging,
  the largest absolute position per market, the margin modes and leverages
  of the positions it held, the result of every position from open to flat,
  and the equity curve: equity (wallets plus unrealized
  PnL, `equity_e8`) after every record that moved a wallet, a position, or
  the mark of a market the account holds, with its worst drawdown;
* per market: fills, volume, notional, fees, liquidations, ADL, funding
  paid, and the mark after every change;
* the stress settings the run declared (`DeclareStress`), with the record
  they took effect at (injected rejects, INJECTED_REJECT, are among the
  accounts' rejects).

All amounts are ints of E8 (USDT), as in the events; readers turn them into
`Decimal` for display.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from exchange.codes import RejectCode
from exchange.messages import (
    BalanceChanged,
    CommandRejected,
    DeclareStress,
    Deposit,
    Event,
    FundingPaid,
    Liquidate,
    MarkPriceChanged,
    OrderFilled,
    PositionChanged,
    PositionDeleveraged,
    PositionLiquidated,
    Record,
    Withdraw,
)
from exchange.shell.account_views import equity_e8
from exchange.units import SCALE

if TYPE_CHECKING:
    from exchange.margin.ledger import Ledger
    from exchange.markets import Market

__all__ = ["AccountStats", "Liquidation", "MarketStats", "RunStats"]


_NOT_REQUESTS = (Deposit, Withdraw, Liquidate)  # the operator's and the exchange's


def _code_name(code: int) -> str:
    """Return a reject code's name ("INSUFFICIENT_MARGIN"), or the number if unknown."""
    try:
        return RejectCode(code).name
    except ValueError:
        return str(code)


@dataclass(frozen=True)
class Liquidation:
    """One liquidation step of one position (prices and amounts E8)."""

    seq: int
    ts_ns: int
    symbol: str
    mode: str
    qty: int  # E8 base units
    mark: int
    bankruptcy_price: int
    equity_after: int
    wallet_touched: bool  # the cross wallet ended this record lower


@dataclass
class AccountStats:
    """What one account did and went through in a run (amounts E8)."""

    name: str
    requests: int = 0  # commands it sent (not deposits, withdrawals or system ones)
    rejects: Counter[str] = field(default_factory=Counter)  # by code name
    fills: int = 0
    notional: int = 0
    fees: int = 0
    realized: int = 0
    funding: int = 0  # paid (> 0) or received (< 0)
    liquidation_fees: int = 0  # clearance fees and surpluses the fund took
    deposits: int = 0  # deposits less withdrawals
    adl: int = 0  # positions auto-deleveraged against a bankrupt one
    liquidations: list[Liquidation] = field(default_factory=list)
    max_position: dict[str, int] = field(default_factory=dict)  # E8 base units
    largest_loss: int = 0  # the worst result of one position, open to flat (<= 0)
    modes: set[str] = field(default_factory=set)  # of the positions it held
    leverages: set[int] = field(default_factory=set)  # of the positions it held
    curve: list[tuple[int, int]] = field(default_factory=list)  # (ts_ns, equity)
    peak: int = 0  # of equity less net deposits (the run's PnL)
    max_drawdown: int = 0  # the largest fall of that PnL from its peak
    equity: int = 0

    @property
    def net_realized(self) -> int:
        """Return realized PnL less fees, funding paid and liquidation fees."""
        return self.realized - self.fees - self.funding - self.liquidation_fees

    @property
    def pnl(self) -> int:
        """Return the run's result: equity less net deposits (fees, funding in)."""
        return self.equity - self.deposits

    @property
    def mode_label(self) -> str:
        """Return its positions' margin modes, e.g. ``isolated``; ``-`` if none."""
        return "/".join(sorted(self.modes)) or "-"

    @property
    def leverage_label(self) -> str:
        """Return its positions' leverages, e.g. ``20x``; ``-`` if none."""
        return "/".join(f"{x}x" for x in sorted(self.leverages)) or "-"

    @property
    def wallet_touched(self) -> bool:
        """Return whether any liquidation took money from the cross wallet."""
        return any(liq.wallet_touched for liq in self.liquidations)

    def mark_to_market(self, ts_ns: int, equity: int) -> None:
        """Add an equity point (if it moved) and follow the peak and drawdown."""
        if self.curve and self.curve[-1][1] == equity:
            return
        self.curve.append((ts_ns, equity))
        self.equity = equity
        pnl = self.pnl  # a deposit or withdrawal is no gain or loss
        self.peak = max(self.peak, pnl)
        self.max_drawdown = max(self.max_drawdown, self.peak - pnl)


@dataclass
class MarketStats:
    """What happened in one market (amounts E8, volume in E8 base units)."""

    symbol: str
    fills: int = 0
    volume: int = 0
    notional: int = 0
    fees: int = 0
    liquidations: int = 0
    adl: int = 0
    funding_paid: int = 0  # the sum the paying side paid
    marks: list[tuple[int, int]] = field(default_factory=list)  # (ts_ns, mark)


class RunStats:
    """The statistics of one run, folded record by record (module docstring)."""

    def __init__(self, markets: list[Market]) -> None:
        """Start empty for a run over ``markets``."""
        self.specs = {m.symbol: m for m in markets}
        self.accounts: dict[str, AccountStats] = {}
        self.markets = {m.symbol: MarketStats(m.symbol) for m in markets}
        self.records = 0
        self.first_ts = 0
        self.last_ts = 0
        self.stress: list[tuple[int, int, str]] = []  # (seq, ts_ns, settings JSON)
        self._holders: dict[str, set[str]] = {m.symbol: set() for m in markets}
        self._life: dict[tuple[str, str], int] = {}  # open position -> its result
        self._closed: set[tuple[str, str]] = set()  # positions the record closed

    @property
    def fills(self) -> int:
        """Return the number of fills in every market."""
        return sum(m.fills for m in self.markets.values())

    @property
    def liquidations(self) -> int:
        """Return the number of liquidation steps in every market."""
        return sum(m.liquidations for m in self.markets.values())

    def account(self, name: str) -> AccountStats:
        """Return an account's stats, created empty on first use."""
        stats = self.accounts.get(name)
        if stats is None:
            stats = self.accounts[name] = AccountStats(name)
        return stats

    def observe(
        self, record: Record, events: list[Event], ledger: Ledger | None
    ) -> None:
        """Fold one record's events; ``ledger`` holds the state it left (margin)."""
        if not self.records:
            self.first_ts = record.ts_ns
        self.records += 1
        ts = self.last_ts = record.ts_ns
        sender = getattr(record.command, "account", "")
        if sender and not isinstance(record.command, _NOT_REQUESTS):
            self._request(self.account(sender), events)
        elif type(record.command) is DeclareStress:
            self.stress.append((record.seq, ts, record.command.settings))
        touched: set[str] = set()
        for event in events:
            self._event(ts, event, touched)
        self._close_positions()
        if ledger is None:
            return
        for name in touched:
            self.account(name).mark_to_market(ts, equity_e8(ledger, name))
        for event in events:
            if type(event) is PositionLiquidated:
                self._liquidated(record, events, event, ledger)

    @staticmethod
    def _request(stats: AccountStats, events: list[Event]) -> None:
        """Count a request of the account, and its reject if it was refused."""
        stats.requests += 1
        for event in events:
            if type(event) is CommandRejected:
                stats.rejects[_code_name(event.code)] += 1

    def _event(self, ts: int, event: Event, touched: set[str]) -> None:
        """Fold one event; note the accounts whose equity it may move."""
        match event:
            case OrderFilled():
                self._fill(event)
                touched.update((event.taker_account, event.maker_account))
            case PositionChanged():
                self._position(event)
                touched.add(event.account)
            case BalanceChanged():
                if event.reason in {"deposit", "withdraw"}:
                    self.account(event.account).deposits += event.amount
                touched.add(event.account)
            case FundingPaid():
                self.account(event.account).funding += event.amount
                key = (event.account, event.symbol)
                self._life[key] = self._life.get(key, 0) - event.amount
                if event.amount > 0:
                    self.markets[event.symbol].funding_paid += event.amount
                touched.add(event.account)
            case MarkPriceChanged():
                self.markets[event.symbol].marks.append((ts, event.mark))
                touched.update(self._holders[event.symbol])
            case PositionLiquidated():
                stats = self.account(event.account)
                stats.liquidation_fees += event.fee + event.surplus
                key = (event.account, event.symbol)
                self._life[key] = self._life.get(key, 0) - event.fee - event.surplus
                self.markets[event.symbol].liquidations += 1
            case PositionDeleveraged():
                self.account(event.account).adl += 1
                self.markets[event.symbol].adl += 1
            case _:
                pass

    def _fill(self, fill: OrderFilled) -> None:
        """Count a trade for both sides and its market."""
        spec = self.specs[fill.symbol]
        qty = fill.qty * spec.lot_size
        notional = qty * fill.price * spec.tick_size // SCALE  # exact on the grid
        market = self.markets[fill.symbol]
        market.fills += 1
        market.volume += qty
        market.notional += notional
        market.fees += fill.taker_fee + fill.maker_fee
        for name in (fill.taker_account, fill.maker_account):
            stats = self.account(name)
            stats.fills += 1
            stats.notional += notional

    def _position(self, event: PositionChanged) -> None:
        """Follow a position: fees, realized PnL, size, and its result when flat."""
        stats = self.account(event.account)
        stats.fees += event.fee
        stats.realized += event.realized
        size = abs(event.size) * self.specs[event.symbol].lot_size
        if size > stats.max_position.get(event.symbol, 0):
            stats.max_position[event.symbol] = size
        if event.size:
            stats.modes.add(event.mode)
            stats.leverages.add(event.leverage)
        key = (event.account, event.symbol)
        result = self._life.get(key, 0) + event.realized - event.fee
        self._life[key] = result
        holders = self._holders[event.symbol]
        if event.size:
            holders.add(event.account)
            self._closed.discard(key)
        else:  # its liquidation's fees may follow in the record: closed at its end
            holders.discard(event.account)
            self._closed.add(key)

    def _close_positions(self) -> None:
        """Count the result of every position the record closed."""
        for key in self._closed:
            stats = self.account(key[0])
            stats.largest_loss = min(stats.largest_loss, self._life.pop(key))
        self._closed.clear()

    def _liquidated(
        self,
        record: Record,
        events: list[Event],
        event: PositionLiquidated,
        ledger: Ledger,
    ) -> None:
        """Record one liquidation step, and whether the cross wallet paid for it."""
        stats = self.account(event.account)
        spec = self.specs[event.symbol]
        # the net move: a returned isolated remainder may pay the clearance fee
        touched = (
            sum(
                e.amount
                for e in events
                if type(e) is BalanceChanged and e.account == event.account
            )
            < 0
        )
        stats.liquidations.append(
            Liquidation(
                seq=record.seq,
                ts_ns=record.ts_ns,
                symbol=event.symbol,
                mode=event.mode,
                qty=event.qty * spec.lot_size,
                mark=ledger.markets[event.symbol].mark,
                bankruptcy_price=event.bankruptcy_price * spec.tick_size,
                equity_after=stats.equity,
                wallet_touched=touched,
            )
        )

    def finish(self, ledger: Ledger | None) -> None:
        """Count the positions still open at the end, marked at the last mark."""
        for (name, symbol), result in self._life.items():
            marked = result
            if ledger is not None:
                position = ledger.accounts[name].positions[symbol]
                marked += ledger.markets[symbol].upnl(position)
            stats = self.account(name)
            stats.largest_loss = min(stats.largest_loss, marked)
        self._life.clear()
