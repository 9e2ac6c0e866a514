"""The command line of ``paperx bench core``: its options, defaults and help."""

from __future__ import annotations

import argparse

from bench._margin import DEFAULT_ACCOUNTS

__all__ = ["DEFAULT_N", "DEFAULT_SEED", "VARIANTS", "parse_args"]

DEFAULT_N = 1_000_000
DEFAULT_SEED = 42
VARIANTS = ("reference", "matching", "core", "journaled", "margin")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse ``paperx bench core``'s arguments (``--help`` prints and exits)."""
    return _parser().parse_args(argv)


def _parser() -> argparse.ArgumentParser:
    """Build the argument parser (``paperx bench core --help``)."""
    p = argparse.ArgumentParser(
        prog="paperx bench core",
        description=(
            "Measure commands/s of the same stream through\n"
            "  (r) a plain SortedDict + deque engine, the reference the targets\n"
            "      are ratios of (standard stream only: it reads its tuples),\n"
            "  (a) the matching layer alone (OrderBook + matching.match),\n"
            "  (b) the full core, every record's events msgpack-encoded,\n"
            "  (c) (b) plus the file journal under fsync 'batch',\n"
            "  (d) the core with margin on a venue-like workload of as many commands\n"
            "      (clients.margin_flow): makers and takers, isolated and cross,\n"
            "      stops, liquidations, ADL and funding,\n"
            "and print the fill count and hash, peak memory, p50/p99/p99.9 latency\n"
            "of (b) and (d), the machine, and each variant as a multiple of (r)\n"
            "beside its target. Default stream: 1,000,000 commands of paperx's\n"
            "own order flow (clients.orderflow: BTC-PERP, ETH-PERP, seed 42)."
        ),
        epilog=(
            "examples:\n"
            "  paperx bench core\n"
            "  paperx bench core --commands /tmp/orders_1000000.msgpack --json\n"
            "  paperx bench core --n 200000 --only core --profile core\n"
            "  python -m clients.margin_flow 200000 --out margin.msgpack\n"
            "  paperx bench core --only margin --margin-stream margin.msgpack\n"
            "The standard stream comes from ../shared/bench/workload.py "
            "(python workload.py N SEED OUTDIR); an orders_N.meta.json beside it "
            "is checked."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--commands",
        metavar="FILE",
        help="run the standard stream in FILE (.msgpack or .jsonl) instead "
        "of our own order flow",
    )
    p.add_argument(
        "--n",
        type=int,
        metavar="N",
        help=f"number of commands (default {DEFAULT_N:,}; with --commands: "
        "the whole file, or its first N)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=DEFAULT_SEED,
        help=f"seed of our own order flow (default {DEFAULT_SEED})",
    )
    p.add_argument(
        "--only",
        metavar="LIST",
        default=",".join(VARIANTS),
        type=_variants,
        help="comma-separated variants to run: reference, matching, core, "
        "journaled, margin (default: all)",
    )
    p.add_argument(
        "--profile",
        choices=("matching", "core", "margin"),
        metavar="VARIANT",
        help="also run VARIANT (matching, core or margin) under cProfile and "
        "print its top functions",
    )
    p.add_argument(
        "--accounts",
        type=int,
        default=DEFAULT_ACCOUNTS,
        metavar="A",
        help=f"(d): accounts of the margin workload, makers included "
        f"(default {DEFAULT_ACCOUNTS:,})",
    )
    p.add_argument(
        "--margin-stream",
        metavar="FILE",
        help="(d): run the margin stream in FILE (.msgpack or .json, written by "
        "python -m clients.margin_flow) instead of generating one",
    )
    p.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="R",
        help="run the variants R times in turn and keep each one's best rate "
        "(a shared machine drifts; the best round is the least disturbed)",
    )
    p.add_argument(
        "--json", action="store_true", help="end with one JSON line of the figures"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars on stderr")
    return p


def _variants(text: str) -> tuple[str, ...]:
    """Parse ``--only``."""
    chosen = tuple(v.strip() for v in text.split(",") if v.strip())
    bad = [v for v in chosen if v not in VARIANTS]
    if bad or not chosen:
        msg = f"unknown variant(s) {bad}; choose from {', '.join(VARIANTS)}"
        raise argparse.ArgumentTypeError(msg)
    return chosen
