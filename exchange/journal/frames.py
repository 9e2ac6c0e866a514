"""Journal frames: length-prefixed, CRC-checked, seq-numbered byte records.

One frame is a 16-byte header followed by the payload::

    u32 LE  payload length
    u32 LE  zlib.crc32 of (seq bytes + payload)
    u64 LE  seq
    ...     payload (opaque bytes; the journal never decodes it)

The seq sits in the header so a reader can index a segment without decoding a
payload, and the CRC covers it, so a flipped seq bit is caught like any other.
Because the seq bytes immediately precede the payload, the CRC of a stored
frame is one ``crc32`` over ``frame[8:]``.

:func:`scan_frames` walks a buffer frame by frame and tells precisely where and
why it stopped (:class:`StopReason`): at the clean end, at a torn (incomplete)
frame, at a CRC mismatch, or at an absurd length (the segment layer adds two
reasons of its own: a seq out of order, a damaged segment header). Callers
decide what a stop means: the writer truncates a damaged *tail*, a reader
reports it.
"""

from __future__ import annotations

import enum
import re
import struct
import zlib
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = [
    "FRAME_HEADER",
    "FRAME_HEADER_SIZE",
    "MAX_PAYLOAD_BYTES",
    "FrameScan",
    "StopReason",
    "encode_frame",
    "next_intact_frame",
    "scan_frames",
]

FRAME_HEADER: Final = struct.Struct("<IIQ")
"""The frame header layout: payload length, CRC, seq (all little-endian)."""

FRAME_HEADER_SIZE: Final = FRAME_HEADER.size

MAX_PAYLOAD_BYTES: Final = 1 << 26
"""The largest payload a frame may carry (64 MiB); a longer length is absurd."""

_SEQ: Final = struct.Struct("<Q")
# Bound once: these run on the exchange's hot path.
_pack_header = FRAME_HEADER.pack
_unpack_header = FRAME_HEADER.unpack_from
_pack_seq = _SEQ.pack
_crc32 = zlib.crc32


class StopReason(enum.StrEnum):
    """Why a frame scan stopped; the values are what logs and reports show."""

    END = "end"
    """The buffer ended exactly after a complete frame (or was empty)."""
    TORN = "torn"
    """The last frame is incomplete: the buffer ends inside its header or payload."""
    CRC = "crc"
    """A complete frame's CRC does not match its seq and payload."""
    LENGTH = "length"
    """A frame header states a length above :data:`MAX_PAYLOAD_BYTES`."""
    SEQ = "seq"
    """An intact frame's seq is not the one due (a scan given its first seq)."""
    HEADER = "header"
    """A segment's magic or header frame is missing or damaged (segment level)."""


def encode_frame(seq: int, payload: bytes) -> bytes:
    """Return the frame holding ``payload`` under ``seq``.

    Args:
        seq: The record's sequence number, 0 <= seq < 2**64 (0 is the header).
        payload: The opaque record bytes, at most :data:`MAX_PAYLOAD_BYTES` long.

    Returns:
        The 16-byte frame header followed by the payload.

    Raises:
        ValueError: If the payload is too long.
        struct.error: If ``seq`` does not fit in a u64.
    """
    n = len(payload)
    if n > MAX_PAYLOAD_BYTES:
        msg = f"payload of {n} bytes exceeds the {MAX_PAYLOAD_BYTES}-byte frame limit"
        raise ValueError(msg)
    return _pack_header(n, _crc32(payload, _crc32(_pack_seq(seq))), seq) + payload


