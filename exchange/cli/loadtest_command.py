"""``paperx loadtest``: the load harness's command line (see clients/loadtest/)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from clients.loadtest.mix import OrderMix
    from exchange.messages import MarginMode

__all__ = ["add_loadtest", "run_loadtest_command"]

_DESCRIPTION = """\
Drive a paperx server with many simulated bots over MQTT and measure it.

It starts `paperx serve` (embedded broker, or --mosquitto for a Mosquitto
of its own on a free port, or --broker URL for one you run) with one
account per bot, starts --processes load processes with the bots spread
among them, and sends requests on the schedule's intended times. Every
latency is measured from the intended send time, so a stall that delays
sending is counted (coordinated omission corrected).

Measured (HdrHistogram): order->ack, cancel->ack, amend->ack, order->first
fill, market data (exchange time -> receipt), p50/p90/p99/p99.9/max per
phase; offered vs achieved rate; rejects by code. Checked: every request
answered exactly once; after the server stops, every accepted answer's
record is in the journal and the final state hash equals a rebuild of the
journal (live == rebuild == rerun, as `paperx replay verify`).
"""

_EPILOG = """\
schedules (--schedule, over --duration seconds):
  constant:RATE                 RATE requests/s throughout
  ramp:FROM:TO[:PHASES]         linear from FROM to TO, reported in PHASES parts (5)
  step:R1,R2,...                equal steps at each rate
  burst:BASE:PEAK:EVERY:WIDTH   BASE/s, and PEAK/s for WIDTH s every EVERY s

examples:
  paperx loadtest                                   500/s for 10 s, 8 bots
  paperx loadtest --schedule ramp:500:8000 --duration 30 --mosquitto
  paperx loadtest --schedule step:1000,2000,4000 --bots 40 --processes 2
  paperx loadtest --schedule burst:500:5000:5:0.5 --mix limit=70,cancel=30
  paperx loadtest --batch 20 --schedule constant:1000   20 orders per message

writes OUT/loadtest.json (every figure) and OUT/loadtest.png (latency
percentiles over time beside offered/achieved rate); the journal is in
OUT/venue/journal. Exit status 1 if anything was lost.
"""


def add_loadtest(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``paperx loadtest`` and its options."""
    parser = sub.add_parser(
        "loadtest",
        help="drive a server with N simulated bots over MQTT; latency, rate, losses",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--schedule",
        default="constant:500",
        help="offered load in requests/s (default constant:500; forms below)",
    )
    parser.add_argument(
        "--duration", type=float, default=10.0, help="seconds of load (default 10)"
    )
    parser.add_argument(
        "--bots", type=int, default=8, help="simulated bots, one account each (8)"
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=2,
        help="load processes the bots are spread over (default 2)",
    )
    parser.add_argument(
        "--mix",
        default="limit=55,market=10,cancel=25,amend=10",
        help="weights of the request kinds (default limit=55,market=10,"
        "cancel=25,amend=10); a cancel or amend with no open order places a limit",
    )
    parser.add_argument(
        "--post-only",
        type=float,
        default=0.1,
        help="share of passive limit orders that are post-only (0.1)",
    )
    parser.add_argument(
        "--reduce-only",
        type=float,
        default=0.05,
        help="share of orders that are reduce-only (0.05; rejected when they "
        "would not reduce: counted by code)",
    )
    parser.add_argument(
        "--leverage",
        default="5,10,20",
        help="leverage per bot, bot i takes the (i mod n)-th (default 5,10,20)",
    )
    parser.add_argument(
        "--margin-modes",
        default="cross,isolated",
        help="margin mode per bot, in turn like --leverage (default cross,isolated)",
    )
    parser.add_argument(
        "--batch",
        type=int,
        default=1,
        help="commands per message (default 1; up to 50, a batch message)",
    )
    parser.add_argument(
        "--qos", type=int, choices=(0, 1), default=1, help="QoS of commands (1)"
    )
    venue = parser.add_mutually_exclusive_group()
    venue.add_argument(
        "--mosquitto",
        action="store_true",
        help="run the server on a Mosquitto of the test's own (free loopback "
        "port, set_tcp_nodelay) instead of the embedded broker",
    )
    venue.add_argument(
        "--broker",
        metavar="URL",
        help="run the server on this external broker (mqtt://host:port)",
    )
    parser.add_argument(
        "--fsync",
        choices=("always", "batch", "off"),
        default="batch",
        help="the server's journal durability (default batch)",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("runs/loadtest"), help="output directory"
    )
    parser.add_argument("--seed", type=int, default=1, help="the bots' seed (1)")
    parser.add_argument(
        "--drain",
        type=float,
        default=10.0,
        help="seconds to wait for the last answers after the load (10)",
    )
    parser.add_argument(
        "--no-verify",
        action="store_true",
        help="skip the rebuild and rerun of the journal (the acks are still "
        "checked against it)",
    )


def _mix(args: argparse.Namespace) -> OrderMix:
    """Return the order mix the options describe.

    Raises:
        ValueError: a bad weight, margin mode, leverage or batch size.
    """
    from clients.loadtest.mix import OrderMix, parse_mix  # noqa: PLC0415

    weights = parse_mix(args.mix)
    modes = tuple(m.strip() for m in args.margin_modes.split(","))
    if not set(modes) <= {"cross", "isolated"} or not 1 <= args.batch <= 50:
        msg = "margin modes are cross or isolated; --batch is 1..50"
        raise ValueError(msg)
    return OrderMix(
        limit=weights.get("limit", 0.0),
        market=weights.get("market", 0.0),
        cancel=weights.get("cancel", 0.0),
        amend=weights.get("amend", 0.0),
        post_only=args.post_only,
        reduce_only=args.reduce_only,
        leverage=tuple(int(x) for x in args.leverage.split(",")),
        margin_modes=cast("tuple[MarginMode, ...]", modes),
    )


def run_loadtest_command(args: argparse.Namespace) -> int:
    """Run ``paperx loadtest``; return 0, or 1 if anything was lost, 2 on bad input."""
    from clients.loadtest.report import summary_table, write_outputs  # noqa: PLC0415
    from clients.loadtest.runner import LoadtestOptions, run_loadtest  # noqa: PLC0415
    from clients.loadtest.schedule import parse_schedule  # noqa: PLC0415
    from exchange.cli.server_process import VenueError  # noqa: PLC0415

    try:
        parse_schedule(args.schedule, args.duration)
        mix = _mix(args)
    except ValueError as exc:
        print(f"paperx loadtest: {exc}", file=sys.stderr)
        return 2
    options = LoadtestOptions(
        schedule=args.schedule,
        duration_s=args.duration,
        bots=args.bots,
        processes=args.processes,
        mix=mix,
        batch=args.batch,
        qos=args.qos,
        seed=args.seed,
        broker=args.broker,
        mosquitto=args.mosquitto,
        out=args.out,
        fsync=args.fsync,
        drain_s=args.drain,
        verify=not args.no_verify,
    )
    try:
        results = run_loadtest(options)
    except VenueError as exc:
        print(f"paperx loadtest: {exc}", file=sys.stderr)
        return 2
    print(summary_table(results))
    json_path, png_path = write_outputs(results, args.out)
    print(f"results: {json_path}  plot: {png_path}")
    lost = not results["totals"]["answered_once"] or not results["journal"]["ok"]
    return 1 if lost else 0
