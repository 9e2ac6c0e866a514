"""Where a journal lives: a directory of segment files, or a NATS JetStream stream.

The command line and the facade take one string for a journal; a
``nats://host:port/STREAM`` URL names a stream (see ``exchange.journal.nats``),
anything else a directory. nats-py is imported only when a URL is used.
"""

from __future__ import annotations

import os
from pathlib import Path

from exchange.journal.base import FsyncPolicy, Journal, JournalHeader
from exchange.journal.file import FileJournal

__all__ = ["NATS_SCHEME", "is_nats_url", "open_journal"]

NATS_SCHEME = "nats://"


def is_nats_url(target: object) -> bool:
    """Return whether ``target`` names a NATS journal (a ``nats://`` URL string)."""
    return isinstance(target, str) and target.startswith(NATS_SCHEME)


def open_journal(
    target: str | os.PathLike[str], header: JournalHeader, fsync: FsyncPolicy
) -> Journal:
    """Open (or create) the journal at ``target`` for appending.

    Raises:
        JournalError: If it cannot be opened (see the backends' ``open``).
    """
    if is_nats_url(target):
        from exchange.journal.nats import NatsJournal  # noqa: PLC0415 -- optional

        return NatsJournal.open(str(target), header=header, fsync=fsync)
    return FileJournal.open(Path(target), header=header, fsync=fsync)
