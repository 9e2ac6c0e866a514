"""Tests of journal repair: keep the intact prefix, move the damaged rest aside."""

from __future__ import annotations

from pathlib import Path

import pytest
from recovery_rig import flip_mid_frame, open_exchange, segments, snapshot, trade

from exchange.cli.main import main
from exchange.errors import JournalCorrupt
from exchange.journal import FileJournal
from exchange.journal.snapshots import list_snapshots
from replay.log import ExchangeLog
from replay.repair import find_damage, repair
from replay.verify import verify


def session(directory: Path) -> int:
    """Trade a session over several segments with snapshots; return its last seq."""
    with open_exchange(directory) as ex:
        trade(ex, 10)
        snapshot(ex, directory)
        trade(ex, 10)
        snapshot(ex, directory)
        trade(ex, 4)
    return ex.core.last_seq


def moved_bytes(directory: Path) -> int:
    """Return the bytes of every file repair moved aside."""
    return sum(
        p.stat().st_size
        for p in directory.iterdir()
        if ".damaged-at-" in p.name or p.name.endswith(".after-damage")
    )


class TestRepair:
    """Repair keeps what is intact before the damage and deletes nothing."""

    def test_flip_in_the_last_segment_is_repaired_then_opens_and_verifies(
        self, tmp_path: Path
    ) -> None:
        """The damaged remainder moves to a file of its own; the rest verifies."""
        last_seq = session(tmp_path)
        victim = segments(tmp_path)[-1]
        size = victim.stat().st_size
        offset = flip_mid_frame(victim)
        with pytest.raises(JournalCorrupt):
            FileJournal.open(tmp_path)
        report = repair(tmp_path)
        damage = report.damage
        assert damage is not None
        assert (damage.path, damage.offset) == (str(victim), offset)
        assert report.last_seq == damage.last_seq
        assert report.last_seq + 1 + damage.records_after == last_seq
        (moved,) = report.moved
        assert moved.path == f"{victim}.damaged-at-{offset}"
        assert moved.bytes == size - offset == Path(moved.path).stat().st_size
        with FileJournal.open(tmp_path) as journal:
            assert journal.recovery.clean
            assert journal.last_seq == report.last_seq
        result = verify(ExchangeLog(tmp_path))
        assert result.rebuild_error is None
        assert result.rerun_difference is None
        assert result.final_rebuild_hash == result.rerun_hash
        assert result.snapshot_ok

    def test_damage_in_an_earlier_segment_moves_every_later_segment_aside(
        self, tmp_path: Path
    ) -> None:
        """Later segments are renamed aside whole; snapshots past the cut go stale."""
        session(tmp_path)
        before = sum(p.stat().st_size for p in segments(tmp_path))
        older = segments(tmp_path)[1]
        later = segments(tmp_path)[2:]
        flip_mid_frame(older)
        report = repair(tmp_path)
        assert report.damage is not None
        assert report.damage.path == str(older)
        assert [Path(m.path).name for m in report.moved[1:]] == [
            f"{p.name}.after-damage" for p in later
        ]
        assert segments(tmp_path)[-1] == older
        kept = sum(p.stat().st_size for p in segments(tmp_path))
        assert kept + moved_bytes(tmp_path) == before
        assert all(seq <= report.last_seq for seq, _ in list_snapshots(tmp_path))
        assert len(report.stale_snapshots) == 2
        with FileJournal.open(tmp_path, verify=True) as journal:
            assert journal.last_seq == report.last_seq

    def test_intact_journal_is_left_untouched(self, tmp_path: Path) -> None:
        """Without damage nothing is moved and the report says so."""
        last_seq = session(tmp_path)
        report = repair(tmp_path)
        assert report.damage is None
        assert (report.last_seq, report.moved) == (last_seq, [])
        assert find_damage(tmp_path) is None


class TestRepairCommand:
    """``paperx replay repair`` prints what it kept and what it moved."""

    def test_repair_command_reports_kept_and_moved(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The command names the damage, the records kept and each moved file."""
        session(tmp_path)
        flip_mid_frame(segments(tmp_path)[-1])
        assert main(["replay", "repair", str(tmp_path)]) == 0
        out = capsys.readouterr().out
        report_lines = {line.split()[0] for line in out.splitlines() if line[0] != " "}
        assert {"damage", "kept", "moved"} <= report_lines
        assert ".damaged-at-" in out
        # the cut journal lost its closing checkpoint: no live hash to compare
        assert main(["replay", "verify", str(tmp_path)]) == 1
        out = capsys.readouterr().out
        assert "(no checkpoint in this journal)" in out
        assert "matches the rebuild" in out

    def test_verify_checks_the_newest_snapshot(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Verify compares the newest snapshot with the rebuild at its seq."""
        session(tmp_path)
        assert main(["replay", "verify", str(tmp_path)]) == 0
        out = capsys.readouterr().out
        assert "matches the rebuild" in out
        assert "OK: live == rebuild == rerun" in out
