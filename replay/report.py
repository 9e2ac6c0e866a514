"""A run's report from its journal: marks, liquidations, each account's equity.

Folding the journal (`replay.rebuild.Rebuilder`) gives the state after every
record, so the report reads what the exchange itself knew, when it knew it:
each market's mark price, and each account's equity (wallet plus unrealized
PnL at the mark, `exchange.shell.account_views.balance_view`) sampled every
``interval_ms`` of exchange time and at every liquidation; each account's
fees (trading and liquidation), its liquidations, and the margin mode and
leverage it chose. Times are ns since the first record; money is Decimal USDT.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from exchange.margin.ledger import Ledger
from exchange.messages import (
    Command,
    CommandRejected,
    Deposit,
    Event,
    OrderFilled,
    PositionLiquidated,
    SetLeverage,
    SetMarginMode,
)
from exchange.shell.account_views import balance_view
from exchange.units import from_e8
from replay.log import ExchangeLog
from replay.rebuild import Rebuilder

__all__ = ["AccountReport", "LiquidationPoint", "RunReport", "Series", "run_report"]

Series = list[tuple[int, Decimal]]
"""(ns since the first record, value) pairs, in time order."""


@dataclass(frozen=True, slots=True)
class LiquidationPoint:
    """A liquidation: when, whose, which market, and its mark at that moment."""

    t_ns: int
    account: str
    symbol: str
    mode: str
    mark: Decimal


@dataclass(slots=True)
class AccountReport:
    """One account over the run."""

    account: str
    deposits: Decimal = Decimal(0)
    fees: Decimal = Decimal(0)
    liquidations: int = 0
    modes: dict[str, str] = field(default_factory=dict)  # symbol -> mode
    leverage: dict[str, int] = field(default_factory=dict)  # symbol -> leverage
    equity: Series = field(default_factory=list)

    @property
    def final_equity(self) -> Decimal:
        """Return the equity at the end of the run (the deposits if never sampled)."""
        return self.equity[-1][1] if self.equity else self.deposits

    @property
    def pnl(self) -> Decimal:
        """Return the equity gained over the deposits (fees and funding included)."""
        return self.final_equity - self.deposits

    @property
    def worst_drawdown(self) -> Decimal:
        """Return the largest fall of equity from an earlier peak (>= 0)."""
        worst = Decimal(0)
        peak = self.deposits
        for _, value in self.equity:
            peak = max(peak, value)
            worst = max(worst, peak - value)
        return worst

    @property
    def mode(self) -> str:
        """Return the margin modes it chose, e.g. ``isolated`` (default: cross)."""
        return "/".join(sorted(set(self.modes.values()))) or "cross"

    @property
    def leverage_label(self) -> str:
        """Return the leverage(s) it set, e.g. ``20x``; ``-`` if it set none."""
        values = sorted(set(self.leverage.values()))
        return "/".join(f"{v}x" for v in values) or "-"


@dataclass(slots=True)
class RunReport:
    """What a journal tells about a run."""

    records: int = 0
    fills: int = 0
    duration_ns: int = 0
    marks: dict[str, Series] = field(default_factory=lambda: defaultdict(list))
    liquidations: list[LiquidationPoint] = field(default_factory=list)
    accounts: dict[str, AccountReport] = field(default_factory=dict)

    def account(self, name: str) -> AccountReport:
        """Return the report of ``name``, started on first use."""
        report = self.accounts.get(name)
        if report is None:
            report = self.accounts[name] = AccountReport(name)
        return report


def run_report(log: ExchangeLog, interval_ms: int = 250) -> RunReport:
    """Fold the journal and return its report, sampled every ``interval_ms``.

    Raises:
        Divergence: the journal does not fold (`replay verify` says where).
    """
    rebuilder = Rebuilder(log.markets, margin=True)
    ledger = rebuilder.ledger
    assert ledger is not None  # margin=True
    report = RunReport()
    start = next_sample = -1
    for entry in log.entries():
        rebuilder.apply(entry)
        record = entry.record
        if start < 0:
            start = next_sample = record.ts_ns
        t_ns = record.ts_ns - start
        report.records += 1
        report.duration_ns = t_ns
        liquidated = _take_record(report, record.command, entry.events)
        for event in liquidated:
            mark = from_e8(ledger.markets[event.symbol].mark)
            report.liquidations.append(
                LiquidationPoint(t_ns, event.account, event.symbol, event.mode, mark)
            )
        if liquidated or record.ts_ns >= next_sample:
            _sample(report, ledger, t_ns)
            next_sample = record.ts_ns + interval_ms * 1_000_000
    if report.records:
        _sample(report, ledger, report.duration_ns)
    return report


def _take_record(
    report: RunReport, command: Command, events: Sequence[Event]
) -> list[PositionLiquidated]:
    """Count a record's deposits, settings, fills and fees; return its liquidations."""
    accepted = not any(type(e) is CommandRejected for e in events)
    match command:
        case Deposit() if accepted:
            report.account(command.account).deposits += from_e8(command.amount)
        case SetMarginMode() if accepted:
            report.account(command.account).modes[command.symbol] = command.mode
        case SetLeverage() if accepted:
            report.account(command.account).leverage[command.symbol] = command.leverage
        case _:
            pass
    liquidated = []
    for event in events:
        if type(event) is OrderFilled:
            report.fills += 1
            report.account(event.taker_account).fees += from_e8(event.taker_fee)
            report.account(event.maker_account).fees += from_e8(event.maker_fee)
        elif type(event) is PositionLiquidated:
            account = report.account(event.account)
            account.liquidations += 1
            account.fees += from_e8(event.fee)
            liquidated.append(event)
    return liquidated


def _sample(report: RunReport, ledger: Ledger, t_ns: int) -> None:
    """Record every market's mark and every account's equity at ``t_ns``."""
    for symbol, market in ledger.markets.items():
        if market.mark:
            report.marks[symbol].append((t_ns, from_e8(market.mark)))
    for name in ledger.accounts:
        equity = balance_view(ledger, name)["total"]
        report.account(name).equity.append((t_ns, equity))
