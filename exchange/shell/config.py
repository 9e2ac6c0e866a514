"""Configuration files: the market table in TOML.

A file looks like::

    [markets.BTC-PERP]
    tick_size = "0.1"
    lot_size = "0.001"
    min_price = "0.1"        # optional, default one tick
    max_price = "4529764"    # optional, default 1000000
    min_qty = "0.001"        # optional, default one lot
    max_qty = "1000"         # optional, default 1000
    maker_fee = "0.0002"     # optional fractions of the fill's value
    taker_fee = "0.0005"
    liquidation_fee = "0.005"  # clearance fee of the liquidated notional
    mark_source = "median"   # or "index" / "last" to pin the mark
    partial_liquidation = true  # false: liquidation closes the whole position
    max_open_orders = 0      # open orders per account (0: no limit); over it
                             # a new order is refused MAX_OPEN_ORDERS

    [[markets.BTC-PERP.tiers]]   # optional: maintenance-margin tiers (else default)
    floor = "0"
    cap = "50000"
    max_leverage = 125
    mmr = "0.004"                # cum is derived so MM is continuous

Write sizes as strings (or integers): a TOML float such as ``0.1`` is refused,
because it may not be the decimal you wrote.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from exchange.errors import ConfigError
from exchange.markets import Market

__all__ = ["ConfigError", "load_markets", "markets_from_toml"]


def markets_from_toml(text: str, source: str = "<string>") -> list[Market]:
    """Parse the ``[markets.*]`` tables of a TOML document.

    Raises:
        ConfigError: on invalid TOML, floats, unknown keys or inconsistent limits.
    """
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = f"{source}: not valid TOML: {exc}"
        raise ConfigError(msg) from exc
    tables = document.get("markets")
    if not isinstance(tables, dict) or not tables:
        msg = f"{source}: needs at least one [markets.SYMBOL] table"
        raise ConfigError(msg)
    markets = []
    for symbol, spec in tables.items():
        markets.append(_market(source, symbol, spec))
    return markets


def load_markets(path: str | Path) -> list[Market]:
    """Read a TOML file of markets (see the module docstring for the format).

    Raises:
        ConfigError: if the file is missing or invalid.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        msg = f"{path}: cannot read the market file: {exc.strerror}"
        raise ConfigError(msg) from exc
    return markets_from_toml(text, str(path))


def _market(source: str, symbol: str, spec: Any) -> Market:  # noqa: ANN401 -- TOML value
    """Build one market, naming the file and symbol in any error."""
    if not isinstance(spec, dict):
        msg = f"{source}: [markets.{symbol}] must be a table"
        raise ConfigError(msg)
    floats = sorted(k for k, v in spec.items() if isinstance(v, float))
    if floats:
        msg = (
            f"{source}: [markets.{symbol}] {', '.join(floats)}: write decimals as "
            'strings, e.g. tick_size = "0.1"'
        )
        raise ConfigError(msg)
    try:
        return Market.from_mapping(symbol, spec)
    except (TypeError, ValueError) as exc:
        msg = f"{source}: [markets.{symbol}]: {exc}"
        raise ConfigError(msg) from exc
