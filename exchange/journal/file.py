"""FileJournal: the embedded journal, append-only segment files in one directory.

Layout and recovery:

* Segments are ``{first_seq:020d}.pxj`` (see ``exchange.journal.segment``);
  a segment that reaches ``segment_bytes`` is synced and closed, and the next
  append starts a new one.
* Opening an existing journal reads the first segment's header (a given
  header must match its ``schema_version`` and ``config_hash``), checks every
  segment's header, and scans the *last* segment to its end. A torn or
  corrupt tail (incomplete frame, CRC mismatch, absurd length) is logged as
  ``journal_tail_truncated``, reported in :attr:`~DurableJournal.recovery`,
  and cut at the end of the last good frame (then fsynced): every complete
  record before it survives. It is a tail only if no intact frame follows
  it: damage with intact records after it (a flipped bit, not a crash
  mid-write) raises :class:`~exchange.errors.JournalCorrupt` with their
  count instead, and ``paperx replay repair`` moves the damaged part aside.
  Damage anywhere else raises
  :class:`~exchange.errors.JournalCorrupt`, since history cannot be dropped
  silently; ``verify=True`` scans the older segments too instead of only when
  they are read.
* Appends go through a buffered file object; an fsync is ``flush`` plus
  ``os.fdatasync`` (``os.fsync`` where there is none), which for an
  append-only file also persists the new length.
"""

from __future__ import annotations

import contextlib
import functools
import os
import struct
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Final

import msgspec

from exchange.errors import JournalCorrupt, JournalError
from exchange.journal.base import FsyncPolicy, JournalHeader, Recovery
from exchange.journal.durability import (
    DurableJournal,
    check_header,
    check_settings,
)
from exchange.journal.frames import (
    FRAME_HEADER,
    FRAME_HEADER_SIZE,
    MAX_PAYLOAD_BYTES,
    StopReason,
)
from exchange.journal.reader import iter_segments, raise_corrupt
from exchange.journal.segment import (
    MAGIC,
    TEMP_SUFFIX,
    SegmentScan,
    create_segment,
    intact_after,
    list_segments,
    read_header,
)
from exchange.logs import get_logger

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

__all__ = ["FileJournal"]

_log = get_logger(__name__)

_WRITE_BUFFER: Final = 1 << 20
_fdatasync: Final[Callable[[int], None]] = getattr(os, "fdatasync", os.fsync)
# Bound once: these run on the exchange's hot path.
_pack_header = FRAME_HEADER.pack
_pack_seq = struct.Struct("<Q").pack
_crc32 = zlib.crc32


