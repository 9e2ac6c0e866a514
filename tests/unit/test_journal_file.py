"""Tests of the file journal: recovery, rotation, headers and the read-only reader."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path

import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from exchange.errors import JournalCorrupt, JournalError, JournalMismatch
from exchange.journal import FileJournal, JournalHeader, read_journal
from exchange.journal import file as file_module
from exchange.journal.frames import FRAME_HEADER_SIZE, encode_frame, scan_frames
from exchange.journal.segment import MAGIC, list_segments, read_header

HEADER = JournalHeader(schema_version=1, config_hash="h1", config={"markets": {}})


def payload(seq: int) -> bytes:
    """Return a small payload, distinct per seq."""
    return b"rec-%04d" % seq + bytes([seq % 256]) * (seq % 5)


def write_journal(directory: Path, last: int, **kwargs: object) -> None:
    """Create a journal in ``directory`` holding records 1..last, and close it."""
    kwargs.setdefault("fsync", "off")
    with FileJournal.open(directory, HEADER, **kwargs) as journal:  # type: ignore[arg-type]
        for seq in range(1, last + 1):
            journal.append(seq, payload(seq))


def frame_spans(segment: Path) -> dict[int, tuple[int, int]]:
    """Return ``seq -> (start, end)`` byte offsets of the records in ``segment``."""
    spans = {}
    for offset, seq, body in scan_frames(segment.read_bytes(), len(MAGIC)):
        if seq:
            spans[seq] = (offset, offset + FRAME_HEADER_SIZE + len(body))
    return spans


def only_segment(directory: Path) -> Path:
    """Return the path of the journal's single segment."""
    (segment,) = [path for _, path in list_segments(directory)]
    return segment


