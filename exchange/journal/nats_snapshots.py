"""Snapshots of a JetStream journal, in a JetStream object store beside its stream.

The journal ``nats://host:port/STREAM`` keeps its snapshots in the object
store bucket ``STREAM_snapshots`` (stream ``OBJ_STREAM_snapshots``, as many
replicas as the journal's), one object per snapshot, named and encoded
exactly as a file snapshot (`exchange.journal.snapshots`: magic, length,
CRC, the msgpack body with the state hash inside), so the same checks
apply; ``nats object get STREAM_snapshots snapshot-...msgpack`` gives the
bytes of a file ``paperx`` would read.

Atomicity. The object store writes an object's chunks first and its meta
entry last: until that lands the object does not exist, and a new object
under an old name replaces the old one at that moment. A writer that dies
in between leaves chunks no meta entry names (never read, never listed).

Belonging. Deleting a stream and creating another under the same name
starts a new journal whose seqs mean other records. Each object carries
the creation time of the stream it was taken of (a header of its meta
entry); one of another stream is refused as corrupt, so recovery falls
back as it does for any unusable snapshot. `delete_nats_journal` deletes
the bucket with the stream.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any, Final

from exchange.errors import JournalError
from exchange.journal.nats import (
    _API_TIMEOUT_S,
    _connected,
    _disconnect,
    parse_nats_url,
)
from exchange.journal.snapshots import SnapshotCorrupt, snapshot_name, snapshot_seq

if TYPE_CHECKING:
    from nats.js.object_store import ObjectStore

__all__ = ["NatsSnapshots"]

_STREAM_CREATED: Final = "Paperx-Stream-Created"
_TRANSFER_TIMEOUT_S: Final = 300.0  # one snapshot's upload or download
_STALE: Final = ".stale"


class NatsSnapshots:
    """The snapshot store of a JetStream journal (a `SnapshotStore`).

    It holds a connection (and its I/O thread) until :meth:`close`; its
    methods may be called from any one thread at a time.
    """

    def __init__(self, url: str, *, create: bool = False) -> None:
        """Connect and open the journal's bucket (``create``: make it if missing).

        Without ``create`` a missing bucket (or stream) is an empty store.

        Raises:
            JournalError: If the server cannot be reached.
        """
        self.address = parse_nats_url(url)
        self.bucket = self.address.snapshot_bucket
        self._io, self._client = _connected(self.address, "paperx-nats-snapshots")
        try:
            self._created, self._store = self._io.run(
                self._open(create), _API_TIMEOUT_S
            )
        except BaseException:
            _disconnect(self._io, self._client)
            raise

    async def _open(self, create: bool) -> tuple[str | None, ObjectStore | None]:
        """Return the stream's creation time and the bucket (None: missing)."""
        import nats.js.errors  # noqa: PLC0415 -- an optional dependency
        from nats.js.api import ObjectStoreConfig, StorageType  # noqa: PLC0415

        js = self._client.jetstream(timeout=_API_TIMEOUT_S)
        try:
            info = await js.stream_info(self.address.stream)
        except nats.js.errors.NotFoundError:
            return None, None
        created = None if info.created is None else info.created.isoformat()
        try:
            return created, await js.object_store(self.bucket)
        except nats.js.errors.BucketNotFoundError:
            if not create:
                return created, None
        config = ObjectStoreConfig(
            description=f"paperx snapshots of the journal {self.address.stream}",
            storage=StorageType.FILE,
            replicas=self.address.replicas,
        )
        return created, await js.create_object_store(self.bucket, config=config)

    def _name(self, obj: str) -> str:
        """Return the name reports show for the object ``obj``."""
        return f"{self.address.server}/{self.bucket}/{obj}"

    def snapshots(self) -> list[tuple[int, str]]:
        """Return ``(seq, name)`` of every snapshot object, newest first."""
        if self._store is None:
            return []
        found = []
        for obj in self._io.run(self._objects(), _API_TIMEOUT_S):
            seq = snapshot_seq(obj)
            if seq is not None:
                found.append((seq, self._name(obj)))
        found.sort(reverse=True)
        return found

    async def _objects(self) -> list[str]:
        """Return the names of the bucket's objects."""
        import nats.js.errors  # noqa: PLC0415 -- an optional dependency

        assert self._store is not None
        try:
            infos = await self._store.list(ignore_deletes=True)
        except nats.js.errors.NotFoundError:  # an empty bucket
            return []
        return [info.name for info in infos if not info.deleted]

    def read(self, name: str) -> bytes:
        """Return a snapshot object's bytes, checked against its digest.

        Raises:
            SnapshotCorrupt: If it is missing, of another stream of this
                name, or its bytes do not match its digest.
        """
        obj = name.rpartition("/")[2]
        try:
            headers, data = self._io.run(self._get(obj), _TRANSFER_TIMEOUT_S)
        except (OSError, JournalError) as exc:
            raise SnapshotCorrupt(name, f"unreadable: {exc}") from exc
        if headers.get(_STREAM_CREATED) != self._created:
            reason = (
                f"taken of another stream of this name (created "
                f"{headers.get(_STREAM_CREATED)}, this one {self._created})"
            )
            raise SnapshotCorrupt(name, reason)
        return data

    async def _get(self, obj: str) -> tuple[dict[str, Any], bytes]:
        """Return an object's meta headers and bytes."""
        import nats.js.errors  # noqa: PLC0415 -- an optional dependency

        if self._store is None:
            msg = "no snapshot bucket"
            raise JournalError(msg)
        buffer = io.BytesIO()
        try:
            result = await self._store.get(obj, writeinto=buffer)
        except nats.js.errors.ObjectNotFoundError as exc:
            msg = "no such object"
            raise JournalError(msg) from exc
        except nats.js.errors.DigestMismatchError as exc:
            msg = "its bytes do not match its digest"
            raise JournalError(msg) from exc
        return dict(result.info.headers or {}), buffer.getvalue()

    def write(self, seq: int, data: bytes) -> str:
        """Store the snapshot object of ``seq`` (see the module docstring).

        Raises:
            JournalError: If the bucket is missing or the server refuses it.
        """
        obj = snapshot_name(seq)
        self._put(obj, data)
        return self._name(obj)

    def _put(self, obj: str, data: bytes) -> None:
        """Store ``data`` as the object ``obj``, stamped with this stream's identity."""
        from nats.js.api import ObjectMeta  # noqa: PLC0415 -- an optional dependency

        if self._store is None:
            msg = f"{self.address.url}: no snapshot bucket {self.bucket}"
            raise JournalError(msg)
        meta = ObjectMeta(name=obj, headers={_STREAM_CREATED: self._created})
        try:
            self._io.run(self._store.put(obj, data, meta=meta), _TRANSFER_TIMEOUT_S)
        except OSError as exc:
            msg = f"{self._name(obj)}: cannot store the snapshot: {exc}"
            raise JournalError(msg) from exc

    def prune(self, keep: int) -> list[str]:
        """Delete all but the newest ``keep`` snapshot objects; return their names."""
        doomed = self.snapshots()[keep:]
        for _, name in doomed:
            self._delete(name.rpartition("/")[2])
        return [name for _, name in doomed]

    def _delete(self, obj: str) -> None:
        """Delete one object (its chunks are purged)."""
        assert self._store is not None
        self._io.run(self._store.delete(obj), _API_TIMEOUT_S)

    def set_aside(self, name: str) -> str:
        """Copy the object to ``<name>.stale`` (out of the list), then delete it.

        Raises:
            SnapshotCorrupt: If it cannot be read.
        """
        obj = name.rpartition("/")[2]
        _, data = self._io.run(self._get(obj), _TRANSFER_TIMEOUT_S)
        self._put(obj + _STALE, data)
        self._delete(obj)
        return self._name(obj + _STALE)

    def close(self) -> None:
        """Disconnect."""
        _disconnect(self._io, self._client)
