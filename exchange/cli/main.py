"""The ``paperx`` command line: demo, benchmarks and replay tools."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from exchange.logs import configure_logging

__all__ = ["main"]

_EPILOG = """\
examples:
  paperx demo                          trade a generated stream, journal it, verify it
  paperx demo --n 1000000 --fsync off  a bigger run without fsync
  paperx replay verify runs/demo       prove live == rebuild == rerun for a journal
  paperx replay repair runs/demo       move a damaged journal part aside, keep the rest
  paperx bench core --commands orders_1000000.msgpack --json
"""


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="paperx",
        description="paperx: a deterministic, replayable paper-trading exchange "
        "for perpetual futures.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--log-level",
        default="warning",
        help="structured log level (debug, info, warning)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser(
        "demo",
        help="run a generated order stream through a "
        "journaled exchange and print a summary",
    )
    demo.add_argument(
        "--n",
        type=int,
        default=200_000,
        help="number of commands to generate (default 200000)",
    )
    demo.add_argument("--seed", type=int, default=42, help="generator seed")
    demo.add_argument(
        "--journal",
        type=Path,
        default=Path("runs/demo"),
        help="journal directory (default runs/demo; a non-empty one "
        "gets a timestamped subdirectory)",
    )
    demo.add_argument(
        "--fsync",
        choices=("always", "batch", "off"),
        default="batch",
        help="journal durability policy (default batch = group commit)",
    )

    bench = sub.add_parser("bench", help="benchmarks (see BENCHMARKS.md)")
    bench.add_argument(
        "target",
        choices=("core", "recovery"),
        help="core: matching, full core, and journaled core; "
        "recovery: rebuild speed and recovery time with and without a snapshot",
    )
    bench.add_argument(
        "rest",
        nargs=argparse.REMAINDER,
        help="options of the benchmark (see paperx bench core --help)",
    )

    replay = sub.add_parser("replay", help="read, rebuild and rerun recorded journals")
    replay_sub = replay.add_subparsers(
        dest="replay_command", required=True, metavar="ACTION"
    )
    verify = replay_sub.add_parser(
        "verify", help="prove live hash == rebuild hash == rerun hash for a journal"
    )
    verify.add_argument("journal", type=Path, help="journal directory")
    repair = replay_sub.add_parser(
        "repair",
        help="cut a damaged journal at its first damage, moving the rest aside "
        "into files of their own (nothing is deleted)",
    )
    repair.add_argument("journal", type=Path, help="journal directory")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the process exit code.

    A reader that stops early (``paperx bench core | head``) ends the run
    quietly, as Unix tools do, instead of with a traceback.
    """
    try:
        return _run(argv)
    except BrokenPipeError:
        # Python would flush stdout again at exit and fail once more
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


def _run(argv: list[str] | None) -> int:
    """Parse the arguments and run the command they name."""
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level)
    if args.command == "demo":
        from exchange.cli.demo import run_demo  # noqa: PLC0415 -- keep --help fast

        return run_demo(args.n, args.seed, args.journal, args.fsync)
    if args.command == "bench":
        if args.target == "recovery":
            from bench.recovery import main as bench_recovery  # noqa: PLC0415

            return bench_recovery(args.rest)
        from bench.core import main as bench_core  # noqa: PLC0415

        return bench_core(args.rest)
    if args.replay_command == "repair":
        return _replay_repair(args.journal)
    return _replay_verify(args.journal)


def _replay_repair(journal: Path) -> int:
    """Repair one journal and say what was kept and what was moved aside."""
    from exchange.errors import JournalError  # noqa: PLC0415
    from replay.repair import repair  # noqa: PLC0415

    if not journal.is_dir():
        print(f"paperx: {journal} is not a journal directory", file=sys.stderr)
        return 2
    try:
        report = repair(journal)
    except JournalError as exc:
        print(f"paperx: {exc}", file=sys.stderr)
        return 2
    damage = report.damage
    if damage is None:
        print(
            f"intact        {report.kept_records:,} records, last seq "
            f"{report.last_seq}; nothing moved"
        )
        return 0
    print(
        f"damage        {damage.reason} at {damage.path} byte {damage.offset} "
        f"({damage.detail})"
    )
    print(
        f"kept          {report.kept_records:,} records, seq {report.first_seq}"
        f"..{report.last_seq}"
    )
    print(f"moved aside   {damage.records_after:,} intact records after the damage")
    for moved in report.moved:
        print(f"  {moved.path}  ({moved.bytes:,} bytes)")
    for stale in report.stale_snapshots:
        print(f"stale         {stale}  (a snapshot past the kept records)")
    return 0


def _replay_verify(journal: Path) -> int:
    """Verify one journal and print the three hashes."""
    from exchange.cli.progress import ProgressBar  # noqa: PLC0415
    from exchange.errors import JournalError  # noqa: PLC0415
    from replay.log import ExchangeLog  # noqa: PLC0415
    from replay.verify import verify  # noqa: PLC0415

    if not journal.is_dir():
        print(f"paperx: {journal} is not a journal directory", file=sys.stderr)
        return 2
    try:
        log = ExchangeLog(journal)
    except JournalError as exc:  # e.g. a schema this version does not read
        print(f"paperx: {exc}", file=sys.stderr)
        return 2
    bar = ProgressBar(0, "verifying")
    report = verify(log, lambda done: bar.update(done) if not done % 1024 else None)
    bar.total = max(report.records, 1)
    bar.update(report.records)
    bar.close()
    print(f"records       {report.records:,}  (checkpoints {report.checkpoints})")
    print(
        f"live hash     {report.live_hash or '(no checkpoint in this journal)'}"
        f"  at seq {report.live_seq}"
    )
    print(f"rebuild hash  {report.rebuild_hash}")
    print(f"rerun hash    {report.rerun_hash}")
    if report.damage:
        print(f"damage        {report.damage}")
    if report.snapshot_seq is not None:
        verdict = "matches the rebuild" if report.snapshot_ok else "MISMATCH"
        print(
            f"snapshot      seq {report.snapshot_seq}: {report.snapshot_hash}"
            f"  {verdict} (at its seq, and rebuilt from it to the end)"
        )
    for skipped in report.snapshots_skipped:
        print(f"skipped       {skipped}")
    if report.rebuild_error:
        print(f"rebuild       diverged: {report.rebuild_error}")
    if report.rerun_difference:
        print(f"rerun         first difference at {report.rerun_difference}")
    print(
        "verdict       " + ("OK: live == rebuild == rerun" if report.ok else "MISMATCH")
    )
    return 0 if report.ok else 1
