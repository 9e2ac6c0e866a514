"""Reading a segmented journal in seq order, strictly or read-only and lenient.

:func:`read_journal` opens a journal directory without ever modifying it,
for ``paperx replay verify`` on a journal that is still being written or on
a damaged copy: it reads up to the first bad frame and reports where and why
it stopped (:class:`ReadStop`) instead of raising. The writer
(:class:`~exchange.journal.file.FileJournal`) reads through the same code in
strict mode, where any damage raises :class:`~exchange.errors.JournalCorrupt`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import msgspec

from exchange.errors import JournalCorrupt, JournalError
from exchange.journal.frames import StopReason
from exchange.journal.segment import SegmentScan, list_segments, read_header

if TYPE_CHECKING:
    import os
    from collections.abc import Callable, Iterator, Sequence

    from exchange.journal.base import JournalHeader

__all__ = [
    "JournalReader",
    "ReadStop",
    "ReadableJournal",
    "iter_segments",
    "raise_corrupt",
    "read_journal",
]


class ReadStop(msgspec.Struct, frozen=True, kw_only=True):
    """Where and why reading a journal stopped."""

    path: str
    """The segment file reading stopped in."""
    offset: int
    """Byte offset just past the last good frame in that file."""
    reason: str
    """A :class:`~exchange.journal.frames.StopReason` value; ``"end"`` is clean."""
    detail: str
    """What was found there, e.g. ``"7 of 216 bytes"``."""
    last_seq: int
    """The last good seq read before the stop."""
    dropped_bytes: int
    """Bytes of that file past ``offset`` (a torn or damaged tail)."""

    @property
    def clean(self) -> bool:
        """Return whether reading reached the end of the journal without damage."""
        return self.reason == StopReason.END

    def __str__(self) -> str:
        """Render as ``torn at <path> byte 1234 after seq 99 (7 of 216 bytes)``."""
        if self.clean and not self.detail:
            return f"clean end at {self.path} byte {self.offset}, seq {self.last_seq}"
        return (
            f"{self.reason} at {self.path} byte {self.offset} after seq "
            f"{self.last_seq} ({self.detail}; {self.dropped_bytes} bytes after it)"
        )


def raise_corrupt(stop: ReadStop) -> None:
    """Raise :class:`JournalCorrupt` for ``stop``: the strict readers' stop handler.

    Raises:
        JournalCorrupt: Always.
    """
    raise JournalCorrupt(stop.path, stop.offset, f"{stop.reason}: {stop.detail}")


def iter_segments(
    segments: Sequence[tuple[int, Path]],
    from_seq: int,
    until_seq: int | None,
    on_stop: Callable[[ReadStop], None],
) -> Iterator[tuple[int, memoryview]]:
    """Yield ``(seq, payload)`` from ``segments`` for ``from_seq <= seq <= until_seq``.

    Args:
        segments: ``(first_seq, path)`` per segment, oldest first.
        from_seq: The first seq wanted; earlier segments are not read.
        until_seq: The last seq wanted, or None for everything stored.
        on_stop: Called once reading stops, unless it stopped because it got
            everything up to ``until_seq``; it may raise (strict) or record.
    """
    start = 0
    for index, (first, _) in enumerate(segments):
        if first <= from_seq:
            start = index
    expected = segments[start][0] if segments else from_seq
    for first, path in segments[start:]:
        if first != expected:
            on_stop(_gap(path, first, expected))
            return
        scan = SegmentScan(path, path.read_bytes(), first)
        scan.seek(from_seq)  # the records before it are not read
        for seq, payload in scan:
            if until_seq is not None and seq > until_seq:
                return
            yield seq, payload
        expected = scan.last_seq + 1
        if scan.reason == StopReason.END and path != segments[-1][1]:
            continue
        if until_seq is None or scan.last_seq < until_seq:
            on_stop(_stop_of(scan, until_seq))
        return


def _stop_of(scan: SegmentScan, until_seq: int | None) -> ReadStop:
    """Return the stop a finished segment scan reports."""
    detail = scan.detail
    if scan.reason == StopReason.END and until_seq is not None:
        detail = f"the journal ends at seq {scan.last_seq}, not {until_seq}"
    return ReadStop(
        path=str(scan.path),
        offset=scan.end,
        reason=str(scan.reason),
        detail=detail,
        last_seq=scan.last_seq,
        dropped_bytes=scan.dropped,
    )


def _gap(path: Path, first: int, expected: int) -> ReadStop:
    """Return the stop for a segment that does not start where its predecessor ended."""
    return ReadStop(
        path=str(path),
        offset=0,
        reason=str(StopReason.SEQ),
        detail=f"segment starts at seq {first} where {expected} was due",
        last_seq=expected - 1,
        dropped_bytes=0,
    )


class JournalReader:
    """A read-only view of a journal directory: it never writes, truncates or deletes.

    Each :meth:`read` lists the segments afresh (the journal may be growing),
    reads up to the first bad frame, and leaves the outcome in :attr:`stop`.
    A torn last frame is what a journal being written looks like, so it is
    reported like any damage and the caller decides whether it matters.
    """

    def __init__(self, directory: Path) -> None:
        """Open the journal in ``directory`` and read its header.

        Raises:
            JournalError: If the directory holds no journal segment.
            JournalCorrupt: If the first segment's header is damaged.
        """
        self.directory = directory
        segments = list_segments(directory)
        if not segments:
            msg = f"{directory} holds no journal segments (*.pxj)"
            raise JournalError(msg)
        self.header: JournalHeader = read_header(segments[0][1], segments[0][0])
        self.stop: ReadStop | None = None

    @property
    def segments(self) -> list[Path]:
        """Return the paths of the journal's segments now, oldest first."""
        return [path for _, path in list_segments(self.directory)]

    def read(self, from_seq: int = 1) -> Iterator[tuple[int, bytes]]:
        """Yield every intact ``(seq, payload)`` with ``seq >= from_seq``, in order.

        Reading ends at the first damage or at the end; :attr:`stop` then
        says which, where, and the last good seq.
        """
        self.stop = None
        segments = list_segments(self.directory)
        for seq, payload in iter_segments(segments, from_seq, None, self._record):
            yield seq, bytes(payload)

    def _record(self, stop: ReadStop) -> None:
        """Keep where reading stopped."""
        self.stop = stop

    def bisect(self, key: Callable[[bytes], int], target: int) -> int:
        """Return the first seq whose payload's ``key`` is ``target`` or more.

        ``key`` must not decrease along the journal (an exchange time does
        not). The newest segment whose first record is below ``target`` is
        found by reading segments' first records, then the records inside it
        by a binary search over its frames (walked by their headers): about
        log2(records) payloads are read. Past the last record if none
        qualifies; a record the search reaches is not CRC-checked (reading
        from the seq returned checks what it reads).
        """
        segments = list_segments(self.directory)
        for first, path in reversed(segments):
            found = _first_payload(path, first)
            if found is not None and key(found) < target:
                break
        else:
            return segments[0][0] if segments else self.header.first_seq
        scan = SegmentScan(path, path.read_bytes(), first)
        frames = list(scan.walk())
        low, high = 1, len(frames)  # the first record's key is below target
        while low < high:
            middle = (low + high) // 2
            offset, _, end = frames[middle]
            if key(bytes(scan.payload(offset, end))) < target:
                low = middle + 1
            else:
                high = middle
        return frames[low][1] if low < len(frames) else frames[-1][1] + 1


