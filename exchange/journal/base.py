"""The journal contract: the protocol every backend meets, its header and reports.

A journal stores one opaque payload per sequenced record. The caller (the
sequencer) encodes a msgpack ``Journaled(record, events)``; the journal never
decodes it. Seqs are positive and gapless: the first append is
``header.first_seq`` and every later one is exactly ``last_seq + 1``.

Durability follows the :data:`FsyncPolicy`:

* ``"always"``: a record is durable (written and fsynced) when ``append``
  returns.
* ``"batch"``: group commit. A record becomes durable at the next commit: a
  ``sync()``, or a commit that a ``maybe_sync()`` (finding the batch full or
  old enough) or the ``run_group_commit()`` task starts; its fsync runs in the
  journal's fsync thread, and ``durable_seq`` moves when the next
  ``maybe_sync()``, ``sync()`` or the task collects it. Nothing becomes durable
  by itself.
* ``"off"``: a record counts as durable as soon as ``append`` has handed it to
  the OS (one ``write`` per append, never an fsync). It survives the exchange
  process crashing, but **promises nothing across power loss or an OS crash**.

``durable_seq`` is the highest seq durable under the policy, and
``wait_durable(seq)`` lets the asyncio server hold each acknowledgement until
its record is durable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, Protocol, Self, runtime_checkable

import msgspec

from exchange.errors import JournalError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from types import TracebackType

__all__ = [
    "FsyncPolicy",
    "Journal",
    "JournalHeader",
    "JournalSchemaError",
    "Recovery",
]

FsyncPolicy = Literal["always", "batch", "off"]
"""When an appended record becomes durable; see the module docstring."""


class JournalHeader(msgspec.Struct, frozen=True, kw_only=True):
    """What a journal was written under, stored at the start of every segment.

    Encoded as a msgpack map, so fields can be added (with defaults, last)
    without breaking old journals.
    """

    schema_version: int
    """Version of the payload schema (``exchange.messages``); a break bumps it."""
    config_hash: str
    """Hash of the exchange config the records were produced under."""
    config: dict[str, Any]
    """The config itself (market table etc.) as plain msgpack-able data."""
    first_seq: int = 1
    """The first seq of the journal (or, in a file segment, of that segment)."""


class JournalSchemaError(JournalError):
    """Raised when a journal's payload schema is not one this paperx can read."""

    def __init__(self, path: str, version: int, readable: frozenset[int]) -> None:
        """Keep the journal's path, its schema version and the versions read."""
        super().__init__(path, version, readable)
        self.path = path
        self.version = version
        self.readable = readable

    def __str__(self) -> str:
        """Render the versions and what to do about it."""
        newer = self.version > max(self.readable)
        return (
            f"{self.path}: journal schema {self.version} is not one this paperx "
            f"reads ({', '.join(map(str, sorted(self.readable)))}); it was written "
            f"by {'a newer' if newer else 'another'} paperx: replay it with the "
            "version that wrote it" + (", or upgrade paperx" if newer else "")
        )


class Recovery(msgspec.Struct, frozen=True, kw_only=True):
    """What opening a journal found, for the CLI and the logs to report."""

    segments: int
    """Segment files in the journal (0 for an in-memory journal)."""
    records: int
    """Records the journal holds after recovery."""
    first_seq: int
    """The journal's first seq (its header's)."""
    last_seq: int
    """The last seq held, or ``first_seq - 1`` when empty."""
    reason: str = "clean"
    """``"clean"``, or why the tail was cut: ``"torn"``, ``"crc"``, ``"length"``."""
    detail: str = ""
    """What the damage looked like, e.g. ``"7 of 216 bytes"``."""
    truncated_bytes: int = 0
    """Bytes cut from the end of the last segment."""
    truncated_at: tuple[str, int] | None = None
    """``(path, offset)`` where the last segment was cut, if it was."""
    removed: tuple[str, ...] = ()
    """Files removed: leftovers of an interrupted segment creation."""

    @property
    def clean(self) -> bool:
        """Return whether the journal opened without losing any bytes."""
        return self.truncated_bytes == 0 and not self.removed


@runtime_checkable
class Journal(Protocol):
    """An append-only, sequenced, durable log of opaque record payloads."""

    @property
    def header(self) -> JournalHeader:
        """Return the header the journal was created with."""
        ...

    @property
    def recovery(self) -> Recovery:
        """Return what opening the journal found (and cut)."""
        ...

    @property
    def fsync(self) -> FsyncPolicy:
        """Return the durability policy."""
        ...

    @property
    def last_seq(self) -> int:
        """Return the last appended seq, or ``header.first_seq - 1`` when empty."""
        ...

    @property
    def durable_seq(self) -> int:
        """Return the highest seq durable under the policy."""
        ...

    def append(self, seq: int, payload: bytes) -> None:
        """Append one record; durable per the policy.

        Raises:
            JournalSeqError: If ``seq`` is not ``last_seq + 1``.
            JournalError: If the journal is closed or a write or fsync failed.
        """
        ...

    def sync(self) -> None:
        """Make every appended record durable now (write, and fsync unless off)."""
        ...

    def maybe_sync(self) -> None:
        """Start committing the batch if full or old; collect a finished commit."""
        ...

    async def wait_durable(self, seq: int) -> None:
        """Return once ``seq`` is durable.

        Raises:
            JournalError: If the journal fails or closes before that.
        """
        ...

    async def run_group_commit(self) -> None:
        """Commit pending batches until the journal closes (the server's task)."""
        ...

    def on_durable(self, callback: Callable[[int], None]) -> None:
        """Call ``callback(durable_seq)`` each time ``durable_seq`` advances."""
        ...

    def read(self, from_seq: int = 1) -> Iterator[tuple[int, bytes]]:
        """Yield every stored ``(seq, payload)`` with ``seq >= from_seq``, in order."""
        ...

    def close(self) -> None:
        """Sync and close; later appends raise."""
        ...

    async def aclose(self) -> None:
        """Sync without blocking the event loop, then close."""
        ...

    def __enter__(self) -> Self:
        """Return the journal itself."""
        ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Sync and close."""
        ...

    async def __aenter__(self) -> Self:
        """Return the journal itself."""
        ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Sync (off the event loop) and close."""
        ...