class FileJournal(DurableJournal):
    """A durable journal in a directory of segment files; build it with :meth:`open`."""

    _file: BinaryIO

    def __init__(
        self,
        directory: Path,
        header: JournalHeader,
        *,
        fsync: FsyncPolicy,
        limits: tuple[int, int, float],
        segments: list[tuple[int, Path]],
        removed: list[str],
        verify: bool,
    ) -> None:
        """Recover the journal made of ``segments`` and open its last for appends.

        ``limits`` is ``(segment_bytes, batch_records, batch_ms)``; ``removed``
        lists the leftovers :meth:`open` deleted, for the recovery report.
        """
        segment_bytes, batch_records, batch_ms = limits
        super().__init__(header, fsync, batch_records, batch_ms)
        self._directory = directory
        self._segment_bytes = segment_bytes
        self._segments = segments
        self._seg_size = 0
        self._resume(removed, verify=verify)

    @classmethod
    def open(
        cls,
        directory: str | os.PathLike[str],
        header: JournalHeader | None = None,
        fsync: FsyncPolicy = "batch",
        segment_bytes: int = 64 << 20,
        batch_records: int = 512,
        batch_ms: float = 2.0,
        *,
        verify: bool = False,
    ) -> FileJournal:
        """Open the journal in ``directory``, creating or recovering it.

        Args:
            directory: The journal directory; created if missing.
            header: Required for a new journal. For an existing one, its
                ``schema_version`` and ``config_hash`` must match the stored
                header (its ``first_seq`` is ignored).
            fsync: The durability policy (see ``exchange.journal.base``).
            segment_bytes: Size at which a segment is closed and a new one begun.
            batch_records: Under "batch", commit once this many records wait.
            batch_ms: Under "batch", the least time between two commits.
            verify: Also scan every older segment (slow on a long journal).

        Returns:
            The open journal; ``recovery`` says what opening it found.

        Raises:
            JournalError: If a new journal has no header, or a setting is invalid.
            JournalMismatch: If ``header`` does not match the stored one.
            JournalCorrupt: If the journal is damaged anywhere but its tail.
        """
        check_settings(header, fsync, batch_records, batch_ms)
        if segment_bytes < 1:
            msg = f"segment_bytes must be positive, got {segment_bytes}"
            raise JournalError(msg)
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        removed = _remove_leftovers(path)
        segments = list_segments(path)
        if not segments:
            if header is None:
                msg = f"{path} holds no journal; a new journal needs a header"
                raise JournalError(msg)
            create_segment(path, header, durable=fsync != "off")
            segments = list_segments(path)
        stored = read_header(segments[0][1], segments[0][0])
        if header is not None:
            check_header(str(path), stored, header)
        limits = (segment_bytes, batch_records, batch_ms)
        return cls(
            path,
            stored,
            fsync=fsync,
            limits=limits,
            segments=segments,
            removed=removed,
            verify=verify,
        )

    # ------------------------------------------------------------ recovery

    def _resume(self, removed: list[str], *, verify: bool) -> None:
        """Check the segments, cut a damaged tail, and open the last for appends."""
        segments = self._segments
        for first, path in segments[1:]:
            if read_header(path, first).config_hash != self._header.config_hash:
                raise JournalCorrupt(str(path), len(MAGIC), "header of another journal")
        if verify:
            older = iter_segments(segments[:-1], 1, segments[-1][0] - 1, raise_corrupt)
            for _ in older:
                pass
        first, path = segments[-1]
        data = path.read_bytes()
        scan = SegmentScan(path, data, first)
        scan.run()
        if scan.reason in (StopReason.HEADER, StopReason.SEQ):
            raise JournalCorrupt(str(path), scan.end, f"{scan.reason}: {scan.detail}")
        _refuse_inner_damage(scan)
        self._last_seq = self._durable_seq = scan.last_seq
        self._open_writer(path, scan.end)
        try:
            if scan.reason != StopReason.END:
                self._cut_tail(scan)
            elif self._policy != "off":
                # What a crashed writer left may sit only in the page cache:
                # make it durable before calling it so.
                _fdatasync(self._file.fileno())
        except OSError as exc:
            self._file.close()
            msg = f"cannot recover {path}: {exc}"
            raise JournalError(msg) from exc
        self._recovery = self._report(scan, removed)
        _log.info(
            "journal_opened",
            directory=str(self._directory),
            segments=len(segments),
            first_seq=self._header.first_seq,
            last_seq=self._last_seq,
            fsync=self._policy,
        )

    def _cut_tail(self, scan: SegmentScan) -> None:
        """Truncate the last segment just past its last good frame, durably."""
        _log.warning(
            "journal_tail_truncated",
            path=str(scan.path),
            offset=scan.end,
            dropped_bytes=scan.dropped,
            reason=str(scan.reason),
            detail=scan.detail,
            last_seq=scan.last_seq,
        )
        os.ftruncate(self._file.fileno(), scan.end)
        if self._policy != "off":
            _fdatasync(self._file.fileno())

    def _report(self, scan: SegmentScan, removed: list[str]) -> Recovery:
        """Return the recovery report of an open that ended with ``scan``."""
        cut = scan.reason != StopReason.END
        return Recovery(
            segments=len(self._segments),
            records=self._last_seq - self._header.first_seq + 1,
            first_seq=self._header.first_seq,
            last_seq=self._last_seq,
            reason=str(scan.reason) if cut else "clean",
            detail=scan.detail,
            truncated_bytes=scan.dropped,
            truncated_at=(str(scan.path), scan.end) if cut else None,
            removed=tuple(removed),
        )

    def _open_writer(self, path: Path, size: int) -> None:
        """Make ``path`` (``size`` good bytes long) the segment appends go to."""
        self._file = path.open("ab", buffering=_WRITE_BUFFER)
        self._write_bytes = self._file.write
        self._seg_size = size

    # ------------------------------------------------------------ I/O hooks

    def _write(self, seq: int, payload: bytes) -> None:
        """Frame and buffer one record, starting a new segment first if full."""
        n = len(payload)
        if n > MAX_PAYLOAD_BYTES:
            msg = f"payload of {n} bytes exceeds the {MAX_PAYLOAD_BYTES}-byte limit"
            raise JournalError(msg)
        if self._seg_size >= self._segment_bytes and seq != self._segments[-1][0]:
            self._rotate(seq)  # (a segment holds at least one record)
        frame = _pack_header(n, _crc32(payload, _crc32(_pack_seq(seq))), seq) + payload
        try:
            self._write_bytes(frame)
        except OSError as exc:
            raise self._fail(exc) from exc
        self._seg_size += n + FRAME_HEADER_SIZE

    def _rotate(self, seq: int) -> None:
        """Sync and close the full segment, and start the one whose first is ``seq``."""
        self.sync()
        header = msgspec.structs.replace(self._header, first_seq=seq)
        try:
            self._file.close()
            path = create_segment(
                self._directory, header, durable=self._policy != "off"
            )
            self._open_writer(path, path.stat().st_size)
        except OSError as exc:
            raise self._fail(exc) from exc
        self._segments.append((seq, path))
        _log.info("journal_segment_started", path=str(path), first_seq=seq)

    def _flush(self) -> None:
        """Hand the write buffer to the OS."""
        self._file.flush()

    def _fsync(self) -> None:
        """Block until the current segment's flushed bytes are on stable storage."""
        _fdatasync(self._file.fileno())

    def _fsync_job(self) -> Callable[[], None]:
        """Return an fsync of a duplicate fd, immune to a concurrent rotation."""
        return functools.partial(_fsync_and_close, os.dup(self._file.fileno()))

    def _release(self) -> None:
        """Close the current segment file."""
        try:
            self._file.close()
        except OSError as exc:
            _log.warning("journal_close_failed", error=str(exc))

    # ------------------------------------------------------------ reading

    def read(self, from_seq: int = 1) -> Iterator[tuple[int, bytes]]:
        """Yield every stored ``(seq, payload)`` with ``seq >= from_seq``, in order.

        The records are those appended before the call (they are flushed to
        the OS first); later appends are not included.

        Raises:
            JournalCorrupt: When iteration reaches a damaged frame.
            JournalError: If a flush fails.
        """
        if self._usable:
            try:
                self._flush()
            except OSError as exc:
                raise self._fail(exc) from exc
        segments = list(self._segments)
        until = self._last_seq
        return _as_bytes(iter_segments(segments, from_seq, until, raise_corrupt))


