"""The report of one run: per-account and per-market statistics, as tables or data.

`run_report` folds a journal into `RunStats` (through a rebuild, see
`replay.whatif.recorded_stats`); `report_json` returns it as plain data
(amounts as decimal strings), `report_text` as tables: the markets, the
accounts (the most active first), and their requests with the rejects by
code; then the stress settings the venue ran under, if any (how each client
fared, under a stressed venue too).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from replay.fmt import e8_text, iso_utc, money, table
from replay.whatif import account_json

if TYPE_CHECKING:
    from replay.stats import AccountStats, RunStats

__all__ = ["report_json", "report_text"]


def report_json(stats: RunStats) -> dict[str, Any]:
    """Return the report as plain data: records, markets and accounts."""
    return {
        "records": stats.records,
        "markets": {
            s: {
                "fills": m.fills,
                "volume": e8_text(m.volume),
                "notional": e8_text(m.notional),
                "fees": e8_text(m.fees),
                "liquidations": m.liquidations,
                "adl": m.adl,
                "funding_paid": e8_text(m.funding_paid),
                "last_mark": e8_text(m.marks[-1][1]) if m.marks else None,
            }
            for s, m in sorted(stats.markets.items())
        },
        "accounts": {n: account_json(a) for n, a in sorted(stats.accounts.items())},
        "stress": [
            {"seq": seq, "time": iso_utc(ts), "settings": json.loads(settings)}
            for seq, ts, settings in stats.stress
        ],
    }


def report_text(stats: RunStats, top: int = 20) -> str:
    """Return the report as tables; ``top`` accounts by traded notional."""
    markets = [
        [
            s,
            f"{m.fills:,}",
            e8_text(m.volume),
            money(m.notional),
            money(m.fees),
            str(m.liquidations),
            str(m.adl),
            money(m.funding_paid),
        ]
        for s, m in sorted(stats.markets.items())
    ]
    header = ["market", "fills", "volume", "notional", "fees", "liq.", "adl"]
    lines = [
        f"{stats.records:,} records",
        "",
        table([*header, "funding paid"], markets),
        "",
    ]
    accounts = sorted(stats.accounts.values(), key=lambda a: (-a.notional, a.name))
    rows = [
        [
            a.name,
            f"{a.fills:,}",
            money(a.notional),
            money(a.fees),
            money(a.realized),
            money(-a.funding),
            str(len(a.liquidations)),
            ", ".join(f"{s} {e8_text(q)}" for s, q in sorted(a.max_position.items())),
            money(a.max_drawdown),
            money(a.equity),
        ]
        for a in accounts[:top]
    ]
    header = ["account", "fills", "notional", "fees", "realized", "funding", "liq."]
    lines.append(
        table([*header, "max position", "max drawdown", "equity"], rows)
        if rows
        else "no accounts"
    )
    if len(accounts) > top:
        lines.append(f"... and {len(accounts) - top:,} more accounts (--top, --json)")
    return "\n".join(lines + _coping(stats, accounts[:top]))


def _coping(stats: RunStats, accounts: list[AccountStats]) -> list[str]:
    """Return the lines on how clients fared: requests, rejects by code, stress."""
    lines = []
    senders = [a for a in accounts if a.requests]
    if senders:
        lines += [
            "",
            table(
                ["account", "requests", "rejected", "rejects by code"],
                [
                    [
                        a.name,
                        f"{a.requests:,}",
                        f"{sum(a.rejects.values()):,}",
                        ", ".join(
                            f"{name} {n:,}" for name, n in a.rejects.most_common()
                        )
                        or "-",
                    ]
                    for a in senders
                ],
            ),
        ]
    for seq, ts, settings in stats.stress:
        lines += ["", f"stress from record {seq:,} ({iso_utc(ts)}): {settings}"]
    return lines
