"""Tests of snapshot files: naming, atomic writing, pruning and corruption checks."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from recovery_rig import open_exchange, snapshot, snapshot_rounds, trade

from exchange.core import ExchangeCore
from exchange.errors import JournalError
from exchange.journal.snapshots import (
    MAGIC,
    SnapshotCorrupt,
    SnapshotFile,
    list_snapshots,
    load_snapshot,
    snapshot_path,
    write_snapshot,
)
from exchange.markets import DEFAULT_MARKETS


@pytest.fixture
def written(tmp_path: Path) -> Iterator[tuple[Path, ExchangeCore, str]]:
    """A journal directory with one snapshot of a traded margin exchange."""
    with open_exchange(tmp_path) as ex:
        trade(ex, 12)
        path = snapshot(ex, tmp_path)
        yield path, ex.core, ex.journal.header.config_hash


def rewrite_body(path: Path, change: dict[str, object]) -> None:
    """Re-encode a snapshot's body with fields changed, framing kept valid."""
    body = msgspec.msgpack.decode(path.read_bytes()[20:], type=SnapshotFile)
    data = msgspec.msgpack.encode(msgspec.structs.replace(body, **change))
    path.write_bytes(MAGIC + struct.pack("<QI", len(data), zlib.crc32(data)) + data)


class TestWriting:
    """Snapshots are named by seq, written whole, and pruned to the newest K."""

    def test_snapshot_is_named_by_seq_and_holds_hash_and_config(
        self, written: tuple[Path, ExchangeCore, str]
    ) -> None:
        """The file is snapshot-<seq>.msgpack and holds seq, hash and config hash."""
        path, core, config = written
        assert path == snapshot_path(path.parent, core.last_seq)
        assert path.name == f"snapshot-{core.last_seq:020d}.msgpack"
        body = msgspec.msgpack.decode(path.read_bytes()[20:], type=SnapshotFile)
        assert (body.seq, body.ts_ns) == (core.last_seq, core.ts_ns)
        assert (body.state_hash, body.config_hash) == (core.state_hash(), config)
        assert list(path.parent.glob("*.tmp")) == []

    def test_loaded_snapshot_restores_the_same_state(
        self, written: tuple[Path, ExchangeCore, str]
    ) -> None:
        """Loading restores a core with the original's hash and state data."""
        path, core, config = written
        restored, _ = load_snapshot(
            path, DEFAULT_MARKETS, margin=True, config_hash=config
        )
        assert restored.state_hash() == core.state_hash()
        assert restored.snapshot() == core.snapshot()

    def test_pruning_keeps_the_newest_k(self, tmp_path: Path) -> None:
        """After each write only the newest ``keep`` snapshots remain."""
        seqs = snapshot_rounds(tmp_path, 5, keep=2)
        assert [seq for seq, _ in list_snapshots(tmp_path)] == seqs[:-3:-1]

    def test_keep_below_one_is_refused(self, tmp_path: Path) -> None:
        """Keeping no snapshot at all is a configuration error."""
        with pytest.raises(JournalError, match="keep"):
            write_snapshot(tmp_path, ExchangeCore(), "h", keep=0)


class TestCorruption:
    """A snapshot that cannot be trusted is refused with a reason."""

    @pytest.mark.parametrize(
        ("damage", "reason"),
        [
            (lambda data: data[:-7], "truncated"),
            (lambda data: data[:12], "truncated"),
            (lambda data: b"NOTASNAP" + data[8:], "bad magic"),
            (lambda data: data[:-1] + bytes([data[-1] ^ 1]), "crc mismatch"),
        ],
    )
    def test_damaged_file_is_refused(
        self,
        written: tuple[Path, ExchangeCore, str],
        damage: object,
        reason: str,
    ) -> None:
        """Truncation, a bad magic and a flipped bit are each named."""
        path, _, config = written
        path.write_bytes(damage(path.read_bytes()))  # type: ignore[operator]
        with pytest.raises(SnapshotCorrupt, match=reason):
            load_snapshot(path, DEFAULT_MARKETS, margin=True, config_hash=config)

    def test_state_not_matching_its_hash_is_refused(
        self, written: tuple[Path, ExchangeCore, str]
    ) -> None:
        """A well-framed body whose state does not give its hash is refused."""
        path, _, config = written
        rewrite_body(path, {"state_hash": "0" * 64})
        with pytest.raises(SnapshotCorrupt, match="restored state hash differs"):
            load_snapshot(path, DEFAULT_MARKETS, margin=True, config_hash=config)

    def test_snapshot_of_another_config_is_refused(
        self, written: tuple[Path, ExchangeCore, str]
    ) -> None:
        """A snapshot taken under another journal's config hash is refused."""
        path, _, _ = written
        with pytest.raises(SnapshotCorrupt, match="another config"):
            load_snapshot(path, DEFAULT_MARKETS, margin=True, config_hash="other")

    def test_other_snapshot_format_is_refused(
        self, written: tuple[Path, ExchangeCore, str]
    ) -> None:
        """A snapshot format this version does not know is refused."""
        path, _, config = written
        rewrite_body(path, {"format": 99})
        with pytest.raises(SnapshotCorrupt, match="snapshot format 99"):
            load_snapshot(path, DEFAULT_MARKETS, margin=True, config_hash=config)

    def test_snapshot_without_margin_does_not_restore_with_margin(
        self, tmp_path: Path
    ) -> None:
        """Restoring into a core of another margin setting is refused."""
        path = write_snapshot(tmp_path, ExchangeCore(), "h", durable=False)
        with pytest.raises(SnapshotCorrupt, match="margin setting"):
            load_snapshot(path, DEFAULT_MARKETS, margin=True, config_hash="h")
