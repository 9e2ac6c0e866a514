r"""Journal segments: one file per run of records, named by its first seq.

A segment is ``{first_seq:020d}.pxj``: the magic ``b"PAPERXJ\x01"``, a frame
with seq 0 holding the msgpack :class:`JournalHeader` (whose ``first_seq`` is
the segment's), then one frame per record, seqs rising by one. A segment is
created atomically (written as ``.pxj.tmp``, fsynced, renamed, directory
fsynced), so a file with a segment name always starts with a whole header;
only a crash under ``fsync="off"`` can break that.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Final

import msgspec

from exchange.errors import JournalCorrupt
from exchange.journal.base import JournalHeader
from exchange.journal.frames import (
    FRAME_HEADER,
    FRAME_HEADER_SIZE,
    MAX_PAYLOAD_BYTES,
    FrameScan,
    StopReason,
    encode_frame,
    next_intact_frame,
    scan_frames,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

__all__ = [
    "MAGIC",
    "SUFFIX",
    "TEMP_SUFFIX",
    "SegmentScan",
    "create_segment",
    "fsync_directory",
    "intact_after",
    "list_segments",
    "read_header",
    "segment_path",
]

MAGIC: Final = b"PAPERXJ\x01"
"""The first bytes of every segment; the last byte is the frame format version."""
SUFFIX: Final = ".pxj"
TEMP_SUFFIX: Final = ".pxj.tmp"
_NAME: Final = re.compile(r"^(\d{20})\.pxj$")
_PREFIX: Final = len(MAGIC) + FRAME_HEADER_SIZE
_HEADER_ENCODER: Final = msgspec.msgpack.Encoder()
_HEADER_DECODER: Final = msgspec.msgpack.Decoder(JournalHeader)


def segment_path(directory: Path, first_seq: int) -> Path:
    """Return the path of the segment whose first record is ``first_seq``."""
    return directory / f"{first_seq:020d}{SUFFIX}"


def list_segments(directory: Path) -> list[tuple[int, Path]]:
    """Return ``(first_seq, path)`` of every segment in ``directory``, oldest first."""
    found = []
    for path in directory.iterdir():
        match = _NAME.match(path.name)
        if match is not None:
            found.append((int(match.group(1)), path))
    found.sort()
    return found


def fsync_directory(directory: Path) -> None:
    """Make the directory's entries (a created or renamed file) durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def create_segment(directory: Path, header: JournalHeader, durable: bool) -> Path:
    """Create the segment for ``header.first_seq`` holding only its header.

    Args:
        directory: The journal directory (it must exist).
        header: The header to store; its ``first_seq`` names the file.
        durable: Whether to fsync the file and the directory (False under "off").

    Returns:
        The new segment's path.
    """
    path = segment_path(directory, header.first_seq)
    temp = path.with_suffix(TEMP_SUFFIX)
    with temp.open("wb") as file:
        file.write(MAGIC + encode_frame(0, _HEADER_ENCODER.encode(header)))
        file.flush()
        if durable:
            os.fsync(file.fileno())
    temp.replace(path)
    if durable:
        fsync_directory(directory)
    return path


def read_header(path: Path, first_seq: int) -> JournalHeader:
    """Read and check only the header of the segment at ``path``.

    Raises:
        JournalCorrupt: If the magic or the header frame is missing or damaged,
            or the header's ``first_seq`` is not the one in the file name.
    """
    with path.open("rb") as file:
        data = file.read(_PREFIX)
        if len(data) == _PREFIX:
            length = FRAME_HEADER.unpack_from(data, len(MAGIC))[0]
            data += file.read(min(length, MAX_PAYLOAD_BYTES))
    scan = SegmentScan(path, data, first_seq)
    if scan.header is None:
        raise JournalCorrupt(str(path), scan.end, f"{scan.reason}: {scan.detail}")
    return scan.header


