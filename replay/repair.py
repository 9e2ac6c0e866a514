"""Repair a damaged journal: keep its intact prefix, move everything after aside.

`repair` finds the first damage in a journal directory (a bad frame, a seq
out of order, a damaged segment header, a gap between segments, or a torn
tail) and makes the journal end just before it, deleting nothing:

* the damaged segment's bytes from the damage on are copied, durably, into
  ``<segment>.damaged-at-<offset>``, and only then is the segment cut there
  (a segment whose header is damaged is moved aside whole);
* every later segment is renamed ``<segment>.after-damage``;
* every snapshot past the kept prefix is renamed ``<snapshot>.stale``: it
  describes records the journal no longer holds.

The journal then opens cleanly and can be verified. What was moved stays
for forensics; the intact records after the damage are counted in the
report (they are in the moved files, frame for frame).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from exchange.errors import JournalError
from exchange.journal.frames import StopReason, scan_frames
from exchange.journal.segment import (
    MAGIC,
    SegmentScan,
    fsync_directory,
    intact_after,
    list_segments,
)
from exchange.journal.snapshots import list_snapshots

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["Damage", "RepairReport", "find_damage", "repair"]


class Damage(msgspec.Struct, frozen=True, kw_only=True):
    """The first damage in a journal: where, what, and what intact follows."""

    segment: int
    """Index of the damaged segment among the journal's segments."""
    path: str
    offset: int
    """Byte offset in that segment where the intact prefix ends."""
    reason: str
    detail: str
    last_seq: int
    """The last intact seq before the damage."""
    records_after: int
    """Intact records after the damage: in that segment and in later ones."""


class MovedFile(msgspec.Struct, frozen=True):
    """A file repair moved aside (``bytes`` of journal it holds)."""

    path: str
    bytes: int


class RepairReport(msgspec.Struct, frozen=True, kw_only=True):
    """What `repair` kept and what it moved aside."""

    damage: Damage | None
    """None: the journal was intact, nothing was touched."""
    kept_records: int
    first_seq: int
    last_seq: int
    moved: list[MovedFile]
    stale_snapshots: list[str]


def find_damage(directory: Path) -> Damage | None:
    """Return the journal's first damage, or None if every segment is intact.

    Raises:
        JournalError: If the directory holds no segment.
    """
    segments = list_segments(directory)
    if not segments:
        msg = f"{directory} holds no journal segments (*.pxj)"
        raise JournalError(msg)
    expected = segments[0][0]
    for index, (first, path) in enumerate(segments):
        if first != expected:
            return _damage(
                segments, index, 0, "seq", f"starts at {first}, {expected} due", first
            )
        scan = SegmentScan(path, path.read_bytes(), first)
        scan.run()
        if scan.reason != StopReason.END:
            following = intact_after(scan)
            after = 0 if following is None else following[1]
            offset = 0 if scan.header is None else scan.end
            return _damage(
                segments, index, offset, scan.reason, scan.detail, scan.last_seq, after
            )
        expected = scan.last_seq + 1
    return None


def _damage(
    segments: Sequence[tuple[int, Path]],
    index: int,
    offset: int,
    reason: str,
    detail: str,
    last_seq: int,
    in_segment: int = 0,
) -> Damage:
    """Return the damage found in segment ``index``, counting what follows it."""
    later = sum(_count_frames(path) for _, path in segments[index + 1 :])
    return Damage(
        segment=index,
        path=str(segments[index][1]),
        offset=offset,
        reason=str(reason),
        detail=detail,
        last_seq=last_seq if offset else segments[index][0] - 1,
        records_after=in_segment + later,
    )


def _count_frames(path: Path) -> int:
    """Return the intact record frames at the start of a segment (header aside)."""
    frames = scan_frames(path.read_bytes(), len(MAGIC))
    frames.run()
    return max(frames.frames - 1, 0)


def repair(directory: str | os.PathLike[str]) -> RepairReport:
    """Cut the journal at its first damage, moving everything from there aside.

    Returns:
        The report: the damage (None if there was none, and then nothing
        was touched), what was kept and every file moved aside.

    Raises:
        JournalError: If the directory holds no journal, or the damage is in
            the first segment's header (nothing would be left to keep).
    """
    folder = Path(directory)
    damage = find_damage(folder)
    segments = list_segments(folder)
    first_seq = segments[0][0]
    if damage is None:
        last = _last_seq(segments)
        return RepairReport(
            damage=None,
            kept_records=last - first_seq + 1,
            first_seq=first_seq,
            last_seq=last,
            moved=[],
            stale_snapshots=[],
        )
    if damage.segment == 0 and damage.offset == 0:
        msg = f"{damage.path}: the journal's first header is damaged; nothing to keep"
        raise JournalError(msg)
    moved = [_move_remainder(Path(damage.path), damage.offset)]
    for _, path in segments[damage.segment + 1 :]:
        aside = path.with_name(path.name + ".after-damage")
        size = path.stat().st_size
        path.replace(aside)
        moved.append(MovedFile(str(aside), size))
    stale = []
    for seq, path in list_snapshots(folder):
        if seq > damage.last_seq:
            aside = path.with_name(path.name + ".stale")
            path.replace(aside)
            stale.append(str(aside))
    fsync_directory(folder)
    return RepairReport(
        damage=damage,
        kept_records=damage.last_seq - first_seq + 1,
        first_seq=first_seq,
        last_seq=damage.last_seq,
        moved=moved,
        stale_snapshots=stale,
    )


def _move_remainder(segment: Path, offset: int) -> MovedFile:
    """Copy ``segment`` from ``offset`` into a file of its own, then cut it there.

    The copy is durable before the cut, so a crash in between loses nothing.
    A segment cut at 0 (a damaged header) is moved aside whole instead.
    """
    aside = segment.with_name(f"{segment.name}.damaged-at-{offset}")
    if offset == 0:
        size = segment.stat().st_size
        segment.replace(aside)
        return MovedFile(str(aside), size)
    with segment.open("r+b") as file:
        file.seek(offset)
        remainder = file.read()
        with aside.open("wb") as out:
            out.write(remainder)
            out.flush()
            os.fsync(out.fileno())
        fsync_directory(segment.parent)
        file.truncate(offset)
        file.flush()
        os.fsync(file.fileno())
    return MovedFile(str(aside), len(remainder))


def _last_seq(segments: Sequence[tuple[int, Path]]) -> int:
    """Return the last seq of an intact journal."""
    first, path = segments[-1]
    scan = SegmentScan(path, path.read_bytes(), first)
    scan.run()
    return scan.last_seq
