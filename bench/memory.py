"""``paperx bench memory``: the bytes the core keeps per resting order.

A fresh `ExchangeCore` (no margin) is filled with N resting limit orders
through ``handle``, as a server would fill it: bids and asks that never
cross, spread over ``--levels`` price levels per side, ``--accounts``
accounts in turn, quantities of 1 to 1,000 lots; optionally each with a
client order id. Each command and record is built, handled and dropped in
the loop, so what stays is what the core keeps: the orders, their specs,
the ints they hold, the indexes and the price levels.

Two measures, each in a fresh spawned process so neither disturbs the other:

* ``tracemalloc``: the bytes Python allocated and still holds after the
  orders were placed (a garbage collection first), over N. It counts the
  requested sizes (pymalloc rounds each block up to 16 bytes).
* ``rss``: the process's resident set (/proc/self/statm) after minus
  before, over N, with tracemalloc off: the cross-check, rounding and
  allocator slack included.

The tracemalloc run also itemises where the bytes are (``sys.getsizeof``
of the order objects, their specs, the int objects they hold, the id and
per-account indexes, the levels and, with client ids, their index), and the
allocation sites tracemalloc saw. This is a benchmark: it asserts nothing.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
import tracemalloc
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench._machine import current_rss_mb, machine_info
from exchange.core import ExchangeCore
from exchange.markets import DEFAULT_MARKETS
from exchange.messages import PlaceOrder, Record

if TYPE_CHECKING:
    from collections.abc import Iterable

    from exchange.engine.book import Order

__all__ = ["BookShape", "breakdown", "fill_book", "main", "measure", "measure_isolated"]

TARGET_BYTES = 300  # issue #10: memory <= 300 bytes per resting order
_MARKET = DEFAULT_MARKETS[0]  # BTC-PERP: tick 0.1, lot 0.001
_MID_TICKS = 650_000  # 65,000.0
_SMALL_INTS = range(-5, 257)  # CPython's cached ints: shared, never per order


class BookShape:
    """How the book is filled: levels per side, accounts, client ids or not."""

    __slots__ = ("accounts", "client_ids", "levels")

    def __init__(self, levels: int, accounts: int, *, client_ids: bool) -> None:
        """Spread orders over ``levels`` per side and ``accounts`` accounts."""
        self.levels = levels
        self.accounts = accounts
        self.client_ids = client_ids

    def describe(self) -> str:
        """Return the shape in words, for the report."""
        ids = ", each with a client order id" if self.client_ids else ""
        return (
            f"{self.levels:,} price levels per side, {self.accounts:,} accounts, "
            f"1-1,000 lots{ids}"
        )


def fill_book(core: ExchangeCore, n: int, shape: BookShape) -> None:
    """Place ``n`` resting limit orders into ``core`` (none crosses).

    Order *i* is a buy if *i* is even, ``1 + (i // 2) % levels`` ticks away
    from the mid, of account ``i % accounts``; every command is dropped once
    handled.
    """
    tick, lot = _MARKET.tick_size, _MARKET.lot_size
    accounts = [f"acct-{a:05d}" for a in range(shape.accounts)]
    seq = core.last_seq
    for i in range(n):
        is_buy = not i & 1
        away = 1 + (i >> 1) % shape.levels
        ticks = _MID_TICKS - away if is_buy else _MID_TICKS + away
        seq += 1
        core.handle(
            Record(
                seq,
                0,
                PlaceOrder(
                    account=accounts[i % shape.accounts],
                    symbol=_MARKET.symbol,
                    side="buy" if is_buy else "sell",
                    type="limit",
                    qty=(1 + i * 7919 % 1000) * lot,
                    price=ticks * tick,
                    client_order_id=f"c{i:09d}" if shape.client_ids else "",
                ),
            )
        )


def measure(n: int, shape: BookShape, method: str) -> dict[str, Any]:
    """Fill a fresh core with ``n`` orders in this process; return bytes per order.

    ``method`` is "tracemalloc" (with the itemised breakdown) or "rss".
    """
    core = ExchangeCore(DEFAULT_MARKETS)
    gc.collect()
    traced = method == "tracemalloc"
    if traced:
        tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0] if traced else current_rss_mb()
    started = time.perf_counter()
    fill_book(core, n, shape)
    seconds = time.perf_counter() - started
    gc.collect()
    if len(core.index) != n:
        msg = f"{len(core.index):,} orders rest, not {n:,}: the book crossed"
        raise RuntimeError(msg)
    out: dict[str, Any] = {"n": n, "method": method, "seconds": round(seconds, 2)}
    if traced:
        held = tracemalloc.get_traced_memory()[0] - before
        sites = tracemalloc.take_snapshot().statistics("lineno")
        tracemalloc.stop()
        out["sites"] = [
            {
                "where": f"{_short(s.traceback[0].filename)}:{s.traceback[0].lineno}",
                "bytes_per_order": round(s.size / n, 1),
                "count": s.count,
            }
            for s in sites[:8]
        ]
        out["breakdown"] = breakdown(core)
    else:
        held = int((current_rss_mb() - before) * (1 << 20))
    out["bytes_per_order"] = round(held / n, 1)
    return out


def breakdown(core: ExchangeCore) -> dict[str, float]:
    """Return ``sys.getsizeof`` bytes per open order, by what holds them.

    Containers count their own tables (``getsizeof`` of a dict or deque),
    not the objects they point to, which are counted once under their own
    item; ints are counted once per object, small cached ints not at all.
    """
    orders = list(core.index.values())
    n = len(orders) or 1
    execution = core.execution
    parts = {
        "Order objects": sum(map(sys.getsizeof, orders)),
        "OrderAccepted specs": sum(sys.getsizeof(o.spec) for o in orders),
        "int objects (ids, seqs, prices, qtys)": _int_bytes(orders),
        "order-id index (dict)": sys.getsizeof(core.index),
        "per-account indexes (dicts)": sum(
            map(sys.getsizeof, core.by_account.values())
        ),
        "price levels (Level, deque, sorted keys)": sum(
            _levels_bytes(state.book.bids) + _levels_bytes(state.book.asks)
            for state in execution.markets.values()
        ),
        "client order ids (dict, keys, strings)": _client_id_bytes(
            execution.client_ids
        ),
    }
    return {name: round(size / n, 1) for name, size in parts.items()}


def _int_bytes(orders: Iterable[Order]) -> int:
    """Return the bytes of the distinct non-cached ints the orders and specs hold."""
    seen: dict[int, int] = {}
    for o in orders:
        spec = o.spec
        for value in (
            o.order_id, o.price, o.remaining, o.reserved, spec.seq, spec.qty,
            spec.price, spec.trigger_price, spec.margin,
        ):  # fmt: skip
            if value not in _SMALL_INTS:
                seen[id(value)] = sys.getsizeof(value)
    return sum(seen.values())


def _levels_bytes(side: Any) -> int:  # noqa: ANN401 -- a SortedDict, untyped
    """Return the bytes of one side: its dict, sorted key lists and levels."""
    keys = side._list  # noqa: SLF001 -- the SortedList holding the sorted keys
    size = sys.getsizeof(side) + sys.getsizeof(keys._lists)  # noqa: SLF001
    size += sum(map(sys.getsizeof, keys._lists)) + sys.getsizeof(keys._maxes)  # noqa: SLF001
    for level in side.values():
        size += sys.getsizeof(level) + sys.getsizeof(level.orders)
    return size


def _client_id_bytes(client_ids: dict[tuple[str, str], int]) -> int:
    """Return the bytes of the client-id index: table, key tuples, id strings."""
    size = sys.getsizeof(client_ids)
    for key in client_ids:
        size += sys.getsizeof(key) + sys.getsizeof(key[1])
    return size


def _short(filename: str) -> str:
    """Return a source path from the repository (or library) root on."""
    for marker in ("/exchange/", "/bench/", "/site-packages/", "/lib/python"):
        if marker in filename:
            return marker.strip("/") + "/" + filename.split(marker, 1)[1]
    return Path(filename).name


def measure_isolated(n: int, shape: BookShape, method: str) -> dict[str, Any]:
    """Run `measure` in a fresh spawned process; return its result."""
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        return pool.submit(measure, n, shape, method).result()


def run_all(
    sizes: Iterable[int], traced_sizes: Iterable[int], shape: BookShape
) -> dict[str, Any]:
    """Measure every size by RSS and ``traced_sizes`` by tracemalloc too.

    Also one tracemalloc run of the smallest traced size with client ids.
    """
    runs = [measure_isolated(n, shape, "tracemalloc") for n in traced_sizes]
    if runs:
        with_ids = BookShape(shape.levels, shape.accounts, client_ids=True)
        extra = measure_isolated(runs[0]["n"], with_ids, "tracemalloc")
        extra["client_ids"] = True
        runs.append(extra)
    runs += [measure_isolated(n, shape, "rss") for n in sizes]
    return {
        "shape": shape.describe(),
        "target_bytes": TARGET_BYTES,
        "runs": runs,
    }


def _parser() -> argparse.ArgumentParser:
    """Return the command line of ``paperx bench memory``."""
    p = argparse.ArgumentParser(
        prog="paperx bench memory",
        description=__doc__.split("\n\n")[0] + " Each measure runs in a fresh process.",
    )
    p.add_argument(
        "--n",
        default="100000,1000000",
        help="resting orders, comma-separated; each measured by RSS "
        "(default 100000,1000000)",
    )
    p.add_argument(
        "--traced",
        default="100000",
        help="sizes also measured by tracemalloc, itemised (default 100000; "
        "tracemalloc slows the fill about 8x)",
    )
    p.add_argument("--levels", type=int, default=1000, help="price levels per side")
    p.add_argument("--accounts", type=int, default=100, help="accounts")
    p.add_argument("--json", type=Path, help="also write every figure here")
    return p


def _sizes(text: str) -> list[int]:
    """Parse a comma-separated list of positive sizes."""
    sizes = [int(x) for x in text.split(",") if x.strip()]
    if any(n <= 0 for n in sizes):
        msg = f"{text}: sizes, levels and accounts must be positive"
        raise ValueError(msg)
    return sizes


def main(argv: list[str] | None = None) -> int:
    """Run ``paperx bench memory``; print the figures; 2 on bad options."""
    args = _parser().parse_args(argv)
    try:
        sizes, traced = _sizes(args.n), _sizes(args.traced)
        _sizes(f"{args.levels},{args.accounts}")
    except ValueError as exc:
        print(f"paperx bench memory: {exc}", file=sys.stderr)
        return 2
    shape = BookShape(args.levels, args.accounts, client_ids=False)
    machine = machine_info()
    print(
        f"machine   {machine['cpu']}, {machine['cores']} logical cores, "
        f"{machine['python']}"
    )
    print(f"book      {shape.describe()}")
    result = run_all(sizes, traced, shape)
    print(format_report(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return 0


def format_report(result: dict[str, Any]) -> str:
    """Return the figures as terminal lines."""
    lines = []
    for run in result["runs"]:
        ids = " with client ids" if run.get("client_ids") else ""
        lines.append(
            f"{run['method']:<11} {run['n']:>9,} orders{ids}: "
            f"{run['bytes_per_order']:7.1f} B/order  (target <= "
            f"{result['target_bytes']})  filled in {run['seconds']:.1f} s"
        )
        for name, size in run.get("breakdown", {}).items():
            if size:
                lines.append(f"    {name:<42} {size:7.1f} B")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
