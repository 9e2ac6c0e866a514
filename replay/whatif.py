"""The margin-mode what-if: the same commands with every account's mode flipped.

`what_if` folds the recorded run into `RunStats` (through a rebuild, so its
equity is the recorded state's) and reruns the journal with
``margin_mode=flip`` (`replay.rerun_changed.ChangedRun`: isolated becomes
cross and cross isolated, for every account and market, the default cross of
an account that never chose included), folding that run the same way. The
answer is a real run, not an estimate: its events are those a run recorded
directly under the flipped modes gives from the same commands.

`WhatIf` holds both folds and the commands the flipped run refused; its
`to_json` is the report as plain data (amounts as decimal strings).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from exchange.errors import ConfigError
from replay.fmt import e8_text, iso_utc, money, table
from replay.rebuild import Rebuilder
from replay.rerun_changed import ChangedRun, RefusedCommand, RerunSummary
from replay.settings import parse_settings
from replay.stats import AccountStats, RunStats

if TYPE_CHECKING:
    from exchange.journal import Journal
    from replay.log import ExchangeLog

__all__ = [
    "FLIP",
    "WhatIf",
    "account_json",
    "recorded_stats",
    "what_if",
    "what_if_text",
]

FLIP = "margin_mode=flip"
"""The setting of the what-if rerun."""

Progress = Callable[[str, int], None]
"""Called as ``progress(phase, records_done)``; phases "recorded", "what-if"."""


def recorded_stats(log: ExchangeLog, progress: Progress | None = None) -> RunStats:
    """Fold the recorded run into `RunStats`, through a rebuild of its state."""
    stats = RunStats(log.markets)
    rebuilder = Rebuilder(log.markets, margin=log.margin)
    for entry in log.entries():
        rebuilder.apply(entry)
        stats.observe(entry.record, entry.events, rebuilder.ledger)
        if progress is not None and not stats.records % 1024:
            progress("recorded", stats.records)
    stats.finish(rebuilder.ledger)
    return stats


class WhatIf:
    """The recorded run and the flipped run, side by side (module docstring)."""

    def __init__(
        self, recorded: RunStats, flipped: RunStats, summary: RerunSummary
    ) -> None:
        """Keep both runs' statistics and the rerun's summary."""
        self.recorded = recorded
        self.flipped = flipped
        self.summary = summary

    def accounts(self) -> list[str]:
        """Return the accounts that traded, the largest change of final equity first."""
        names = {
            n
            for run in (self.recorded, self.flipped)
            for n, s in run.accounts.items()
            if s.fills or s.liquidations
        }
        return sorted(names, key=lambda n: (-abs(self._change(n)), n))

    def _change(self, name: str) -> int:
        """Return the flipped run's final equity less the recorded one."""
        return self.flipped.account(name).equity - self.recorded.account(name).equity

    def refused(self, name: str) -> list[RefusedCommand]:
        """Return the recorded commands of ``name`` the flipped run did not apply."""
        return [r for r in self.summary.refused if r.account == name]

    def to_json(self) -> dict[str, Any]:
        """Return the whole report as plain data (amounts as decimal strings)."""
        return {
            "setting": FLIP,
            "records": self.recorded.records,
            "what_if_records": self.summary.records_written,
            "recorded_liquidations": self.summary.recorded_liquidations,
            "what_if_liquidations": self.summary.liquidations,
            "injected_commands": self.summary.injected,
            "rewritten_commands": self.summary.rewritten,
            "what_if_state_hash": self.summary.state_hash,
            "accounts": {
                name: {
                    "recorded": account_json(self.recorded.account(name)),
                    "what_if": account_json(self.flipped.account(name)),
                    "refused": [
                        {
                            "seq": r.old_seq,
                            "command": r.command,
                            "symbol": r.symbol,
                            "code": r.code,
                            "reason": r.reason,
                        }
                        for r in self.refused(name)
                    ],
                }
                for name in self.accounts()
            },
        }


