r"""Snapshot files: the core's whole state at a seq, beside the journal it belongs to.

A snapshot is ``snapshot-{seq:020d}.msgpack`` in the journal directory::

    8 bytes  magic b"PAPERXS\x01" (the last byte is the file format version)
    u64 LE   body length
    u32 LE   zlib.crc32 of the body
    ...      body: msgpack of `SnapshotFile`

The body holds the file format, the seq and exchange time it was taken at,
the journal header's config hash, the state hash of the core it was taken
from, and the state (`exchange.state.CoreState`, the core's own plain data).
It is written atomically: a ``.tmp`` file, fsync, rename, fsync of the
directory, so a crash leaves either the whole snapshot or none. Loading
checks magic, length, CRC, format, state schema, config hash, and finally
that the restored core has the stored state hash; any failure is a
`SnapshotCorrupt` naming the reason, and recovery falls back to an older
snapshot or a full replay. Pruning keeps the newest few.

Only take a snapshot of records that are durable in the journal (at or
below its ``durable_seq``): a snapshot ahead of the journal describes
records a crash may lose.
"""

from __future__ import annotations

import contextlib
import os
import re
import struct
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Final

import msgspec

from exchange.core import STATE_SCHEMA, ExchangeCore
from exchange.errors import InvariantViolation, JournalError
from exchange.journal.segment import fsync_directory
from exchange.state import CoreState

if TYPE_CHECKING:
    from collections.abc import Iterable

    from exchange.markets import Market

__all__ = [
    "SNAPSHOT_FORMAT",
    "SnapshotCorrupt",
    "SnapshotFile",
    "list_snapshots",
    "load_snapshot",
    "prune_snapshots",
    "snapshot_path",
    "store_snapshot",
    "take_snapshot",
    "write_snapshot",
]

SNAPSHOT_FORMAT: Final = 2
"""Version of the snapshot body (`SnapshotFile`); bump on an incompatible change.

1: first format. 2: the settlement's moved positions carry their side.
"""

MAGIC: Final = b"PAPERXS\x01"
_PREFIX: Final = struct.Struct("<QI")
_HEAD: Final = len(MAGIC) + _PREFIX.size
_NAME: Final = re.compile(r"^snapshot-(\d{20})\.msgpack$")
TEMP_SUFFIX: Final = ".tmp"
_ENCODER: Final = msgspec.msgpack.Encoder()


class SnapshotFile(msgspec.Struct, frozen=True, kw_only=True):
    """The body of a snapshot file."""

    format: int
    """`SNAPSHOT_FORMAT` of the writer."""
    seq: int
    """The last record the state includes."""
    ts_ns: int
    """Exchange time after that record."""
    config_hash: str
    """The journal header's config hash: the snapshot belongs to that journal."""
    state_hash: str
    """`ExchangeCore.state_hash` of the core the snapshot was taken from."""
    state: CoreState


_DECODER: Final = msgspec.msgpack.Decoder(SnapshotFile)


class SnapshotCorrupt(JournalError):
    """Raised when a snapshot file cannot be used; ``reason`` says why."""

    def __init__(self, path: str, reason: str) -> None:
        """Keep the file and what is wrong with it."""
        super().__init__(path, reason)
        self.path = path
        self.reason = reason

    def __str__(self) -> str:
        """Render the file and the reason."""
        return f"{self.path}: {self.reason}"


def snapshot_path(directory: Path, seq: int) -> Path:
    """Return the path of the snapshot taken after record ``seq``."""
    return directory / f"snapshot-{seq:020d}.msgpack"


def list_snapshots(directory: Path) -> list[tuple[int, Path]]:
    """Return ``(seq, path)`` of every snapshot in ``directory``, newest first."""
    found = []
    for path in directory.iterdir():
        match = _NAME.match(path.name)
        if match is not None:
            found.append((int(match.group(1)), path))
    found.sort(reverse=True)
    return found


def take_snapshot(core: ExchangeCore, config_hash: str) -> SnapshotFile:
    """Return the body of a snapshot of ``core`` (call it between records).

    The body is the core's state as plain data, detached from the core: it
    can be written (`store_snapshot`) in another thread while the core goes on.
    """
    return SnapshotFile(
        format=SNAPSHOT_FORMAT,
        seq=core.last_seq,
        ts_ns=core.ts_ns,
        config_hash=config_hash,
        state_hash=core.state_hash(),
        state=core.snapshot(),
    )


