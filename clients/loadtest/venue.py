"""The venue under test: the config of a throwaway ``paperx serve`` for a run.

One account per bot, with deposits large enough that margin never binds, and
the markets the run trades. The server and its broker run as children
through `exchange.cli.server_process` (`ServerProcess`, `Mosquitto`).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

__all__ = ["account_secret", "write_server_config"]


def account_secret(account: str) -> str:
    """Return the API secret the load test gives ``account`` (a throwaway venue)."""
    return f"{account}-loadtest-secret"


def write_server_config(
    directory: Path,
    accounts: list[str],
    markets: dict[str, tuple[str, str, str]],
    fsync: str,
    *,
    deposit: str = "1000000000",
) -> Path:
    """Write the run's server config; return its path.

    ``markets``: symbol -> (tick, lot, start price of the index walk).
    """
    lines = ["[server]", 'journal = "journal"', f'fsync = "{fsync}"', "[feed.start]"]
    lines += [f'{symbol} = "{start}"' for symbol, (_, _, start) in markets.items()]
    for symbol, (tick, lot, _) in markets.items():
        lines += [f"[markets.{symbol}]", f'tick_size = "{tick}"', f'lot_size = "{lot}"']
    for name in accounts:
        lines += [
            f'[accounts."{name}"]',
            f'api_key = "{name}-key"',
            f'secret = "{account_secret(name)}"',
            f'deposit = "{Decimal(deposit)}"',
        ]
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "paperx.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
