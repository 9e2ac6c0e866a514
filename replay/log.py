"""Reading a recorded exchange log: its markets and its journaled records."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from exchange.journal import JournalSchemaError, is_nats_url, read_journal
from exchange.journal.payload import (
    JOURNALED_DECODER,
    READABLE_JOURNAL_SCHEMAS,
    Journaled,
)
from exchange.markets import Market

__all__ = ["ExchangeLog", "margin_from_header", "markets_from_header"]


def markets_from_header(config: dict[str, object]) -> list[Market]:
    """Return the market table a journal header recorded."""
    table = config.get("markets")
    if not isinstance(table, dict):
        msg = "the journal header holds no market table"
        raise TypeError(msg)
    return [Market.from_mapping(symbol, spec) for symbol, spec in table.items()]


def margin_from_header(config: dict[str, object]) -> bool:
    """Return whether the journal was recorded with the margin ledger on.

    Journals from before the ledger have no ``margin`` entry: they ran without.
    """
    margin = config.get("margin", False)
    if isinstance(margin, bool):
        return margin
    msg = f"the journal header's margin setting {margin!r} is not a boolean"
    raise ValueError(msg)  # a bad header value, as for the market table


class ExchangeLog:
    """A journal opened read-only, decoded record by record.

    The journal is a directory of segment files or a ``nats://host:port/STREAM``
    JetStream journal (see ``exchange.journal.read_journal``).
    """

    def __init__(self, source: str | os.PathLike[str]) -> None:
        """Open the journal; nothing is modified, even a torn tail.

        Raises:
            JournalSchemaError: if the journal's payload schema is not one of
                `READABLE_JOURNAL_SCHEMAS` (schema 1 logs, with their derived
                events, are read as well as today's).
        """
        self.path = source if is_nats_url(source) else Path(source)
        self.reader = read_journal(self.path)
        self.header = self.reader.header
        version = self.header.schema_version
        if version not in READABLE_JOURNAL_SCHEMAS:
            raise JournalSchemaError(str(self.path), version, READABLE_JOURNAL_SCHEMAS)
        self.markets = markets_from_header(self.header.config)
        self.margin = margin_from_header(self.header.config)

    def entries(self, from_seq: int = 1) -> Iterator[Journaled]:
        """Yield every intact journaled record in order."""
        for _, payload in self.reader.read(from_seq):
            yield JOURNALED_DECODER.decode(payload)

    def damage(self) -> str | None:
        """After a full read: describe where reading stopped early, else None."""
        stop = self.reader.stop
        if stop is None or stop.clean:
            return None
        return str(stop)
