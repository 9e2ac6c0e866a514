"""Plots of runs as PNG files (matplotlib, Agg backend: no display needed).

`plot_what_if`: equity curves of the recorded and the flipped run per account,
liquidations marked. `plot_report`: the equity curves of a run's most active
accounts, and each market's mark, liquidations marked. Times are hours since
the run's first record; equity is USDT.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import matplotlib as mpl

mpl.use("Agg")  # files only: never a window, never a display server
import matplotlib.pyplot as plt

if TYPE_CHECKING:
    from pathlib import Path

    from matplotlib.axes import Axes

    from replay.stats import AccountStats, RunStats
    from replay.whatif import WhatIf

__all__ = ["plot_report", "plot_what_if"]

_HOUR_NS = 3600 * 10**9
_E8 = 1e8  # display only: plots are pictures, never numbers read back


def _curve(
    ax: Axes, stats: AccountStats, span: tuple[int, int], label: str, style: str
) -> None:
    """Draw one account's equity curve to the run's end, and its liquidations."""
    if not stats.curve:
        return
    start, end = span
    points = [*stats.curve, (max(end, stats.curve[-1][0]), stats.curve[-1][1])]
    ax.step(
        [(ts - start) / _HOUR_NS for ts, _ in points],
        [eq / _E8 for _, eq in points],
        style,
        where="post",
        label=label,
    )
    if stats.liquidations:
        ax.plot(
            [(liq.ts_ns - start) / _HOUR_NS for liq in stats.liquidations],
            [liq.equity_after / _E8 for liq in stats.liquidations],
            "x",
            color="red",
            markersize=9,
            label=f"{label}: liquidated",
        )


def _span(*runs: RunStats) -> tuple[int, int]:
    """Return the earliest time any curve starts at, and the runs' last time."""
    starts = [a.curve[0][0] for r in runs for a in r.accounts.values() if a.curve]
    return min(starts, default=0), max(r.last_ts for r in runs)


def plot_what_if(result: WhatIf, path: Path, top: int = 6) -> Path:
    """Write the equity curves of both runs for the ``top`` accounts; return path."""
    names = result.accounts()[:top] or ["-"]
    span = _span(result.recorded, result.flipped)
    fig, axes = plt.subplots(len(names), 1, figsize=(10, 3 * len(names)), squeeze=False)
    for ax, name in zip(axes[:, 0], names, strict=True):
        rec, alt = result.recorded.account(name), result.flipped.account(name)
        _curve(ax, rec, span, f"recorded ({'/'.join(sorted(rec.modes)) or '-'})", "-")
        _curve(ax, alt, span, f"what-if ({'/'.join(sorted(alt.modes)) or '-'})", "--")
        ax.set_title(name)
        ax.set_ylabel("equity (USDT)")
        ax.legend(loc="best", fontsize="small")
    axes[-1, 0].set_xlabel("hours since the first record")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_report(stats: RunStats, out: Path, top: int = 8) -> list[Path]:
    """Write ``equity.png`` (``top`` accounts) and ``marks.png`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    span = _span(stats)
    start = span[0]
    fig, ax = plt.subplots(figsize=(10, 5))
    active = sorted(stats.accounts.values(), key=lambda a: (-a.notional, a.name))
    for account in active[:top]:
        _curve(ax, account, span, account.name, "-")
    ax.set_xlabel("hours since the first record")
    ax.set_ylabel("equity (USDT)")
    ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    equity = out / "equity.png"
    fig.savefig(equity, dpi=100)
    plt.close(fig)
    markets = sorted(stats.markets.values(), key=lambda m: m.symbol)
    fig, axes = plt.subplots(
        len(markets), 1, figsize=(10, 3 * len(markets)), squeeze=False
    )
    for ax, market in zip(axes[:, 0], markets, strict=True):
        ax.step(
            [(ts - start) / _HOUR_NS for ts, _ in market.marks],
            [mark / _E8 for _, mark in market.marks],
            where="post",
        )
        liquidations = [
            liq
            for a in stats.accounts.values()
            for liq in a.liquidations
            if liq.symbol == market.symbol
        ]
        ax.plot(
            [(liq.ts_ns - start) / _HOUR_NS for liq in liquidations],
            [liq.mark / _E8 for liq in liquidations],
            "x",
            color="red",
        )
        ax.set_title(f"{market.symbol} mark, liquidations marked")
    axes[-1, 0].set_xlabel("hours since the first record")
    fig.tight_layout()
    marks = out / "marks.png"
    fig.savefig(marks, dpi=100)
    plt.close(fig)
    return [equity, marks]
