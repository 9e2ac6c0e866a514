"""``paperx replay rebuild|rerun|whatif|report|export``: the replay tools' command line.

Each command reads a journal (a directory, or ``nats://host:port/STREAM``),
draws a progress bar on stderr while it works, and prints a readable summary
on stdout (``--json`` for tools where it makes sense). The work itself is in
``replay/``; this module only parses, runs and prints.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from exchange.cli.progress import ProgressBar
    from replay.log import ExchangeLog
    from replay.rerun_changed import RerunSummary

__all__ = ["COMMANDS", "add_parsers", "run"]

_JOURNAL_HELP = "journal directory, or nats://host:port/STREAM (JetStream)"
_Sub = argparse._SubParsersAction  # noqa: SLF001 -- argparse names no public type

_REBUILD = """\
Rebuild the state of a recorded run at any point (from its events, no matching)
and show it: the top of every book, every account's wallet, free and used
margin, equity and positions (entry, mark, unrealized PnL, liquidation price),
and the insurance fund.

examples:
  paperx replay rebuild runs/demo/journal                the state at the end
  paperx replay rebuild runs/demo/journal --at 5000      after record 5000
  paperx replay rebuild runs/demo/journal --at 2024-03-01T08:00:00Z --account alice
  paperx replay rebuild runs/demo/journal --json | jq .insurance_fund
"""
_RERUN = """\
Feed the recorded commands through a fresh exchange with changed settings, and
write the new run as a journal of its own (verify it like any other).

settings (KEY=VALUE, repeat --set):
  margin_mode=cross|isolated|flip      every account, every market
  margin_mode.ACCOUNT=...              one account (.ACCOUNT.SYMBOL: one market)
  leverage=5, leverage.ACCOUNT.SYMBOL=20
  taker_fee=0.0004, maker_fee.BTC-PERP=0, liquidation_fee=0.01
  tiers=tiers.toml                     [[tiers]] rows, as in a markets file
  funding=off, partial_liquidation=off (per market: funding.ETH-PERP=off)

Market settings go into the new journal's header. Margin mode and leverage
become commands: the recorded SetMarginMode / SetLeverage are rewritten, and
an account that never set one gets it injected before its first command in
that market. The recorded liquidations are not replayed: the new exchange
liquidates on its own. Recorded commands the new run refuses are listed.

examples:
  paperx replay rerun runs/demo/journal --set margin_mode=cross --out runs/demo-cross
  paperx replay rerun runs/demo/journal --set leverage.alice.BTC-PERP=5 \\
      --set taker_fee=0.0004 --out runs/demo-cheap
  paperx replay verify runs/demo-cross
"""
_WHATIF = """\
Answer "what would this run have done under the other margin mode?": rerun it
with every account's margin mode flipped (isolated <-> cross), then compare
per account: liquidations (count, times, marks), net realized PnL, the largest
loss of one position, the worst drawdown, final equity, and whether a
liquidation took money from the cross wallet. Recorded commands the other
mode refuses are reported, not dropped silently.

examples:
  paperx replay whatif runs/demo/journal
  paperx replay whatif runs/demo/journal --png whatif.png --top 3
  paperx replay whatif runs/demo/journal --json --out runs/demo-flipped
"""
_REPORT = """\
How a run went: statistics per market and per account, and plots.

Per market: fills, volume, notional, fees, liquidations, auto-deleveraging,
funding. Per account: fills, notional, fees, realized PnL, funding,
liquidations, largest position, worst drawdown, equity, and its requests
with their rejects by code. Plots: equity curves and marks. Point your own
bot at a paperx server (stressed or not), then read here how it fared.
`paperx report` and `paperx replay report` are the same command.

examples:
  paperx report runs/demo/journal
  paperx replay report runs/demo/journal
  paperx replay report runs/demo/journal --json > report.json
  paperx replay report runs/demo/journal --png plots/
"""
_EXPORT = """\
Export fills, orders, positions and funding as tables for analysis elsewhere
(pandas, DuckDB, a spreadsheet): one file per table in DIR. Prices and amounts
are exact decimals; times ISO-8601 UTC beside each record's seq. Parquet needs
pyarrow: pip install 'paperx[parquet]'.

examples:
  paperx replay export runs/demo/journal --format csv --out exports/demo
  paperx replay export runs/demo/journal --format parquet --out exports/demo