def write_snapshot(
    directory: str | os.PathLike[str],
    core: ExchangeCore,
    config_hash: str,
    *,
    keep: int = 3,
    durable: bool = True,
) -> Path:
    """Write the snapshot of ``core`` atomically, then keep only the newest ``keep``.

    Args:
        directory: The journal directory.
        core: The core, between records, all of whose records are durable.
        config_hash: The journal header's config hash.
        keep: How many snapshots to keep (at least 1).
        durable: Fsync the file and the directory (False only in tests and
            under ``fsync="off"``).

    Returns:
        The snapshot's path.

    Raises:
        JournalError: If ``keep`` is below 1, the state holds an int beyond
            64 bits, or writing fails.
    """
    body = take_snapshot(core, config_hash)
    return store_snapshot(directory, body, keep=keep, durable=durable)


def store_snapshot(
    directory: str | os.PathLike[str],
    body: SnapshotFile,
    *,
    keep: int = 3,
    durable: bool = True,
) -> Path:
    """Write a taken snapshot atomically, then keep only the newest ``keep``.

    Safe in a thread other than the core's. ``body.seq`` must be durable in
    the journal (see the module docstring). Arguments and errors as
    `write_snapshot`'s.
    """
    if keep < 1:
        msg = f"keep must be at least 1, got {keep}"
        raise JournalError(msg)
    folder = Path(directory)
    try:
        data = _ENCODER.encode(body)
    except OverflowError as exc:
        msg = f"the state at seq {body.seq} holds an int msgpack cannot store"
        raise JournalError(msg) from exc
    path = snapshot_path(folder, body.seq)
    temp = path.with_name(path.name + TEMP_SUFFIX)
    try:
        with temp.open("wb") as file:
            file.write(MAGIC + _PREFIX.pack(len(data), zlib.crc32(data)) + data)
            file.flush()
            if durable:
                os.fsync(file.fileno())
        temp.replace(path)
        if durable:
            fsync_directory(folder)
    except OSError as exc:
        with contextlib.suppress(OSError):
            temp.unlink()
        msg = f"cannot write snapshot {path}: {exc}"
        raise JournalError(msg) from exc
    prune_snapshots(folder, keep)
    return path


def prune_snapshots(directory: Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` snapshots and any leftover temp file.

    Returns:
        The paths deleted.
    """
    doomed = [path for _, path in list_snapshots(directory)[keep:]]
    doomed += list(directory.glob(f"snapshot-*.msgpack{TEMP_SUFFIX}"))
    for path in doomed:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    return doomed


def load_snapshot(
    path: Path, markets: Iterable[Market], *, margin: bool, config_hash: str
) -> tuple[ExchangeCore, SnapshotFile]:
    """Read, check and restore one snapshot.

    Args:
        path: The snapshot file.
        markets: The journal's markets (from its header).
        margin: The journal's margin setting.
        config_hash: The journal header's config hash.

    Returns:
        The restored core, ready for the record after the snapshot's seq,
        and the snapshot's body.

    Raises:
        SnapshotCorrupt: If the file is truncated, fails its CRC, does not
            decode, is of another format, state schema or journal, or does
            not restore to its own state hash.
    """
    body = _read_body(path)
    name = str(path)
    if body.format != SNAPSHOT_FORMAT:
        raise SnapshotCorrupt(name, f"snapshot format {body.format}, not ours")
    if body.state.schema != STATE_SCHEMA:
        raise SnapshotCorrupt(name, f"state schema {body.state.schema}, not ours")
    if body.config_hash != config_hash:
        raise SnapshotCorrupt(name, "taken under another config (config hash)")
    if body.seq != body.state.last_seq:
        raise SnapshotCorrupt(name, "its seq differs from its state's")
    try:
        core = ExchangeCore.restored(body.state, markets, margin=margin)
    except (InvariantViolation, ValueError, KeyError) as exc:
        raise SnapshotCorrupt(name, f"does not restore: {exc}") from exc
    if core.state_hash() != body.state_hash:
        raise SnapshotCorrupt(name, "restored state hash differs from the stored one")
    return core, body


def _read_body(path: Path) -> SnapshotFile:
    """Return the decoded body of a snapshot file whose framing checks out."""
    name = str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SnapshotCorrupt(name, f"unreadable: {exc}") from exc
    if data[: len(MAGIC)] != MAGIC:
        raise SnapshotCorrupt(name, "bad magic")
    if len(data) < _HEAD:
        raise SnapshotCorrupt(name, f"truncated: {len(data)} bytes")
    length, crc = _PREFIX.unpack_from(data, len(MAGIC))
    body = memoryview(data)[_HEAD:]
    if len(body) != length:
        raise SnapshotCorrupt(name, f"truncated: {len(body)} of {length} body bytes")
    if zlib.crc32(body) != crc:
        raise SnapshotCorrupt(name, "crc mismatch")
    try:
        return _DECODER.decode(body)
    except msgspec.DecodeError as exc:
        raise SnapshotCorrupt(name, f"undecodable: {exc}") from exc
