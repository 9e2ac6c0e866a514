"""Same records, same hash, in processes whose string hashing differs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]

# A margin session with stops, STP, amends, liquidations and funding, printed
# as its final state hash. Dict and set order of strings changes with
# PYTHONHASHSEED; the core must not let it leak into anything it decides.
SCRIPT = r"""
import sys
sys.path.insert(0, sys.argv[1])
from clients.orderflow import DEFAULT_ACCOUNTS, generate
from exchange import DEFAULT_MARKETS, Exchange
from exchange.messages import AdvanceTime, SetIndexPrice
from exchange.units import to_e8

ex = Exchange(margin=True, clock=lambda: 0)
for i, account in enumerate(DEFAULT_ACCOUNTS):
    ex.deposit(account, "20000")
    ex.set_margin_mode(account, "BTC-PERP", "isolated" if i % 2 else "cross")
ex.set_index_price("BTC-PERP", "60000")
ex.set_index_price("ETH-PERP", "3000")
walk = {"BTC-PERP": 60000, "ETH-PERP": 3000}
for n, command in enumerate(generate(3000, 11, list(DEFAULT_MARKETS))):
    ex.submit(command)
    if n % 100 == 99:
        for symbol in walk:
            walk[symbol] = walk[symbol] * (97 + n % 7) // 100
            ex.submit(SetIndexPrice(symbol=symbol, price=to_e8(walk[symbol])))
    if n % 500 == 499:
        ex.submit(AdvanceTime(ts_ns=(n // 500 + 1) * 8 * 3600 * 10**9))
print(ex.checkpoint())
"""


def _run(seed: str) -> str:
    env = {**os.environ, "PYTHONHASHSEED": seed}
    out = subprocess.run(  # noqa: S603 -- our own interpreter and script
        [sys.executable, "-c", SCRIPT, str(ROOT)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return out.stdout.strip().splitlines()[-1]


def test_state_hash_does_not_depend_on_string_hashing() -> None:
    """Two processes with different hash seeds end on the same state hash."""
    first, second = _run("1"), _run("4242")
    assert len(first) == 64
    assert first == second