"""


def _parser(
    sub: _Sub[argparse.ArgumentParser], name: str, text: str
) -> argparse.ArgumentParser:
    """Add one subcommand with its teaching description."""
    parser = sub.add_parser(
        name,
        help=text.splitlines()[0].rstrip(":").lower(),
        description=text,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("journal", help=_JOURNAL_HELP)
    return parser


def add_parsers(sub: _Sub[argparse.ArgumentParser]) -> None:
    """Add rebuild, rerun, whatif, report and export to ``paperx replay``."""
    rebuild = _parser(sub, "rebuild", _REBUILD)
    rebuild.add_argument(
        "--at",
        metavar="SEQ|TIME",
        help="a record's seq, or an ISO-8601 UTC time (the last record at or "
        "before it); default: the end",
    )
    rebuild.add_argument("--depth", type=int, default=5, help="book levels (default 5)")
    rebuild.add_argument(
        "--account", action="append", help="show only this account (repeatable)"
    )
    rebuild.add_argument("--json", action="store_true", help="print JSON")
    rerun = _parser(sub, "rerun", _RERUN)
    rerun.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        dest="settings",
        help="a changed setting (see above; repeatable)",
    )
    rerun.add_argument("--out", type=Path, required=True, help="new journal directory")
    rerun.add_argument("--json", action="store_true", help="print the summary as JSON")
    whatif = _parser(sub, "whatif", _WHATIF)
    whatif.add_argument("--json", action="store_true", help="print JSON")
    whatif.add_argument("--png", type=Path, metavar="FILE", help="write equity curves")
    whatif.add_argument(
        "--out", type=Path, help="also keep the flipped run as a journal"
    )
    whatif.add_argument(
        "--top", type=int, default=10, help="accounts shown (default 10)"
    )
    add_report_parser(sub)
    export = _parser(sub, "export", _EXPORT)
    export.add_argument("--format", choices=("csv", "parquet"), default="csv")
    export.add_argument("--out", type=Path, required=True, metavar="DIR")


def add_report_parser(sub: _Sub[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Add ``report`` (under ``paperx replay``, or as ``paperx report``)."""
    report = _parser(sub, "report", _REPORT)
    report.add_argument("--json", action="store_true", help="print JSON")
    report.add_argument("--png", type=Path, metavar="DIR", help="write plots into DIR")
    report.add_argument(
        "--top", type=int, default=20, help="accounts shown (default 20)"
    )
    report.set_defaults(replay_command="report")
    return report


COMMANDS = ("rebuild", "rerun", "whatif", "report", "export")
"""The replay actions this module runs."""


def run(args: argparse.Namespace) -> int:
    """Run one replay action; return the exit code (2: bad input)."""
    from exchange.errors import PaperxError  # noqa: PLC0415 -- keep --help fast

    try:
        log = _open(args.journal)
        action: Callable[[argparse.Namespace, ExchangeLog], int] = {
            "rebuild": _rebuild,
            "rerun": _rerun,
            "whatif": _whatif,
            "report": _report,
            "export": _export,
        }[args.replay_command]
        return action(args, log)
    except (PaperxError, ValueError, OSError) as exc:
        print(f"paperx: {exc}", file=sys.stderr)
        return 2


def _open(journal: str) -> ExchangeLog:
    """Open a journal read-only, or say why not."""
    from exchange.errors import ConfigError  # noqa: PLC0415
    from exchange.journal import is_nats_url  # noqa: PLC0415
    from replay.log import ExchangeLog  # noqa: PLC0415

    if not is_nats_url(journal) and not Path(journal).is_dir():
        msg = f"{journal} is not a journal directory"
        raise ConfigError(msg)
    return ExchangeLog(journal)


def _bar(log: ExchangeLog, label: str, passes: int = 1) -> ProgressBar:
    """Return a progress bar over the journal's records (counted first)."""
    from exchange.cli.progress import ProgressBar  # noqa: PLC0415

    return ProgressBar(passes * sum(1 for _ in log.reader.read()), label)


def _print_json(data: object) -> None:
    """Print plain data as indented JSON."""
    print(json.dumps(data, indent=2))


def _rebuild(args: argparse.Namespace, log: ExchangeLog) -> int:
    """Rebuild up to --at and print the state."""
    from replay.fmt import parse_iso_utc  # noqa: PLC0415
    from replay.state_at import rebuild_until, state_text, state_view  # noqa: PLC0415

    seq = ts_ns = None
    if args.at is not None:
        if args.at.isdigit():
            seq = int(args.at)
        else:
            ts_ns = parse_iso_utc(args.at)
    bar = _bar(log, "rebuilding")
    core = rebuild_until(log, seq=seq, ts_ns=ts_ns, progress=bar.update)
    bar.update(core.last_seq)
    bar.close()
    view = state_view(core, depth=args.depth, accounts=args.account)
    if args.json:
        _print_json(view)
    else:
        print(state_text(view))
    return 0


def _summary_json(summary: RerunSummary) -> dict[str, Any]:
    """Return a rerun's summary as plain data."""
    import msgspec  # noqa: PLC0415

    data = msgspec.to_builtins(summary)
    assert isinstance(data, dict)
    return data