def _as_bytes(records: Iterator[tuple[int, memoryview]]) -> Iterator[tuple[int, bytes]]:
    """Yield the records with each payload copied out of its segment buffer."""
    for seq, payload in records:
        yield seq, bytes(payload)


def _fsync_and_close(fd: int) -> None:
    """Fsync ``fd`` and close it (it is a duplicate made for a worker thread)."""
    try:
        _fdatasync(fd)
    finally:
        os.close(fd)


def _refuse_inner_damage(scan: SegmentScan) -> None:
    """Raise if intact frames follow where ``scan`` stopped: not a torn tail.

    Raises:
        JournalCorrupt: Naming the segment, the offset of the damage and the
            count of intact records after it.
    """
    following = intact_after(scan)
    if following is not None:
        raise JournalCorrupt(
            str(scan.path),
            scan.end,
            f"{scan.reason}: {scan.detail} (after seq {scan.last_seq}; intact "
            f"again at byte {following[0]})",
            records_after=following[1],
        )


def _remove_leftovers(directory: Path) -> list[str]:
    """Delete what an interrupted segment creation left behind; return their paths.

    That is any ``*.pxj.tmp`` file, and a last segment too short to hold even
    a frame header (only possible after a crash under ``fsync="off"``).
    """
    removed = [str(path) for path in directory.glob(f"*{TEMP_SUFFIX}")]
    segments = list_segments(directory)
    if segments and segments[-1][1].stat().st_size < len(MAGIC) + FRAME_HEADER_SIZE:
        removed.append(str(segments[-1][1]))
    for name in removed:
        with contextlib.suppress(FileNotFoundError):
            Path(name).unlink()
    if removed:
        _log.warning("journal_leftovers_removed", paths=removed)
    return removed