def account_json(stats: AccountStats) -> dict[str, Any]:
    """Return one account's figures as plain data."""
    return {
        "modes": sorted(stats.modes),
        "leverages": sorted(stats.leverages),
        "fills": stats.fills,
        "notional": e8_text(stats.notional),
        "fees": e8_text(stats.fees),
        "realized_pnl": e8_text(stats.realized),
        "funding_paid": e8_text(stats.funding),
        "net_realized": e8_text(stats.net_realized),
        "largest_position_loss": e8_text(stats.largest_loss),
        "max_drawdown": e8_text(stats.max_drawdown),
        "final_equity": e8_text(stats.equity),
        "wallet_touched_by_liquidation": stats.wallet_touched,
        "liquidations": [
            {
                "seq": liq.seq,
                "time": iso_utc(liq.ts_ns),
                "symbol": liq.symbol,
                "mode": liq.mode,
                "qty": e8_text(liq.qty),
                "mark": e8_text(liq.mark),
                "bankruptcy_price": e8_text(liq.bankruptcy_price),
                "wallet_touched": liq.wallet_touched,
            }
            for liq in stats.liquidations
        ],
        "adl": stats.adl,
        "max_position": {s: e8_text(q) for s, q in sorted(stats.max_position.items())},
        "rejects": dict(sorted(stats.rejects.items())),
    }


def what_if(
    log: ExchangeLog,
    *,
    journal: Journal | None = None,
    progress: Progress | None = None,
) -> WhatIf:
    """Fold the recorded run, rerun it with every mode flipped, fold that too.

    ``journal`` (header from `replay.rerun_changed.rerun_header`) receives the
    flipped run.

    Raises:
        ConfigError: if the journal ran without margin (there is no mode).
    """
    if not log.margin:
        msg = f"{log.path}: this journal ran without margin: there is no margin mode"
        raise ConfigError(msg)
    recorded = recorded_stats(log, progress)
    settings = parse_settings([FLIP], [m.symbol for m in log.markets])
    flipped = RunStats(log.markets)
    run = ChangedRun(
        log,
        settings,
        journal=journal,
        on_record=lambda record, events, core: flipped.observe(
            record, events, core.ledger
        ),
    )
    summary = run.run(
        None if progress is None else lambda done: progress("what-if", done)
    )
    flipped.finish(run.core.ledger)
    return WhatIf(recorded, flipped, summary)


def _liquidations(stats: AccountStats) -> str:
    """Return the liquidations as ``count (time at mark, ...)``."""
    if not stats.liquidations:
        return "0"
    shown = ", ".join(
        f"{iso_utc(liq.ts_ns)[11:19]} {liq.symbol} @ {money(liq.mark)}"
        for liq in stats.liquidations[:3]
    )
    more = ", ..." if len(stats.liquidations) > 3 else ""
    return f"{len(stats.liquidations)} ({shown}{more})"


def what_if_text(result: WhatIf, top: int = 10) -> str:
    """Return the side-by-side report as text; ``top`` accounts, most changed first."""
    names = result.accounts()
    s = result.summary
    lines = [
        (
            f"what-if: every margin mode flipped ({FLIP}); "
            f"{result.recorded.records:,} records rerun as {s.records_written:,}"
        ),
        (
            f"liquidations: recorded {s.recorded_liquidations}, what-if "
            f"{s.liquidations}; {s.rewritten} commands rewritten, {s.injected} "
            f"injected, {len(s.refused)} recorded commands refused or dropped"
        ),
    ]
    for name in names[:top]:
        rec, alt = result.recorded.account(name), result.flipped.account(name)
        rows = [
            ["liquidations", _liquidations(rec), _liquidations(alt)],
            ["net realized", money(rec.net_realized), money(alt.net_realized)],
            [
                "largest loss, one position",
                money(rec.largest_loss),
                money(alt.largest_loss),
            ],
            ["worst drawdown", money(rec.max_drawdown), money(alt.max_drawdown)],
            ["final equity", money(rec.equity), money(alt.equity)],
            [
                "liquidation took cross wallet",
                "yes" if rec.wallet_touched else "no",
                "yes" if alt.wallet_touched else "no",
            ],
        ]
        modes = [x.mode_label for x in (rec, alt)]
        lines += [
            "",
            table([name, f"recorded ({modes[0]})", f"what-if ({modes[1]})"], rows),
        ]
        refused = result.refused(name)
        if refused:
            first = "; ".join(
                f"seq {r.old_seq} {r.command}: {r.reason}" for r in refused[:3]
            )
            lines.append(f"  refused in the what-if: {len(refused)} ({first})")
    if len(names) > top:
        lines += ["", f"... and {len(names) - top:,} more accounts (--top, --json)"]
    return "\n".join(lines)
