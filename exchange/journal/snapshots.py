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

Where they live is a `SnapshotStore`: `DirectorySnapshots` (the files
above) or, for a JetStream journal, ``exchange.journal.nats_snapshots``
(objects of the same name and the same bytes in a JetStream object store);
`snapshot_store` opens the one that belongs to a journal. Encoding
(`encode_snapshot`), decoding (`decode_snapshot`) and the checks on restore
(`restore_snapshot`) are the same wherever the bytes are kept.

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
from typing import TYPE_CHECKING, Final, Protocol

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
    "DirectorySnapshots",
    "SnapshotCorrupt",
    "SnapshotFile",
    "SnapshotStore",
    "decode_snapshot",
    "encode_snapshot",
    "list_snapshots",
    "load_snapshot",
    "load_stored",
    "prune_snapshots",
    "restore_snapshot",
    "save_snapshot",
    "snapshot_name",
    "snapshot_path",
    "snapshot_seq",
    "snapshot_store",
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
    """Raised when a snapshot cannot be used; ``reason`` says why."""

    def __init__(self, path: str, reason: str) -> None:
        """Keep the file and what is wrong with it."""
        super().__init__(path, reason)
        self.path = path
        self.reason = reason

    def __str__(self) -> str:
        """Render the file and the reason."""
        return f"{self.path}: {self.reason}"


def snapshot_name(seq: int) -> str:
    """Return the name of the snapshot taken after record ``seq``."""
    return f"snapshot-{seq:020d}.msgpack"


def snapshot_seq(name: str) -> int | None:
    """Return the seq a snapshot's name carries, or None if it is no snapshot's."""
    match = _NAME.match(name)
    return None if match is None else int(match.group(1))


def snapshot_path(directory: Path, seq: int) -> Path:
    """Return the path of the snapshot taken after record ``seq``."""
    return directory / snapshot_name(seq)


def list_snapshots(directory: Path) -> list[tuple[int, Path]]:
    """Return ``(seq, path)`` of every snapshot in ``directory``, newest first."""
    found = []
    for path in directory.iterdir():
        seq = snapshot_seq(path.name)
        if seq is not None:
            found.append((seq, path))
    found.sort(reverse=True)
    return found


class SnapshotStore(Protocol):
    """Where a journal's snapshots are kept; each is named by `snapshot_name`.

    A snapshot is addressed by a ``name`` the store returns (a path, or a
    URL for a remote store), which is also what reports show.
    """

    def snapshots(self) -> list[tuple[int, str]]:
        """Return ``(seq, name)`` of every snapshot, newest first."""
        ...

    def read(self, name: str) -> bytes:
        """Return a snapshot's bytes.

        Raises:
            SnapshotCorrupt: If they cannot be read whole.
        """
        ...

    def write(self, seq: int, data: bytes) -> str:
        """Store the snapshot of ``seq`` whole or not at all; return its name.

        Raises:
            JournalError: If storing fails.
        """
        ...

    def prune(self, keep: int) -> list[str]:
        """Delete all but the newest ``keep`` snapshots and leftovers; return them."""
        ...

    def set_aside(self, name: str) -> str:
        """Move a snapshot out of the list without deleting it; return its new name."""
        ...

    def close(self) -> None:
        """Release what the store holds (a connection)."""
        ...


class DirectorySnapshots:
    """The snapshot files of a journal directory (see the module docstring)."""

    def __init__(
        self, directory: str | os.PathLike[str], *, durable: bool = True
    ) -> None:
        """Keep snapshots in ``directory``; ``durable`` fsyncs file and directory."""
        self.directory = Path(directory)
        self.durable = durable

    def snapshots(self) -> list[tuple[int, str]]:
        """Return ``(seq, path)`` of every snapshot file, newest first."""
        if not self.directory.is_dir():
            return []
        return [(seq, str(path)) for seq, path in list_snapshots(self.directory)]

    def read(self, name: str) -> bytes:
        """Return the file's bytes.

        Raises:
            SnapshotCorrupt: If it cannot be read.
        """
        try:
            return Path(name).read_bytes()
        except OSError as exc:
            raise SnapshotCorrupt(name, f"unreadable: {exc}") from exc

    def write(self, seq: int, data: bytes) -> str:
        """Write the file atomically: temp file, fsync, rename, fsync of the directory.

        Raises:
            JournalError: If writing fails.
        """
        path = snapshot_path(self.directory, seq)
        temp = path.with_name(path.name + TEMP_SUFFIX)
        try:
            with temp.open("wb") as file:
                file.write(data)
                file.flush()
                if self.durable:
                    os.fsync(file.fileno())
            temp.replace(path)
            if self.durable:
                fsync_directory(self.directory)
        except OSError as exc:
            with contextlib.suppress(OSError):
                temp.unlink()
            msg = f"cannot write snapshot {path}: {exc}"
            raise JournalError(msg) from exc
        return str(path)

    def prune(self, keep: int) -> list[str]:
        """Delete all but the newest ``keep`` files and any leftover temp file."""
        return [str(path) for path in prune_snapshots(self.directory, keep)]

    def set_aside(self, name: str) -> str:
        """Rename the file to ``*.stale``."""
        path = Path(name)
        stale = path.with_name(path.name + ".stale")
        path.replace(stale)
        return str(stale)

    def close(self) -> None:
        """Nothing to release."""


