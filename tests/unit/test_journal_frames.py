"""Tests of journal framing: encoding frames and scanning buffers of them."""

from __future__ import annotations

import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.journal.frames import (
    FRAME_HEADER_SIZE,
    MAX_PAYLOAD_BYTES,
    StopReason,
    encode_frame,
    scan_frames,
)


def frames_of(payloads: list[bytes], first_seq: int = 1) -> bytes:
    """Return the frames of ``payloads`` under consecutive seqs, concatenated."""
    return b"".join(encode_frame(first_seq + i, p) for i, p in enumerate(payloads))


def scanned(buf: bytes, start: int = 0) -> tuple[list[tuple[int, int, bytes]], object]:
    """Return the ``(offset, seq, payload)`` triples of a scan, and the scan."""
    scan = scan_frames(buf, start)
    return [(off, seq, bytes(p)) for off, seq, p in scan], scan


class TestEncodeFrame:
    """The frame layout."""

    def test_layout_is_length_crc_seq_payload(self) -> None:
        """A frame is u32 length, u32 crc of seq bytes + payload, u64 seq, payload."""
        frame = encode_frame(7, b"hello")
        length, crc, seq = struct.unpack_from("<IIQ", frame)
        assert (length, seq) == (5, 7)
        assert crc == zlib.crc32(struct.pack("<Q", 7) + b"hello")
        assert frame[FRAME_HEADER_SIZE:] == b"hello"
        assert len(frame) == FRAME_HEADER_SIZE + 5

    def test_payload_over_the_limit_is_refused(self) -> None:
        """A payload longer than MAX_PAYLOAD_BYTES raises ValueError."""
        with pytest.raises(ValueError, match="exceeds"):
            encode_frame(1, bytes(MAX_PAYLOAD_BYTES + 1))


class TestScanFrames:
    """Scanning stops precisely and says why."""

    def test_clean_buffer_yields_every_frame(self) -> None:
        """A buffer of whole frames yields them all and stops at END."""
        buf = frames_of([b"a", b"", b"ccc"])
        found, scan = scanned(buf)
        assert found == [(0, 1, b"a"), (17, 2, b""), (33, 3, b"ccc")]
        assert (scan.reason, scan.end, scan.dropped, scan.frames) == (
            StopReason.END,
            len(buf),
            0,
            3,
        )

    def test_empty_buffer_is_a_clean_end(self) -> None:
        """An empty buffer yields nothing and ends cleanly at offset 0."""
        found, scan = scanned(b"")
        assert found == []
        assert (scan.reason, scan.end) == (StopReason.END, 0)

    def test_start_offset_skips_a_prefix(self) -> None:
        """Scanning from ``start`` reports offsets in the whole buffer."""
        buf = b"MAGIC" + frames_of([b"x"])
        found, scan = scanned(buf, 5)
        assert found == [(5, 1, b"x")]
        assert scan.end == len(buf)

    def test_payloads_are_zero_copy_views(self) -> None:
        """Payloads come out as memoryviews into the scanned buffer."""
        buf = frames_of([b"abc"])
        (_, _, payload), *_ = scan_frames(buf)
        assert isinstance(payload, memoryview)
        assert payload.obj is buf

    def test_incomplete_header_is_torn(self) -> None:
        """A buffer ending inside a frame header stops TORN at that frame."""
        good = frames_of([b"one"])
        found, scan = scanned(good + encode_frame(2, b"two")[:10])
        assert [seq for _, seq, _ in found] == [1]
        assert (scan.reason, scan.end, scan.dropped) == (StopReason.TORN, len(good), 10)
        assert "10 of 16 header bytes" in scan.detail

    def test_incomplete_payload_is_torn(self) -> None:
        """A buffer ending inside a payload stops TORN at that frame."""
        good = frames_of([b"one"])
        _, scan = scanned(good + encode_frame(2, b"payload")[:-1])
        assert (scan.reason, scan.end) == (StopReason.TORN, len(good))

    def test_crc_mismatch_stops_at_the_bad_frame(self) -> None:
        """A frame whose payload changed stops CRC at that frame's offset."""
        buf = bytearray(frames_of([b"one", b"two", b"three"]))
        buf[19 + FRAME_HEADER_SIZE] ^= 0x01
        found, scan = scanned(bytes(buf))
        assert [seq for _, seq, _ in found] == [1]
        assert (scan.reason, scan.end) == (StopReason.CRC, 19)

    def test_absurd_length_stops_at_the_bad_frame(self) -> None:
        """A length above the limit stops LENGTH without reading on."""
        good = frames_of([b"one"])
        bad = struct.pack("<IIQ", MAX_PAYLOAD_BYTES + 1, 0, 2)
        _, scan = scanned(good + bad + b"x" * 100)
        assert (scan.reason, scan.end, scan.dropped) == (
            StopReason.LENGTH,
            len(good),
            len(bad) + 100,
        )

    def test_zero_filled_tail_is_caught(self) -> None:
        """Zeros after the last frame (a preallocated tail) fail the CRC."""
        good = frames_of([b"one"])
        _, scan = scanned(good + bytes(64))
        assert (scan.reason, scan.end) == (StopReason.CRC, len(good))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=300), min_size=1, max_size=12), st.data())
def test_any_cut_keeps_exactly_the_whole_frames(
    payloads: list[bytes], data: st.DataObject
) -> None:
    """Cutting a buffer anywhere yields exactly the frames wholly before the cut."""
    buf = frames_of(payloads)
    cut = data.draw(st.integers(0, len(buf)))
    found, scan = scanned(buf[:cut])
    ends = [0]
    for p in payloads:
        ends.append(ends[-1] + FRAME_HEADER_SIZE + len(p))
    whole = max(i for i, end in enumerate(ends) if end <= cut)
    assert [p for _, _, p in found] == payloads[:whole]
    assert scan.end == ends[whole]
    assert scan.reason == (StopReason.END if cut == ends[whole] else StopReason.TORN)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=200), min_size=1, max_size=8), st.data())
def test_any_flipped_bit_stops_the_scan_at_its_frame(
    payloads: list[bytes], data: st.DataObject
) -> None:
    """Flipping any single bit stops the scan at the frame holding it, never later."""
    buf = bytearray(frames_of(payloads))
    bit = data.draw(st.integers(0, len(buf) * 8 - 1))
    buf[bit // 8] ^= 1 << (bit % 8)
    starts = [0]
    for p in payloads:
        starts.append(starts[-1] + FRAME_HEADER_SIZE + len(p))
    hit = max(i for i, start in enumerate(starts[:-1]) if start <= bit // 8)
    found, scan = scanned(bytes(buf))
    assert [p for _, _, p in found] == payloads[:hit]
    assert scan.end == starts[hit]
    assert scan.reason in {StopReason.CRC, StopReason.TORN, StopReason.LENGTH}
