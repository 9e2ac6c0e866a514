"""Plots of runs as PNG files (matplotlib, Agg backend: no display needed).

`plot_what_if`: equity curves of the recorded and the flipped run per account,
liquidations marked. `plot_report`: the equity curves of a run's most active
accounts, and each market's mark, liquidations marked. `plot_run` (the
demo's): both in one picture, each market's mark over every account's equity
as a percentage of its deposits, dashed where the account held isolated
positions only. Times are seconds, minutes or hours since the run's first
record, whichever suits its length; equity is USDT.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import matplotlib as mpl

mpl.use("Agg")  # files only: never a window, never a display server
import matplotlib.pyplot as plt

if TYPE_CHECKING:
    from pathlib import Path

    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from replay.stats import AccountStats, MarketStats, RunStats
    from replay.whatif import WhatIf

__all__ = ["plot_report", "plot_run", "plot_what_if"]

_E8 = 1e8  # display only: plots are pictures, never numbers read back
_UNITS = ((10**9, "seconds"), (60 * 10**9, "minutes"), (3600 * 10**9, "hours"))


@dataclass(frozen=True)
class _Clock:
    """The time axis of a plot: from the first record to the last, in one unit."""

    start: int
    end: int
    unit_ns: int
    label: str

    def at(self, ts_ns: int) -> float:
        """Return an exchange time as units since the start."""
        return (ts_ns - self.start) / self.unit_ns


def _clock(*runs: RunStats) -> _Clock:
    """Return the axis spanning ``runs``, in the largest unit they last 3 of."""
    start = min(r.first_ts for r in runs)
    end = max(r.last_ts for r in runs)
    fitting = [u for u in _UNITS if end - start >= 3 * u[0]] or [_UNITS[0]]
    unit_ns, unit = fitting[-1]
    return _Clock(start, end, unit_ns, f"{unit} since the first record")


def _curve(
    ax: Axes,
    stats: AccountStats,
    clock: _Clock,
    label: str,
    style: str,
    *,
    relative: bool = False,
) -> None:
    """Draw one account's equity curve to the run's end, and its liquidations.

    ``relative``: as a percentage gained or lost on its net deposits.
    """
    if not stats.curve or (relative and stats.deposits <= 0):
        return

    def value(equity: int) -> float:
        """Return an equity (E8) as drawn: USDT, or % gained on the deposits."""
        if relative:
            return 100 * (equity - stats.deposits) / stats.deposits
        return equity / _E8

    end = (max(clock.end, stats.curve[-1][0]), stats.curve[-1][1])
    points = [*stats.curve, end]
    ax.step(
        [clock.at(ts) for ts, _ in points],
        [value(eq) for _, eq in points],
        style,
        where="post",
        label=label,
    )
    if stats.liquidations:
        ax.plot(
            [clock.at(liq.ts_ns) for liq in stats.liquidations],
            [value(liq.equity_after) for liq in stats.liquidations],
            "x",
            color="red",
            markersize=9,
            label=f"{label}: liquidated",
        )


def _marks(ax: Axes, stats: RunStats, market: MarketStats, clock: _Clock) -> None:
    """Draw a market's mark price, a red cross at each of its liquidations."""
    ax.step(
        [clock.at(ts) for ts, _ in market.marks],
        [mark / _E8 for _, mark in market.marks],
        where="post",
        linewidth=1,
    )
    liquidations = [
        liq
        for a in stats.accounts.values()
        for liq in a.liquidations
        if liq.symbol == market.symbol
    ]
    ax.plot(
        [clock.at(liq.ts_ns) for liq in liquidations],
        [liq.mark / _E8 for liq in liquidations],
        "x",
        color="red",
        label=f"liquidations ({len(liquidations)})",
    )
    ax.set_ylabel(f"{market.symbol} mark")
    if liquidations:
        ax.legend(loc="upper left", fontsize="small")


def _save(fig: Figure, path: Path) -> Path:
    """Write the figure to ``path`` as a PNG, free it, return the path."""
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_what_if(result: WhatIf, path: Path, top: int = 6) -> Path:
    """Write the equity curves of both runs for the ``top`` accounts; return path."""
    names = result.accounts()[:top] or ["-"]
    clock = _clock(result.recorded, result.flipped)
    fig, axes = plt.subplots(len(names), 1, figsize=(10, 3 * len(names)), squeeze=False)
    for ax, name in zip(axes[:, 0], names, strict=True):
        rec, alt = result.recorded.account(name), result.flipped.account(name)
        _curve(ax, rec, clock, f"recorded ({rec.mode_label})", "-")
        _curve(ax, alt, clock, f"what-if ({alt.mode_label})", "--")
        ax.set_title(name)
        ax.set_ylabel("equity (USDT)")
        ax.legend(loc="best", fontsize="small")
    axes[-1, 0].set_xlabel(clock.label)
    return _save(fig, path)


def plot_report(stats: RunStats, out: Path, top: int = 8) -> list[Path]:
    """Write ``equity.png`` (``top`` accounts) and ``marks.png`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    clock = _clock(stats)
    fig, ax = plt.subplots(figsize=(10, 5))
    active = sorted(stats.accounts.values(), key=lambda a: (-a.notional, a.name))
    for account in active[:top]:
        _curve(ax, account, clock, account.name, "-")
    ax.set_xlabel(clock.label)
    ax.set_ylabel("equity (USDT)")
    ax.legend(loc="best", fontsize="small")
    equity = _save(fig, out / "equity.png")
    markets = sorted(stats.markets.values(), key=lambda m: m.symbol)
    fig, axes = plt.subplots(
        len(markets), 1, figsize=(10, 3 * len(markets)), squeeze=False
    )
    for ax, market in zip(axes[:, 0], markets, strict=True):
        _marks(ax, stats, market, clock)
        ax.set_title(f"{market.symbol} mark, liquidations marked")
    axes[-1, 0].set_xlabel(clock.label)
    return [equity, _save(fig, out / "marks.png")]


def plot_run(stats: RunStats, path: Path, title: str) -> Path:
    """Write the run in one PNG: each market's mark, then every account's equity.

    Equity is a percentage of the account's net deposits, so accounts of any
    size share the panel; each is labelled with its modes and leverages.
    """
    markets = sorted(stats.markets.values(), key=lambda m: m.symbol)
    clock = _clock(stats)
    fig, axes = plt.subplots(
        len(markets) + 1,
        1,
        figsize=(11, 3 + 2.6 * len(markets)),
        sharex=True,
        squeeze=False,
    )
    for ax, market in zip(axes[:, 0], markets, strict=False):
        _marks(ax, stats, market, clock)
        ax.grid(alpha=0.3)
    equity = axes[-1, 0]
    for account in sorted(stats.accounts.values(), key=lambda a: a.name):
        style = "--" if account.modes == {"isolated"} else "-"
        label = f"{account.name} ({account.mode_label} {account.leverage_label})"
        _curve(equity, account, clock, label, style, relative=True)
    equity.axhline(0, color="grey", linewidth=0.6)
    equity.set_ylabel("equity, % of deposits")
    equity.set_xlabel(clock.label)
    equity.grid(alpha=0.3)
    equity.legend(
        loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small", frameon=False
    )
    axes[0, 0].set_title(
        f"{title}: {stats.fills:,} fills, {stats.liquidations} liquidations "
        "(dashed: isolated, solid: cross)"
    )
    return _save(fig, path)
