"""Verify a log: live hash == rebuild hash == rerun hash, or where they part.

The live hash is the one the exchange journaled in its last `Checkpoint`
record (every exchange writes one on close). Rebuild folds the logged events;
rerun feeds the logged commands through a fresh core. Every checkpoint along
the way is checked too, so a difference is located to the record.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from exchange.messages import CheckpointTaken
from replay.errors import Divergence
from replay.log import ExchangeLog
from replay.rebuild import Rebuilder
from replay.rerun import Rerunner

__all__ = ["VerifyReport", "verify"]


class VerifyReport(msgspec.Struct, kw_only=True):
    """What `verify` found; ``ok`` is True only if all three hashes agree."""

    records: int
    checkpoints: int
    live_hash: str | None
    live_seq: int
    rebuild_hash: str
    rerun_hash: str
    rebuild_error: str | None = None
    rerun_difference: str | None = None
    damage: str | None = None

    @property
    def ok(self) -> bool:
        """Return True if live, rebuild and rerun agree and nothing diverged."""
        return (
            self.live_hash is not None
            and self.live_hash == self.rebuild_hash == self.rerun_hash
            and self.rebuild_error is None
            and self.rerun_difference is None
        )


def verify(
    log: ExchangeLog, progress: Callable[[int], None] | None = None
) -> VerifyReport:
    """Rebuild and rerun ``log`` up to its last checkpoint and compare hashes.

    Records after the last checkpoint (a crash before close) are replayed too,
    but only hashes at a checkpoint can be compared with the live exchange.
    Both replays run with the margin setting the journal header recorded.
    """
    rebuilder = Rebuilder(log.markets, margin=log.margin)
    rerunner = Rerunner(log.markets, margin=log.margin)
    records = checkpoints = live_seq = 0
    live_hash: str | None = None
    rebuild_error: str | None = None
    rebuild_at_live = rerun_at_live = ""
    for entry in log.entries():
        records += 1
        if rebuild_error is None:
            try:
                rebuilder.apply(entry)
            except Divergence as exc:
                rebuild_error = str(exc)
        rerunner.apply(entry)
        for event in entry.events:
            if isinstance(event, CheckpointTaken):
                checkpoints += 1
                live_hash, live_seq = event.state_hash, event.seq
                rebuild_at_live = rebuilder.state_hash()
                rerun_at_live = rerunner.state_hash()
        if progress is not None:
            progress(records)
    difference = rerunner.first_difference
    return VerifyReport(
        records=records,
        checkpoints=checkpoints,
        live_hash=live_hash,
        live_seq=live_seq,
        rebuild_hash=rebuild_at_live or rebuilder.state_hash(),
        rerun_hash=rerun_at_live or rerunner.state_hash(),
        rebuild_error=rebuild_error,
        rerun_difference=difference.describe() if difference else None,
        damage=log.damage(),
    )
