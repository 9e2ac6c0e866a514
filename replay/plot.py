"""The PNG report of a run: mark prices with liquidations, equity per account.

One panel per market (its mark price, a red marker at each liquidation) and
one of every account's equity as a percentage of its deposits: solid lines
for cross margin, dashed for isolated, so the two modes read apart at a
glance. Drawn by matplotlib's Agg backend: no display needed. Floats appear
here only, to draw; the report's numbers stay Decimal.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib as mpl

mpl.use("Agg")  # files only, never a window: before pyplot is imported

import matplotlib.pyplot as plt

from replay.report import RunReport, Series

__all__ = ["plot_report"]

_NS_PER_S = 1e9


def plot_report(report: RunReport, path: Path, title: str = "paperx run") -> Path:
    """Draw ``report`` into the PNG file ``path`` and return the path."""
    symbols = sorted(report.marks)
    figure, axes = plt.subplots(
        len(symbols) + 1, 1, figsize=(11, 3 + 2.6 * len(symbols)), sharex=True
    )
    for ax, symbol in zip(axes, symbols, strict=False):
        times, prices = _columns(report.marks[symbol])
        ax.plot(times, prices, color="tab:blue", linewidth=1)
        hits = [p for p in report.liquidations if p.symbol == symbol]
        if hits:
            ax.scatter(
                [p.t_ns / _NS_PER_S for p in hits],
                [float(p.mark) for p in hits],
                marker="v",
                color="tab:red",
                zorder=3,
                label=f"liquidations ({len(hits)})",
            )
            ax.legend(loc="upper left", fontsize="small")
        ax.set_ylabel(f"{symbol} mark")
        ax.grid(alpha=0.3)
    equity = axes[-1]
    for account in sorted(report.accounts.values(), key=lambda a: a.account):
        if not account.deposits:
            continue
        times, values = _columns(account.equity)
        base = float(account.deposits)
        style = "--" if account.mode == "isolated" else "-"
        label = f"{account.account} ({account.mode} {account.leverage_label})"
        equity.plot(
            times,
            [100 * (v - base) / base for v in values],
            style,
            linewidth=1.2,
            label=label,
        )
    equity.axhline(0, color="grey", linewidth=0.6)
    equity.set_ylabel("equity, % of deposits")
    equity.set_xlabel("seconds")
    equity.grid(alpha=0.3)
    equity.legend(
        loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small", frameon=False
    )
    axes[0].set_title(
        f"{title}: {report.fills:,} fills, {len(report.liquidations)} liquidations "
        "(dashed: isolated, solid: cross)"
    )
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def _columns(series: Series) -> tuple[list[float], list[float]]:
    """Return a series' times (s) and values as floats, to draw."""
    return [t / _NS_PER_S for t, _ in series], [float(v) for _, v in series]