def snapshot_store(
    journal: str | os.PathLike[str], *, durable: bool = True, create: bool = False
) -> SnapshotStore:
    """Return the snapshot store of the journal at ``journal`` (directory or URL).

    ``durable`` applies to files (JetStream acks a stored object); ``create``
    makes a JetStream journal's bucket if it has none yet (a writer's need;
    readers see no snapshots instead).

    Raises:
        JournalError: If a JetStream journal's server cannot be reached.
    """
    from exchange.journal.target import is_nats_url  # noqa: PLC0415 -- a cycle

    if is_nats_url(journal):
        from exchange.journal.nats_snapshots import NatsSnapshots  # noqa: PLC0415

        return NatsSnapshots(str(journal), create=create)
    return DirectorySnapshots(journal, durable=durable)


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
    store = DirectorySnapshots(directory, durable=durable)
    return Path(save_snapshot(store, body, keep=keep)[0])


def save_snapshot(
    store: SnapshotStore, body: SnapshotFile, *, keep: int = 3
) -> tuple[str, int]:
    """Store a taken snapshot, then keep only the newest ``keep``.

    Returns:
        Its name in the store and its size in bytes.

    Raises:
        JournalError: If ``keep`` is below 1, the state holds an int beyond
            64 bits, or storing fails.
    """
    if keep < 1:
        msg = f"keep must be at least 1, got {keep}"
        raise JournalError(msg)
    data = encode_snapshot(body)
    name = store.write(body.seq, data)
    store.prune(keep)
    return name, len(data)


def encode_snapshot(body: SnapshotFile) -> bytes:
    """Return a snapshot's bytes: magic, length, CRC and the msgpack body.

    Raises:
        JournalError: If the state holds an int msgpack cannot store.
    """
    try:
        data = _ENCODER.encode(body)
    except OverflowError as exc:
        msg = f"the state at seq {body.seq} holds an int msgpack cannot store"
        raise JournalError(msg) from exc
    return MAGIC + _PREFIX.pack(len(data), zlib.crc32(data)) + data


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
    """Read, check and restore one snapshot file.

    Args:
        path: The snapshot file.
        markets: The journal's markets (from its header).
        margin: The journal's margin setting.
        config_hash: The journal header's config hash.

    Returns:
        The restored core, ready for the record after the snapshot's seq,
        and the snapshot's body.

    Raises:
        SnapshotCorrupt: See `restore_snapshot`; also if the file is unreadable.
    """
    return load_stored(
        DirectorySnapshots(path.parent),
        str(path),
        markets,
        margin=margin,
        config_hash=config_hash,
    )


def load_stored(
    store: SnapshotStore,
    name: str,
    markets: Iterable[Market],
    *,
    margin: bool,
    config_hash: str,
) -> tuple[ExchangeCore, SnapshotFile]:
    """Read, check and restore the snapshot ``name`` of ``store``.

    Returns and raises as `load_snapshot`.
    """
    body = decode_snapshot(name, store.read(name))
    return restore_snapshot(name, body, markets, margin=margin, config_hash=config_hash)


def restore_snapshot(
    name: str,
    body: SnapshotFile,
    markets: Iterable[Market],
    *,
    margin: bool,
    config_hash: str,
) -> tuple[ExchangeCore, SnapshotFile]:
    """Check a decoded snapshot and restore its core.

    Returns:
        The restored core and ``body``.

    Raises:
        SnapshotCorrupt: If the body is of another format, state schema or
            journal, or does not restore to its own state hash.
    """
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


def decode_snapshot(name: str, data: bytes) -> SnapshotFile:
    """Return the decoded body of a snapshot whose framing checks out.

    Raises:
        SnapshotCorrupt: If the bytes are truncated, fail their CRC or do
            not decode.
    """
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