_PROBE_BYTES = 1 << 20  # enough for a segment's header and first frame


def _first_payload(path: Path, first: int) -> bytes | None:
    """Return the payload of a segment's first record, or None if it has none intact."""
    with path.open("rb") as file:
        data = file.read(_PROBE_BYTES)
    found = next(iter(SegmentScan(path, data, first)), None)
    if found is None and len(data) == _PROBE_BYTES:  # a first frame beyond it
        found = next(iter(SegmentScan(path, path.read_bytes(), first)), None)
    return None if found is None else bytes(found[1])


class ReadableJournal(Protocol):
    """A journal opened read-only: its header, its records, where reading stopped.

    :class:`JournalReader` (a directory) and
    :class:`~exchange.journal.nats.NatsJournalReader` (a JetStream stream).
    """

    header: JournalHeader
    stop: ReadStop | None

    def read(self, from_seq: int = 1) -> Iterator[tuple[int, bytes]]:
        """Yield every intact ``(seq, payload)`` with ``seq >= from_seq``, in order."""
        ...

    def bisect(self, key: Callable[[bytes], int], target: int) -> int:
        """Return the first seq whose payload's non-decreasing ``key`` >= ``target``."""
        ...


def read_journal(source: str | os.PathLike[str]) -> ReadableJournal:
    """Open the journal at ``source`` read-only: a directory or a ``nats://`` URL.

    See :class:`JournalReader` and :class:`~exchange.journal.nats.NatsJournalReader`.

    Raises:
        JournalError: If ``source`` holds no journal (or its server is unreachable).
        JournalCorrupt: If the journal's header is damaged.
    """
    from exchange.journal.target import is_nats_url  # noqa: PLC0415 -- a cycle

    if is_nats_url(source):
        from exchange.journal.nats import NatsJournalReader  # noqa: PLC0415

        return NatsJournalReader(str(source))
    return JournalReader(Path(source))
