"""The margin workload's command line: generate a stream and write it to a file."""

from __future__ import annotations

import argparse
import sys

from clients.margin_flow._flow import generate
from clients.margin_flow._shape import MarginShape
from clients.margin_flow._stream import write_margin_stream


def main(argv: list[str] | None = None) -> int:
    """Write a margin stream to a file (``python -m clients.margin_flow --help``)."""
    p = argparse.ArgumentParser(
        prog="python -m clients.margin_flow",
        description="Write the seeded margin workload (setup and N flow commands, "
        "each with its exchange time) to a .msgpack or .json file.",
    )
    p.add_argument("n", type=int, help="number of flow commands")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--accounts", type=int, default=MarginShape().accounts)
    p.add_argument("--out", required=True, metavar="FILE")
    args = p.parse_args(argv)
    try:
        stream = generate(args.n, args.seed, MarginShape(accounts=args.accounts))
        write_margin_stream(args.out, stream)
    except (OSError, ValueError) as exc:
        print(f"margin_flow: {exc}", file=sys.stderr)  # noqa: T201 -- a command line
        return 2
    print(  # noqa: T201 -- a command line
        f"{args.out}: {len(stream.setup):,} setup + {len(stream.flow):,} flow "
        f"commands, {args.accounts:,} accounts, seed {args.seed}"
    )
    return 0
