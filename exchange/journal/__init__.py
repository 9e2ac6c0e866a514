"""The journal: an append-only, sequenced, durable log of opaque record payloads.

Backends: :class:`MemoryJournal` (in process), :class:`FileJournal`
(segment files) and ``exchange.journal.nats.NatsJournal`` (a NATS JetStream
stream, imported on demand: nats-py is optional). :func:`open_journal` opens
a directory or a ``nats://`` URL; :func:`read_journal` reads either without
ever modifying it. See ``exchange.journal.base`` for the contract.

Snapshots of the state a journal builds live beside it
(``exchange.journal.snapshots``): files in its directory, or objects in a
JetStream object store bucket of a stream's own
(``exchange.journal.nats_snapshots``).
"""

from exchange.journal.base import (
    FsyncPolicy,
    Journal,
    JournalHeader,
    JournalSchemaError,
    Recovery,
)
from exchange.journal.file import FileJournal
from exchange.journal.frames import StopReason, encode_frame, scan_frames
from exchange.journal.memory import MemoryJournal
from exchange.journal.reader import (
    JournalReader,
    ReadableJournal,
    ReadStop,
    read_journal,
)
from exchange.journal.target import is_nats_url, open_journal

__all__ = [
    "FileJournal",
    "FsyncPolicy",
    "Journal",
    "JournalHeader",
    "JournalReader",
    "JournalSchemaError",
    "MemoryJournal",
    "ReadStop",
    "ReadableJournal",
    "Recovery",
    "StopReason",
    "encode_frame",
    "is_nats_url",
    "open_journal",
    "read_journal",
    "scan_frames",
]
