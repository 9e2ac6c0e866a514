"""Hypothesis properties of snapshots: a restored core is the original, exactly.

At several cuts of a random stream (margin with liquidations, or the plain
matching venue with stops and amends) the core's snapshot data goes through
msgpack bytes and back into a fresh core. The restored core must have the
original's state hash and snapshot data, and must go on exactly as the
original did: the same events for every following record, system records
included, and the same final hash.
"""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings
from streams import STREAM_MARKETS, Step, steps_strategy
from test_core_properties import EXAMPLES
from test_core_properties import drive as drive_venue
from test_liquidation_properties import MARKETS, STEPS, drive, seeded_steps
from test_liquidation_properties import Step as MarginStep

from exchange.core import ExchangeCore
from exchange.journal.payload import JOURNALED_DECODER
from exchange.markets import Market
from exchange.messages import Event, Record
from exchange.state import CoreState

CUTS = 6


def round_trip(
    core: ExchangeCore, markets: tuple[Market, ...], *, margin: bool
) -> ExchangeCore:
    """Return the core restored from its snapshot data, sent through msgpack bytes."""
    data = msgspec.msgpack.encode(core.snapshot())
    state = msgspec.msgpack.decode(data, type=CoreState)
    return ExchangeCore.restored(state, markets, margin=margin)


def check_restores(
    records: list[tuple[Record, list[Event]]],
    markets: tuple[Market, ...],
    *,
    margin: bool,
) -> None:
    """At each cut, a restored core equals the original and goes on identically."""
    step = max(1, len(records) // CUTS)
    for cut in range(1, len(records), step):
        original = ExchangeCore(markets, margin=margin)
        for record, _ in records[:cut]:
            original.handle(record)
            original.take_system_commands()  # the log holds them as records
        restored = round_trip(original, markets, margin=margin)
        assert restored.state_hash() == original.state_hash()
        assert restored.snapshot() == original.snapshot()
        for record, _ in records[cut:]:
            assert restored.handle(record) == original.handle(record), (cut, record)
            assert restored.take_system_commands() == original.take_system_commands()
        assert restored.snapshot() == original.snapshot()


def liquidation_records(steps: list[MarginStep]) -> list[tuple[Record, list[Event]]]:
    """Return the journaled records of a liquidation stream."""
    driver = drive(steps)
    entries = [JOURNALED_DECODER.decode(raw) for _, raw in driver.ex.journal.read()]
    return [(entry.record, entry.events) for entry in entries]


class TestSnapshotRestore:
    """Snapshot data restores to the same state, and the same future."""

    @settings(max_examples=max(EXAMPLES // 3, 4), deadline=None)
    @given(STEPS)
    def test_margin_streams_with_liquidations_restore_exactly(
        self, steps: list[MarginStep]
    ) -> None:
        """Restored mid-stream, a margin core emits the events the original does."""
        check_restores(liquidation_records(steps), MARKETS, margin=True)

    @pytest.mark.parametrize("seed", range(3))
    def test_seeded_liquidating_streams_restore_exactly(self, seed: int) -> None:
        """Seeded streams that liquidate in both modes and deleverage restore too."""
        check_restores(liquidation_records(seeded_steps(seed)), MARKETS, margin=True)

    @settings(max_examples=max(EXAMPLES // 3, 4), deadline=None)
    @given(steps_strategy(min_size=100, max_size=300))
    def test_venue_streams_with_stops_and_amends_restore_exactly(
        self, steps: list[Step]
    ) -> None:
        """Restored mid-stream, a venue without margin goes on as the original."""
        harness = drive_venue(steps)
        records = list(zip(harness.records, harness.history, strict=True))
        check_restores(records, STREAM_MARKETS, margin=False)
