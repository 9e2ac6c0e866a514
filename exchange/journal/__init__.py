"""The journal: an append-only, sequenced, durable log of opaque record payloads.

Backends: :class:`MemoryJournal` (in process) and :class:`FileJournal`
(segment files). :func:`read_journal` reads a journal directory without ever
modifying it. See ``exchange.journal.base`` for the contract.
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
from exchange.journal.reader import JournalReader, ReadStop, read_journal

__all__ = [
    "FileJournal",
    "FsyncPolicy",
    "Journal",
    "JournalHeader",
    "JournalReader",
    "JournalSchemaError",
    "MemoryJournal",
    "ReadStop",
    "Recovery",
    "StopReason",
    "encode_frame",
    "read_journal",
    "scan_frames",
]