def _rerun(args: argparse.Namespace, log: ExchangeLog) -> int:
    """Rerun under --set settings into --out and print what happened."""
    from exchange.journal import open_journal  # noqa: PLC0415
    from replay.rerun_changed import ChangedRun, rerun_header  # noqa: PLC0415
    from replay.settings import parse_settings  # noqa: PLC0415

    settings = parse_settings(args.settings, [m.symbol for m in log.markets])
    bar = _bar(log, "rerunning")
    run = ChangedRun(log, settings)
    header = rerun_header(log, run.markets, settings.texts)
    with open_journal(args.out, header=header, fsync="off") as journal:
        if journal.last_seq:
            msg = f"{args.out} already holds a journal: choose an empty --out"
            raise ValueError(msg)
        run.journal = journal
        summary = run.run(bar.update)
    bar.update(summary.records_read)
    bar.close()
    if args.json:
        _print_json(_summary_json(summary))
        return 0
    print(
        f"settings      {' '.join(settings.texts) or '(none: the recorded run again)'}"
    )
    print(
        f"records       {summary.records_read:,} read, {summary.records_written:,} "
        f"written to {args.out}"
    )
    print(
        f"liquidations  recorded {summary.recorded_liquidations} (not replayed), "
        f"this run {summary.liquidations}"
    )
    print(f"commands      {summary.rewritten} rewritten, {summary.injected} injected")
    print(f"refused       {len(summary.refused)} recorded commands the new run refused")
    for refused in summary.refused[:10]:
        print(
            f"  seq {refused.old_seq} {refused.account} {refused.command} "
            f"{refused.symbol}: {refused.reason}"
        )
    print(f"state hash    {summary.state_hash}")
    return 0


def _whatif(args: argparse.Namespace, log: ExchangeLog) -> int:
    """Run the margin-mode what-if and print (and plot) the comparison."""
    from contextlib import nullcontext  # noqa: PLC0415

    from exchange.journal import open_journal  # noqa: PLC0415
    from replay.rerun_changed import rerun_header  # noqa: PLC0415
    from replay.settings import parse_settings  # noqa: PLC0415
    from replay.whatif import FLIP, what_if, what_if_text  # noqa: PLC0415

    bar = _bar(log, "what-if", passes=2)
    done = {"recorded": 0, "what-if": 0}

    def progress(phase: str, records: int) -> None:
        done[phase] = records
        bar.update(done["recorded"] + done["what-if"])

    journal = None
    if args.out is not None:
        settings = parse_settings([FLIP], [m.symbol for m in log.markets])
        header = rerun_header(log, settings.markets(log.markets), settings.texts)
        journal = open_journal(args.out, header=header, fsync="off")
    with journal if journal is not None else nullcontext():
        result = what_if(log, journal=journal, progress=progress)
    bar.update(bar.total)
    bar.close()
    if args.png is not None:
        from replay.plots import plot_what_if  # noqa: PLC0415

        plot_what_if(result, args.png, top=min(args.top, 6))
    if args.json:
        _print_json(result.to_json())
    else:
        print(what_if_text(result, args.top))
        if args.png is not None:
            print(f"\nequity curves  {args.png}")
    return 0


def _report(args: argparse.Namespace, log: ExchangeLog) -> int:
    """Print (and plot) one run's statistics."""
    from replay.report import report_json, report_text  # noqa: PLC0415
    from replay.whatif import recorded_stats  # noqa: PLC0415

    bar = _bar(log, "reporting")
    stats = recorded_stats(log, lambda _, records: bar.update(records))
    bar.update(stats.records)
    bar.close()
    if args.json:
        _print_json(report_json(stats))
    else:
        print(report_text(stats, args.top))
    if args.png is not None:
        from replay.plots import plot_report  # noqa: PLC0415

        paths = plot_report(stats, args.png)
        if not args.json:
            print("\nplots  " + "  ".join(str(p) for p in paths))
    return 0


def _export(args: argparse.Namespace, log: ExchangeLog) -> int:
    """Write the journal's tables as CSV or parquet files."""
    from replay.export import export_tables, write_csv, write_parquet  # noqa: PLC0415

    if args.format == "parquet":
        write_parquet([], args.out)  # refuses before the work when pyarrow is absent
    bar = _bar(log, "exporting")
    tables = export_tables(log, bar.update)
    bar.update(bar.total)
    bar.close()
    writer = write_parquet if args.format == "parquet" else write_csv
    paths = writer(tables, args.out)
    for table, path in zip(tables, paths, strict=True):
        print(f"{table.name:<10} {len(table.rows):>10,} rows  {path}")
    return 0
