"""Text for people and tools: exchange times as ISO-8601 UTC, E8 amounts, tables."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

__all__ = ["e8_text", "iso_utc", "money", "parse_iso_utc", "table"]

_NS = 10**9


def iso_utc(ts_ns: int) -> str:
    """Return an exchange time (ns since the epoch) as ISO-8601 UTC, to the ms."""
    seconds, ns = divmod(ts_ns, _NS)
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{ns // 1_000_000:03d}Z"


def parse_iso_utc(text: str) -> int:
    """Return the ns since the epoch of an ISO-8601 time (UTC unless it says).

    Raises:
        ValueError: if ``text`` is not an ISO-8601 date or time.
    """
    moment = datetime.fromisoformat(text)  # "Z" too, since Python 3.11
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    delta = moment - epoch
    return (delta.days * 86_400 + delta.seconds) * _NS + delta.microseconds * 1_000


def e8_text(e8: int) -> str:
    """Return an E8 amount as a plain decimal string, no trailing zeros."""
    value = Decimal(e8).scaleb(-8).normalize()
    return f"{value:f}"


def money(e8: int, *, signed: bool = False) -> str:
    """Return an E8 amount for a table: thousands separated, two decimals.

    ``signed`` writes a ``+`` before a gain too.
    """
    return f"{Decimal(e8).scaleb(-8):{'+' if signed else ''},.2f}"


def table(header: list[str], rows: list[list[str]]) -> str:
    """Return rows as aligned text columns (the first left, the rest right)."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        first, *rest = cells
        return "  ".join(
            [first.ljust(widths[0])]
            + [c.rjust(w) for c, w in zip(rest, widths[1:], strict=True)]
        ).rstrip()

    return "\n".join([line(header), *(line(r) for r in rows)])