class SegmentScan:
    """The header and the intact, in-order records of one segment's bytes.

    The header is checked when the scan is built (:attr:`header` is None if
    it is damaged). Iterating yields ``(seq, payload)`` per record until the
    first damage (`run` scans without yielding); afterwards :attr:`reason`,
    :attr:`end` (the offset just past the last good frame), :attr:`detail`
    and :attr:`last_seq` tell where and why it stopped. ``payload`` is a
    ``memoryview`` into ``data``.
    """

    __slots__ = (
        "data",
        "detail",
        "end",
        "first_seq",
        "header",
        "last_seq",
        "path",
        "reason",
    )

    def __init__(self, path: Path, data: bytes, first_seq: int) -> None:
        """Check the magic and header of ``data``, read from ``path``."""
        self.path = path
        self.data = data
        self.first_seq = first_seq
        self.last_seq = first_seq - 1
        self.header: JournalHeader | None = None
        self.end = 0
        self.reason = StopReason.END
        self.detail = ""
        if data[: len(MAGIC)] != MAGIC:
            self._stop(0, StopReason.HEADER, f"bad magic {bytes(data[:8])!r}")
            return
        frames = scan_frames(data, len(MAGIC))
        first = next(iter(frames), None)
        if first is None:
            self._stop(
                frames.end, StopReason.HEADER, f"{frames.reason} {frames.detail}"
            )
            return
        _, seq, payload = first
        try:
            header = _HEADER_DECODER.decode(payload)
        except msgspec.DecodeError as exc:
            self._stop(len(MAGIC), StopReason.HEADER, f"undecodable header: {exc}")
            return
        if seq != 0 or header.first_seq != first_seq:
            detail = f"header seq {seq}, first_seq {header.first_seq}; name {first_seq}"
            self._stop(len(MAGIC), StopReason.HEADER, detail)
            return
        self.header = header
        self.end = len(MAGIC) + FRAME_HEADER_SIZE + len(payload)

    def _stop(self, offset: int, reason: StopReason, detail: str) -> None:
        """Record that the segment's good part ends at ``offset`` for ``reason``."""
        self.end = offset
        self.reason = reason
        self.detail = detail

    @property
    def dropped(self) -> int:
        """Return how many bytes lie past the last good frame."""
        return len(self.data) - self.end

    def walk(self) -> Iterator[tuple[int, int, int]]:
        """Yield ``(offset, seq, end)`` per record frame, reading only the headers.

        From where the scan stands, without CRC checks (nothing is read but
        the headers), so fast; it ends at a header that does not fit (a seq
        out of order, a length past the end), where iterating would report
        the damage. For finding records, not for trusting them.
        """
        if self.header is None:
            return
        data, off, expected = self.data, self.end, self.last_seq + 1
        size, hsize, unpack = len(data), FRAME_HEADER_SIZE, FRAME_HEADER.unpack_from
        while size - off >= hsize:
            n, _, seq = unpack(data, off)
            stop = off + hsize + n
            if seq != expected or stop > size:
                return
            yield off, seq, stop
            off = stop
            expected += 1

    def seek(self, seq: int) -> None:
        """Make iterating start at record ``seq``, walking over the frames before it.

        For a reader that wants a segment's later records only: the frames
        passed over are not checked (`walk`), and iterating then starts at
        ``seq``, or at the first frame the walk could not pass.
        """
        off, last = self.end, self.last_seq
        for _, found, stop in self.walk():
            if found >= seq:
                break
            off, last = stop, found
        self.end, self.last_seq = off, last

    def payload(self, offset: int, end: int) -> memoryview:
        """Return the payload of the frame at ``offset`` (ending at ``end``)."""
        return memoryview(self.data)[offset + FRAME_HEADER_SIZE : end]

    def __iter__(self) -> Iterator[tuple[int, memoryview]]:
        """Yield ``(seq, payload)`` per intact record, then record the stop."""
        if self.header is None:
            return
        frames = self._frames()
        try:
            for _, seq, payload in frames:
                yield seq, payload
        finally:
            self._take(frames)

    def run(self) -> None:
        """Scan every record without yielding any: then the attributes say where."""
        if self.header is not None:
            frames = self._frames()
            frames.run()
            self._take(frames)

    def _frames(self) -> FrameScan:
        """Return the scan of the records from where this scan stands."""
        return scan_frames(self.data, self.end, first_seq=self.last_seq + 1)

    def _take(self, frames: FrameScan) -> None:
        """Take over where and why a scan of the records stopped."""
        self.last_seq += frames.frames
        self._stop(frames.end, frames.reason, frames.detail)


def intact_after(scan: SegmentScan) -> tuple[int, int] | None:
    """Return where intact records resume after the damage a scan stopped at.

    Args:
        scan: A finished scan of a segment that stopped short of its end.

    Returns:
        ``(offset, records)``: the offset of the first intact frame past the
        damage and how many intact frames follow in a row from there; None
        if nothing intact follows (the damage is a torn tail).
    """
    if scan.reason == StopReason.END:
        return None
    offset = next_intact_frame(scan.data, scan.end, scan.last_seq)
    if offset is None:
        return None
    frames = scan_frames(scan.data, offset)
    frames.run()
    return offset, frames.frames