def flip_bit(path: Path, bit: int) -> None:
    """Flip bit number ``bit`` of the file at ``path``."""
    data = bytearray(path.read_bytes())
    data[bit // 8] ^= 1 << (bit % 8)
    path.write_bytes(bytes(data))


def records(journal: FileJournal) -> list[tuple[int, bytes]]:
    """Return everything ``journal`` reads back."""
    return list(journal.read())


class TestTornTail:
    """A torn last frame is reported and cut; every complete record survives."""

    def test_cut_at_every_offset_of_the_last_frames_keeps_complete_records(
        self, tmp_path: Path
    ) -> None:
        """Truncating anywhere in the last 3 frames reopens to the complete records."""
        source = tmp_path / "source"
        write_journal(source, 20)
        spans = frame_spans(only_segment(source))
        ends = {0: spans[1][0]} | {seq: end for seq, (_, end) in spans.items()}
        for cut in range(spans[18][0], spans[20][1]):
            copy = tmp_path / f"cut-{cut}"
            shutil.copytree(source, copy)
            segment = only_segment(copy)
            with segment.open("r+b") as file:
                file.truncate(cut)
            complete = max(seq for seq, end in ends.items() if end <= cut)
            with FileJournal.open(copy, HEADER) as journal:
                assert records(journal) == [
                    (s, payload(s)) for s in range(1, complete + 1)
                ]
                assert segment.stat().st_size == ends[complete]
                recovery = journal.recovery
                assert recovery.records == complete
                if cut == ends[complete]:
                    assert recovery.clean
                else:
                    assert recovery.reason == "torn"
                    assert recovery.truncated_bytes == cut - ends[complete]
                    assert recovery.truncated_at == (str(segment), ends[complete])
                journal.append(complete + 1, b"after")
            with FileJournal.open(copy, HEADER) as journal:
                assert journal.recovery.clean
                assert journal.last_seq == complete + 1
                assert list(journal.read(complete + 1)) == [(complete + 1, b"after")]
            shutil.rmtree(copy)

    def test_truncation_is_logged(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Cutting a tail logs journal_tail_truncated with where, why and how much."""
        # A fresh logger: another test may have configured structlog to cache
        # the module's logger, which capture_logs could then not intercept.
        monkeypatch.setattr(
            file_module, "_log", structlog.get_logger(file_module.__name__)
        )
        write_journal(tmp_path, 5)
        segment = only_segment(tmp_path)
        end = frame_spans(segment)[5][1]
        with segment.open("ab") as file:
            file.write(encode_frame(6, b"torn-away")[:7])
        with capture_logs() as logs, FileJournal.open(tmp_path, HEADER):
            pass
        (entry,) = [e for e in logs if e["event"] == "journal_tail_truncated"]
        assert entry["log_level"] == "warning"
        assert (entry["path"], entry["offset"], entry["dropped_bytes"]) == (
            str(segment),
            end,
            7,
        )
        assert entry["reason"] == "torn"

    def test_zero_filled_tail_is_cut(self, tmp_path: Path) -> None:
        """Zeros after the last frame (as a crashed file system may leave) are cut."""
        write_journal(tmp_path, 3)
        segment = only_segment(tmp_path)
        size = segment.stat().st_size
        with segment.open("ab") as file:
            file.write(bytes(4096))
        with FileJournal.open(tmp_path, HEADER) as journal:
            assert journal.last_seq == 3
            assert journal.recovery.reason == "crc"
        assert segment.stat().st_size == size


class TestFlippedBits:
    """Flipped bits are caught by the CRC."""

    def test_any_flipped_bit_in_the_last_frame_cuts_it_as_a_torn_tail(
        self, tmp_path: Path
    ) -> None:
        """A flip in the very last frame cuts the journal back to the frame before."""
        source = tmp_path / "source"
        write_journal(source, 10)
        start, end = frame_spans(only_segment(source))[10]
        for bit in range(start * 8, end * 8):
            copy = tmp_path / f"bit-{bit}"
            shutil.copytree(source, copy)
            flip_bit(only_segment(copy), bit)
            with FileJournal.open(copy, HEADER, fsync="off") as journal:
                assert records(journal) == [(s, payload(s)) for s in range(1, 10)]
                assert journal.recovery.reason in {"crc", "length", "torn"}
                assert journal.recovery.truncated_at == (str(only_segment(copy)), start)
            shutil.rmtree(copy)

    def test_any_flipped_bit_mid_segment_refuses_to_open_and_names_the_damage(
        self, tmp_path: Path
    ) -> None:
        """A flip with intact frames after it raises JournalCorrupt; nothing is cut."""
        source = tmp_path / "source"
        write_journal(source, 10)
        start, end = frame_spans(only_segment(source))[8]
        size = only_segment(source).stat().st_size
        for bit in range(start * 8, end * 8):
            copy = tmp_path / f"bit-{bit}"
            shutil.copytree(source, copy)
            flip_bit(only_segment(copy), bit)
            with pytest.raises(JournalCorrupt) as info:
                FileJournal.open(copy, HEADER, fsync="off")
            damage = info.value
            assert (damage.path, damage.offset) == (str(only_segment(copy)), start)
            assert damage.records_after == 2
            assert "2 intact records follow" in str(damage)
            assert only_segment(copy).stat().st_size == size
            shutil.rmtree(copy)

    def test_any_flipped_bit_in_an_older_segment_is_corruption(
        self, tmp_path: Path
    ) -> None:
        """A flip in a non-last segment raises JournalCorrupt; nothing is dropped."""
        source = tmp_path / "source"
        write_journal(source, 12, segment_bytes=150)
        segments = list_segments(source)
        assert len(segments) > 2
        first_seq, older = segments[1]
        start, end = frame_spans(older)[first_seq]
        size = older.stat().st_size
        for bit in range(start * 8, end * 8):
            copy = tmp_path / f"bit-{bit}"
            shutil.copytree(source, copy)
            damaged = copy / older.name
            flip_bit(damaged, bit)
            with pytest.raises(JournalCorrupt) as info:
                FileJournal.open(copy, HEADER, verify=True, fsync="off")
            assert (info.value.path, info.value.offset) == (str(damaged), start)
            with (
                FileJournal.open(copy, HEADER, fsync="off") as journal,
                pytest.raises(JournalCorrupt),
            ):
                records(journal)
            assert damaged.stat().st_size == size
            shutil.rmtree(copy)

    @settings(max_examples=25, deadline=None)
    @given(
        sizes=st.lists(st.integers(0, 400), min_size=2, max_size=10),
        data=st.data(),
    )
    def test_random_flips_cut_a_last_record_and_refuse_an_earlier_one(
        self, sizes: list[int], data: st.DataObject
    ) -> None:
        """A damaged last record is cut; an earlier one refuses, counting the rest."""
        with tempfile.TemporaryDirectory() as tmp:
            directory = Path(tmp)
            with FileJournal.open(directory, HEADER, fsync="off") as journal:
                for seq, size in enumerate(sizes, 1):
                    journal.append(seq, bytes([seq]) * size)
            spans = frame_spans(only_segment(directory))
            victim = data.draw(st.integers(1, len(sizes)))
            start, end = spans[victim]
            flip_bit(
                only_segment(directory), data.draw(st.integers(start * 8, end * 8 - 1))
            )
            if victim < len(sizes):
                with pytest.raises(JournalCorrupt) as info:
                    FileJournal.open(directory, HEADER, fsync="off")
                assert info.value.offset == start
                assert info.value.records_after == len(sizes) - victim
                return
            with FileJournal.open(directory, HEADER, fsync="off") as journal:
                assert journal.last_seq == victim - 1
                assert [len(p) for _, p in journal.read()] == sizes[: victim - 1]

    def test_intact_frame_with_a_wrong_seq_is_corruption(self, tmp_path: Path) -> None:
        """A CRC-valid frame out of sequence is not a torn write: it raises."""
        write_journal(tmp_path, 3)
        with only_segment(tmp_path).open("ab") as file:
            file.write(encode_frame(9, b"spliced"))
        with pytest.raises(JournalCorrupt, match="seq 9 where 4 was due"):
            FileJournal.open(tmp_path, HEADER)

    def test_damaged_segment_header_is_corruption(self, tmp_path: Path) -> None:
        """A flipped bit in a segment's header frame raises JournalCorrupt."""
        write_journal(tmp_path, 3)
        flip_bit(only_segment(tmp_path), (len(MAGIC) + FRAME_HEADER_SIZE + 2) * 8)
        with pytest.raises(JournalCorrupt, match="header"):
            FileJournal.open(tmp_path, HEADER)


class TestSegments:
    """Rotation by size and reading across segments."""

    def header_bytes(self, tmp_path: Path) -> int:
        """Return the size of an empty segment (magic plus header frame)."""
        probe = tmp_path / "probe"
        FileJournal.open(probe, HEADER, fsync="off").close()
        return only_segment(probe).stat().st_size

    def test_rotation_by_size_keeps_every_record_in_order(self, tmp_path: Path) -> None:
        """Tiny segments give many files, named by first seq, read back in order."""
        directory = tmp_path / "journal"
        write_journal(directory, 60, segment_bytes=120, fsync="batch")
        segments = list_segments(directory)
        assert len(segments) > 5
        for first, path in segments:
            assert path.name == f"{first:020d}.pxj"
            assert read_header(path, first).first_seq == first
            assert read_header(path, first).config_hash == "h1"
        with FileJournal.open(directory, HEADER, segment_bytes=120) as journal:
            assert records(journal) == [(s, payload(s)) for s in range(1, 61)]
            assert [s for s, _ in journal.read(37)] == list(range(37, 61))
            assert journal.header.first_seq == 1

    def test_reopen_continues_in_the_last_segment(self, tmp_path: Path) -> None:
        """After reopening, appends go to the last segment until it is full."""
        directory = tmp_path / "journal"
        frame = FRAME_HEADER_SIZE + 16
        limit = self.header_bytes(tmp_path) + 5 * frame
        options = {"segment_bytes": limit, "fsync": "batch"}
        with FileJournal.open(directory, HEADER, **options) as journal:  # type: ignore[arg-type]
            for seq in range(1, 13):
                journal.append(seq, bytes(16))
        assert [first for first, _ in list_segments(directory)] == [1, 6, 11]
        with FileJournal.open(directory, HEADER, **options) as journal:  # type: ignore[arg-type]
            assert journal.recovery.segments == 3
            for seq in range(13, 16):
                journal.append(seq, bytes(16))
            assert [first for first, _ in list_segments(directory)] == [1, 6, 11]
            journal.append(16, bytes(16))
        assert [first for first, _ in list_segments(directory)] == [1, 6, 11, 16]

    def test_verify_scans_older_segments(self, tmp_path: Path) -> None:
        """verify=True opens a clean multi-segment journal like a plain open."""
        write_journal(tmp_path, 30, segment_bytes=150)
        with FileJournal.open(tmp_path, HEADER, verify=True) as journal:
            assert journal.last_seq == 30

    def test_missing_segment_is_corruption(self, tmp_path: Path) -> None:
        """A gap between segments raises JournalCorrupt when read or verified."""
        write_journal(tmp_path, 30, segment_bytes=150)
        list_segments(tmp_path)[2][1].unlink()
        with pytest.raises(JournalCorrupt, match="was due"):
            FileJournal.open(tmp_path, HEADER, verify=True)
        journal = FileJournal.open(tmp_path, HEADER)
        with journal, pytest.raises(JournalCorrupt, match="was due"):
            records(journal)

    def test_read_sees_unflushed_appends_but_not_later_ones(
        self, tmp_path: Path
    ) -> None:
        """read() includes records still buffered, and none appended after the call."""
        with FileJournal.open(tmp_path, HEADER, segment_bytes=200) as journal:
            for seq in range(1, 21):
                journal.append(seq, payload(seq))
            reading = journal.read()
            first = next(reading)
            for seq in range(21, 31):
                journal.append(seq, payload(seq))
            assert [first, *reading] == [(s, payload(s)) for s in range(1, 21)]


class TestHeaders:
    """The header: required for new journals, checked against existing ones."""

    def test_new_journal_needs_a_header(self, tmp_path: Path) -> None:
        """Opening an empty directory without a header raises JournalError."""
        with pytest.raises(JournalError, match="needs a header"):
            FileJournal.open(tmp_path)

    @pytest.mark.parametrize(
        "options",
        [
            {"fsync": "sometimes"},
            {"segment_bytes": 0},
            {"batch_records": 0},
            {"batch_ms": 0},
        ],
    )
    def test_invalid_settings_write_nothing(
        self, tmp_path: Path, options: dict[str, object]
    ) -> None:
        """Invalid settings raise JournalError before any file is created."""
        with pytest.raises(JournalError):
            FileJournal.open(tmp_path / "j", HEADER, **options)  # type: ignore[arg-type]
        assert not (tmp_path / "j").exists()

    def test_existing_journal_opens_without_a_header(self, tmp_path: Path) -> None:
        """An existing journal opens with the header stored in its first segment."""
        write_journal(tmp_path, 2)
        with FileJournal.open(tmp_path) as journal:
            assert journal.header == HEADER
            assert journal.last_seq == 2

    def test_config_hash_mismatch_says_which_hashes_differ(
        self, tmp_path: Path
    ) -> None:
        """Another config hash raises JournalMismatch naming both hashes."""
        write_journal(tmp_path, 2)
        other = JournalHeader(schema_version=1, config_hash="h2", config={})
        with pytest.raises(JournalMismatch) as info:
            FileJournal.open(tmp_path, other)
        assert isinstance(info.value, JournalError)
        message = str(info.value)
        assert "config_hash is 'h1'" in message
        assert "'h2'" in message
        assert "new journal directory" in message

    def test_schema_version_mismatch_is_refused(self, tmp_path: Path) -> None:
        """Another schema version raises JournalMismatch on that field."""
        write_journal(tmp_path, 2)
        other = JournalHeader(schema_version=2, config_hash="h1", config={})
        with pytest.raises(JournalMismatch) as info:
            FileJournal.open(tmp_path, other)
        assert (info.value.field, info.value.stored, info.value.given) == (
            "schema_version",
            1,
            2,
        )

    def test_first_seq_of_a_new_journal_names_its_segment(self, tmp_path: Path) -> None:
        """A journal starting at seq 1000 has segment 1000 and takes 1000 first."""
        header = JournalHeader(
            schema_version=1, config_hash="h1", config={}, first_seq=1000
        )
        with FileJournal.open(tmp_path, header) as journal:
            journal.append(1000, b"x")
        assert only_segment(tmp_path).name == "00000000000000001000.pxj"
        with FileJournal.open(tmp_path, HEADER) as journal:
            assert journal.header.first_seq == 1000
            assert journal.last_seq == 1000

    def test_segment_starts_with_magic_and_header_frame(self, tmp_path: Path) -> None:
        """A segment is the magic, a seq-0 header frame, then the records."""
        write_journal(tmp_path, 1)
        data = only_segment(tmp_path).read_bytes()
        assert data.startswith(b"PAPERXJ\x01")
        seqs = [seq for _, seq, _ in scan_frames(data, len(MAGIC))]
        assert seqs == [0, 1]


class TestLeftovers:
    """What an interrupted segment creation leaves behind is cleaned up."""

    def test_temp_segment_is_removed_and_reported(self, tmp_path: Path) -> None:
        """A *.pxj.tmp file is deleted on open and listed in the recovery."""
        write_journal(tmp_path, 2)
        temp = tmp_path / "00000000000000000003.pxj.tmp"
        temp.write_bytes(b"PAPERXJ")
        with FileJournal.open(tmp_path, HEADER) as journal:
            assert journal.recovery.removed == (str(temp),)
            assert not journal.recovery.clean
        assert not temp.exists()

    def test_empty_last_segment_is_removed(self, tmp_path: Path) -> None:
        """A last segment too short to hold a frame header is removed, not fatal."""
        write_journal(tmp_path, 2)
        stub = tmp_path / "00000000000000000003.pxj"
        stub.write_bytes(b"")
        with FileJournal.open(tmp_path, HEADER) as journal:
            assert journal.last_seq == 2
            journal.append(3, b"x")
        assert [first for first, _ in list_segments(tmp_path)] == [1]


class TestReader:
    """read_journal reads up to the first damage and never modifies a file."""

    def digest(self, directory: Path) -> str:
        """Return a hash of every file name and byte in ``directory``."""
        sha = hashlib.sha256()
        for path in sorted(directory.iterdir()):
            sha.update(path.name.encode() + path.read_bytes())
        return sha.hexdigest()

    def test_clean_journal_reads_to_a_clean_end(self, tmp_path: Path) -> None:
        """A clean journal reads completely and reports a clean stop."""
        write_journal(tmp_path, 25, segment_bytes=150)
        reader = read_journal(tmp_path)
        assert list(reader.read()) == [(s, payload(s)) for s in range(1, 26)]
        assert reader.stop is not None
        assert reader.stop.clean
        assert reader.stop.last_seq == 25
        assert reader.header == HEADER
        assert "clean end" in str(reader.stop)

    def test_torn_tail_is_reported_and_left_alone(self, tmp_path: Path) -> None:
        """A torn tail stops the reader with a report; the files stay as they were."""
        write_journal(tmp_path, 5)
        segment = only_segment(tmp_path)
        end = frame_spans(segment)[5][1]
        with segment.open("ab") as file:
            file.write(encode_frame(6, b"partial")[:9])
        before = self.digest(tmp_path)
        reader = read_journal(tmp_path)
        assert [s for s, _ in reader.read(2)] == [2, 3, 4, 5]
        assert reader.stop is not None
        assert (reader.stop.reason, reader.stop.offset) == ("torn", end)
        assert (reader.stop.dropped_bytes, reader.stop.last_seq) == (9, 5)
        assert self.digest(tmp_path) == before

    def test_damage_in_an_older_segment_stops_there(self, tmp_path: Path) -> None:
        """Damage in a middle segment ends reading at that frame, later ones unread."""
        write_journal(tmp_path, 25, segment_bytes=150)
        first, middle = list_segments(tmp_path)[2]
        start, _ = frame_spans(middle)[first + 1]
        flip_bit(middle, (start + FRAME_HEADER_SIZE) * 8)
        reader = read_journal(tmp_path)
        assert [s for s, _ in reader.read()] == list(range(1, first + 1))
        assert reader.stop is not None
        assert (reader.stop.path, reader.stop.offset, reader.stop.reason) == (
            str(middle),
            start,
            "crc",
        )

    def test_a_read_from_mid_segment_checks_only_the_records_it_returns(
        self, tmp_path: Path
    ) -> None:
        """Records before ``from_seq`` are walked over unread; damage after stops it.

        A flipped payload bit in record 5 does not stop a read from 8 (record
        5 is not read), and one in record 12 stops it there, as it would
        a read from the start.
        """
        write_journal(tmp_path, 20)
        segment = only_segment(tmp_path)
        spans = frame_spans(segment)
        flip_bit(segment, (spans[5][0] + FRAME_HEADER_SIZE) * 8)
        reader = read_journal(tmp_path)
        assert list(reader.read(8)) == [(s, payload(s)) for s in range(8, 21)]
        assert reader.stop is not None
        assert reader.stop.clean
        flip_bit(segment, (spans[12][0] + FRAME_HEADER_SIZE) * 8)
        assert [s for s, _ in reader.read(8)] == list(range(8, 12))
        assert reader.stop is not None
        assert (reader.stop.reason, reader.stop.offset) == ("crc", spans[12][0])
        assert [s for s, _ in reader.read(1)] == [1, 2, 3, 4]

    def test_reader_follows_a_journal_being_written(self, tmp_path: Path) -> None:
        """A reader sees what the writer has handed to the OS, growing with it."""
        with FileJournal.open(tmp_path, HEADER, fsync="batch") as journal:
            for seq in range(1, 4):
                journal.append(seq, payload(seq))
            journal.sync()
            reader = read_journal(tmp_path)
            assert [s for s, _ in reader.read()] == [1, 2, 3]
            journal.append(4, payload(4))
            journal.sync()
            assert [s for s, _ in reader.read(3)] == [3, 4]

    def test_directory_without_a_journal_is_an_error(self, tmp_path: Path) -> None:
        """read_journal on a directory with no segments raises JournalError."""
        with pytest.raises(JournalError, match="no journal segments"):
            read_journal(tmp_path)