class FrameScan:
    """An iterator over the good frames of a buffer that remembers where it stopped.

    Iterate it to get ``(offset, seq, payload)`` for every intact frame, in
    order; ``payload`` is a zero-copy ``memoryview`` into the buffer. Once the
    iteration ends, :attr:`reason`, :attr:`end` and :attr:`detail` say why and
    where: ``end`` is the offset just past the last good frame, which is where
    a damaged tail should be cut. With ``first_seq``, the frames' seqs must
    run ``first_seq, first_seq + 1, ...``: one out of order stops the scan
    (`StopReason.SEQ`). `run` scans to the end without yielding anything,
    for a caller that needs only where and why it stops.
    """

    __slots__ = ("_buf", "_first_seq", "_start", "detail", "end", "frames", "reason")

    def __init__(
        self,
        buf: bytes | bytearray | memoryview,
        start: int = 0,
        first_seq: int | None = None,
    ) -> None:
        """Prepare to scan ``buf`` from byte offset ``start``."""
        self._buf = memoryview(buf).cast("B")
        self._start = start
        self._first_seq = first_seq
        self.end = start
        self.frames = 0
        self.reason = StopReason.END
        self.detail = ""

    def __iter__(self) -> Iterator[tuple[int, int, memoryview]]:
        """Yield ``(offset, seq, payload)`` per intact frame, then record the stop."""
        return self._scan(collect=True)

    def run(self) -> None:
        """Scan every frame without yielding any; then the attributes say where."""
        for _ in self._scan(collect=False):
            pass  # nothing is yielded: the scan runs to its stop in one step

    def _scan(self, *, collect: bool) -> Iterator[tuple[int, int, memoryview]]:
        """The scan: yield each intact frame if ``collect``, then record the stop."""
        # Every read and recovery runs this loop once per record: the counts
        # live in locals and reach the attributes when the scan ends (or is
        # abandoned), which is when they are documented to be read.
        buf = self._buf
        size = len(buf)
        off = self._start
        hsize = FRAME_HEADER_SIZE
        unpack, crc32 = _unpack_header, _crc32
        expected = self._first_seq
        frames = 0
        try:
            while off < size:
                if size - off < hsize:
                    detail = f"{size - off} of {hsize} header bytes"
                    self._stop(off, StopReason.TORN, detail)
                    return
                n, crc, seq = unpack(buf, off)
                if n > MAX_PAYLOAD_BYTES:
                    self._stop(off, StopReason.LENGTH, f"payload length {n}")
                    return
                stop = off + hsize + n
                if stop > size:
                    detail = f"{size - off} of {stop - off} bytes"
                    self._stop(off, StopReason.TORN, detail)
                    return
                actual = crc32(buf[off + 8 : stop])
                if actual != crc:
                    detail = f"crc {actual:#010x} != {crc:#010x}"
                    self._stop(off, StopReason.CRC, detail)
                    return
                if expected is not None:
                    if seq != expected:
                        detail = f"seq {seq} where {expected} was due"
                        self._stop(off, StopReason.SEQ, detail)
                        return
                    expected += 1
                frames += 1
                if collect:
                    yield off, seq, buf[off + hsize : stop]
                off = stop
            self._stop(off, StopReason.END, "")
        finally:
            self.end = off  # past the last good frame: where any stop was made
            self.frames += frames

    def _stop(self, offset: int, reason: StopReason, detail: str) -> None:
        """Record that the scan stopped at ``offset`` for ``reason``."""
        self.end = offset
        self.reason = reason
        self.detail = detail

    @property
    def dropped(self) -> int:
        """Return how many bytes lie past the last good frame (0 on a clean end)."""
        return len(self._buf) - self.end


def scan_frames(
    buf: bytes | bytearray | memoryview, start: int = 0, first_seq: int | None = None
) -> FrameScan:
    """Return a :class:`FrameScan` over ``buf`` from byte offset ``start``.

    Args:
        buf: The bytes to scan, e.g. a whole segment file.
        start: Where the first frame begins (after the segment magic).
        first_seq: If given, the seq the first frame must carry (each next
            one the seq after): a frame out of order stops the scan.

    Returns:
        An iterable of ``(offset, seq, payload)`` whose attributes report, once
        it is exhausted, where and why the scan stopped.
    """
    return FrameScan(buf, start, first_seq)


def next_intact_frame(
    buf: bytes | bytearray | memoryview, start: int, after_seq: int
) -> int | None:
    """Return the offset of the first intact frame at or past ``start``, if any.

    What tells a damaged frame from a torn tail: a crash tears only the
    frame being written, so an intact frame *after* damage means the damage
    is inside the journal, not at its end. The search looks at every byte
    offset for a header whose length fits the buffer, whose seq lies in
    ``(after_seq, after_seq + frames that fit]`` (a frame is at least 16
    bytes) and whose CRC matches; a regular expression skips, in C, offsets
    whose length or seq high word cannot be right, so garbage and zero-filled
    blocks are passed over quickly.

    Args:
        buf: The bytes to search (a segment).
        start: The first offset to try (the damaged frame's).
        after_seq: The last good seq before the damage.

    Returns:
        The offset of the first intact frame found, or None.
    """
    view = memoryview(buf).cast("B")
    size = len(view)
    highest = after_seq + (size - start) // FRAME_HEADER_SIZE + 1
    for found in _candidates(bytes(view[start:]), after_seq, highest):
        off = start + found
        n, crc, seq = _unpack_header(view, off)
        stop = off + FRAME_HEADER_SIZE + n
        if (
            after_seq < seq <= highest
            and stop <= size
            and _crc32(view[off + 8 : stop]) == crc
        ):
            return off
    return None


def _candidates(data: bytes, low: int, high: int) -> Iterator[int]:
    """Yield offsets where a frame header with a seq in ``(low, high]`` may start.

    The length's top byte is at most 3 (:data:`MAX_PAYLOAD_BYTES`), the seq
    is not 0, and its high 32 bits are those of ``low`` or ``high``.
    """
    words = sorted({low >> 32, high >> 32})
    tails = b"|".join(re.escape(_HIGH_WORD.pack(w)) for w in words)
    # a seq above ``low`` (>= 0) is never 0: all-zero blocks never match
    pattern = re.compile(
        rb"(?=.{3}[\x00-\x03].{4}(?!\x00{8}).{4}(?:" + tails + rb"))", re.DOTALL
    )
    for match in pattern.finditer(data):
        yield match.start()


_HIGH_WORD: Final = struct.Struct("<I")
