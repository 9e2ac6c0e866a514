"""MemoryJournal: the in-process journal for tests, notebooks and the facade."""

from __future__ import annotations

from typing import TYPE_CHECKING

from exchange.journal.base import FsyncPolicy, JournalHeader
from exchange.journal.durability import DurableJournal

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["MemoryJournal"]

_DEFAULT_HEADER = JournalHeader(schema_version=0, config_hash="", config={})


class MemoryJournal(DurableJournal):
    """A journal that keeps its records in a list and loses them with the process.

    With the default policy ("always") every record is durable as soon as it
    is appended. Under "batch" it keeps the same bookkeeping as a file
    journal (``durable_seq`` lags until a commit), which lets tests exercise
    the server's ack holding without touching a disk.
    """

    def __init__(
        self,
        header: JournalHeader = _DEFAULT_HEADER,
        fsync: FsyncPolicy = "always",
        batch_records: int = 512,
        batch_ms: float = 2.0,
    ) -> None:
        """Start an empty journal whose first seq is ``header.first_seq``.

        Raises:
            JournalError: If the policy or the batch limits are invalid.
        """
        super().__init__(header, fsync, batch_records, batch_ms)
        self._payloads: list[bytes] = []

    def _write(self, seq: int, payload: bytes) -> None:  # noqa: ARG002 -- seq is implied by position
        """Keep the payload; its seq is ``first_seq`` plus its index."""
        self._payloads.append(bytes(payload))

    def read(self, from_seq: int = 1) -> Iterator[tuple[int, bytes]]:
        """Yield every stored ``(seq, payload)`` with ``seq >= from_seq``, in order.

        Records appended while the iterator is live are not included.
        """
        first = self._header.first_seq
        start = max(from_seq - first, 0)
        stop = len(self._payloads)
        for index in range(start, stop):
            yield first + index, self._payloads[index]
