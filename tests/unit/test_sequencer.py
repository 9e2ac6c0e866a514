"""Tests of the sequencer: one writer, stamped records, durable before acknowledged."""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgspec
import pytest

from exchange.core import ExchangeCore
from exchange.journal import FileJournal, JournalHeader, MemoryJournal
from exchange.journal.payload import JOURNALED_DECODER, journaled_events
from exchange.markets import Market
from exchange.messages import (
    BookDelta,
    Deposit,
    Event,
    Liquidate,
    MarginCall,
    OrderAccepted,
    OrderFilled,
    OrderRested,
    PlaceOrder,
    Record,
    SetIndexPrice,
    SetLeverage,
)
from exchange.shell.sequencer import Sequencer, SequencerStopped

E8 = 10**8
HEADER = JournalHeader(schema_version=1, config_hash="test", config={}, first_seq=1)


def _order(account: str = "a", price: int = 100) -> PlaceOrder:
    return PlaceOrder(
        account=account,
        symbol="BTC-PERP",
        side="buy",
        type="limit",
        qty=E8,
        price=price * E8,
    )


_BTC = Market.from_decimals(
    "BTC-PERP",
    tick_size="0.1",
    lot_size="0.001",
    max_price="4529764",
    mark_source="index",
)
# A trader at 20x long 1 BTC from 60000 against a maker with bids at 50000:
# an index of 56000 then liquidates the trader.
_LIQUIDATION_SETUP = (
    Deposit(account="t", amount=3100 * E8),
    Deposit(account="mm", amount=10**6 * E8),
    SetIndexPrice(symbol="BTC-PERP", price=60000 * E8),
    SetLeverage(account="t", symbol="BTC-PERP", leverage=20),
    PlaceOrder(
        account="mm",
        symbol="BTC-PERP",
        side="sell",
        type="limit",
        qty=E8,
        price=60000 * E8,
    ),
    PlaceOrder(account="t", symbol="BTC-PERP", side="buy", type="market", qty=E8),
    PlaceOrder(
        account="mm",
        symbol="BTC-PERP",
        side="buy",
        type="limit",
        qty=E8,
        price=50000 * E8,
    ),
)


class TestSequencer:
    """The sequencer: one core, records in seq order, outcomes back to callers."""

    async def test_outcomes_come_back_in_seq_order_with_stamped_records(self) -> None:
        """Concurrent submits get consecutive seqs and their own events."""
        journal = MemoryJournal(HEADER)
        seq = Sequencer(ExchangeCore(), journal, clock=iter(range(10, 10**6)).__next__)
        task = asyncio.create_task(seq.run())
        await asyncio.sleep(0)
        outcomes = await asyncio.gather(
            *[seq.submit(_order(str(i))) for i in range(50)]
        )
        assert [s for s, _ in outcomes] == list(range(1, 51))
        for s, events in outcomes:
            assert isinstance(events[0], OrderAccepted)
            assert events[0].seq == s
        stamps = [JOURNALED_DECODER.decode(p).record.ts_ns for _, p in journal.read()]
        assert stamps == sorted(stamps)
        await seq.stop()
        await asyncio.wait_for(task, 5)

    async def test_outcome_is_held_until_the_record_is_durable(
        self, tmp_path: Path
    ) -> None:
        """Under group commit an outcome is released only after the fsync."""
        journal = FileJournal.open(
            tmp_path, header=HEADER, fsync="batch", batch_records=10**6, batch_ms=60_000
        )
        seq = Sequencer(ExchangeCore(), journal)
        task = asyncio.create_task(seq.run())
        await asyncio.sleep(0)
        pending = asyncio.create_task(seq.submit(_order()))
        for _ in range(20):  # let the sequencer apply and journal the record
            await asyncio.sleep(0)
        assert journal.last_seq == 1
        assert journal.durable_seq == 0
        assert not pending.done()
        journal.sync()
        seq_no, events = await asyncio.wait_for(pending, 5)
        assert seq_no == 1
        assert isinstance(events[0], OrderAccepted)
        await seq.stop()
        await asyncio.wait_for(task, 5)
        journal.close()

    async def test_group_commit_task_releases_outcomes_without_a_manual_sync(
        self, tmp_path: Path
    ) -> None:
        """The journal's group-commit task makes records durable on its own."""
        journal = FileJournal.open(tmp_path, header=HEADER, fsync="batch", batch_ms=1.0)
        seq = Sequencer(ExchangeCore(), journal)
        task = asyncio.create_task(seq.run())
        await asyncio.sleep(0)
        outcomes = await asyncio.wait_for(
            asyncio.gather(*[seq.submit(_order()) for _ in range(100)]), 10
        )
        assert journal.durable_seq >= outcomes[-1][0]
        await seq.stop()
        await asyncio.wait_for(task, 5)
        journal.close()

    async def test_the_caller_gets_every_event_and_the_journal_only_the_facts(
        self,
    ) -> None:
        """A caller sees acceptance, rest and level; the journal keeps the fill only."""
        journal = MemoryJournal(HEADER)
        seq = Sequencer(ExchangeCore(), journal)
        task = asyncio.create_task(seq.run())
        await asyncio.sleep(0)
        _, resting = await seq.submit(_order("a"))
        _, crossing = await seq.submit(
            PlaceOrder(
                account="b",
                symbol="BTC-PERP",
                side="sell",
                type="limit",
                qty=2 * E8,
                price=100 * E8,
            )
        )
        await seq.stop()
        await asyncio.wait_for(task, 5)
        assert [type(e) for e in resting] == [OrderAccepted, OrderRested, BookDelta]
        assert OrderFilled in {type(e) for e in crossing}
        logged = [JOURNALED_DECODER.decode(p).events for _, p in journal.read()]
        assert logged == [[], journaled_events(crossing)]
        assert [type(e) for e in logged[1]] == [OrderFilled]

    async def test_submit_after_stop_raises(self) -> None:
        """A stopped sequencer refuses new commands with a typed error."""
        seq = Sequencer(ExchangeCore(), MemoryJournal(HEADER))
        task = asyncio.create_task(seq.run())
        await asyncio.sleep(0)
        await seq.stop()
        await asyncio.wait_for(task, 5)
        with pytest.raises(SequencerStopped):
            await seq.submit(_order())


class TestSystemCommands:
    """Commands the core asks for itself (liquidations), sequenced like others."""

    async def test_a_liquidation_is_journaled_as_the_very_next_record(self) -> None:
        """The Liquidate a record asks for is applied and journaled right after it."""
        journal = MemoryJournal(HEADER)
        seq = Sequencer(ExchangeCore([_BTC], margin=True), journal)
        task = asyncio.create_task(seq.run())
        await asyncio.sleep(0)
        for command in _LIQUIDATION_SETUP:
            await seq.submit(command)
        call_seq, events = await seq.submit(
            SetIndexPrice(symbol="BTC-PERP", price=56000 * E8)
        )
        assert any(isinstance(e, MarginCall) for e in events)
        # the next command queued after the call lands after the Liquidate
        # records (partial steps: one per tier, each asked for by the last)
        after_seq, _ = await seq.submit(Deposit(account="x", amount=E8))
        await seq.stop()
        await asyncio.wait_for(task, 5)
        records = {s: JOURNALED_DECODER.decode(p).record for s, p in journal.read()}
        assert after_seq > call_seq + 1
        assert all(
            isinstance(records[s].command, Liquidate)
            for s in range(call_seq + 1, after_seq)
        )

    async def test_liquidations_a_recovered_core_asks_for_are_journaled_first(
        self,
    ) -> None:
        """A core that starts with system commands pending journals them first."""
        core = ExchangeCore([_BTC], margin=True)
        commands = [
            *_LIQUIDATION_SETUP,
            SetIndexPrice(symbol="BTC-PERP", price=56000 * E8),
        ]
        for n, command in enumerate(commands, 1):
            core.handle(Record(n, n, command))  # outbox left as a crash leaves it
        journal = MemoryJournal(
            msgspec.structs.replace(HEADER, first_seq=len(commands) + 1)
        )
        seq = Sequencer(core, journal)
        task = asyncio.create_task(seq.run())
        await asyncio.sleep(0)
        first, _ = await seq.submit(Deposit(account="x", amount=E8))
        await seq.stop()
        await asyncio.wait_for(task, 5)
        records = [JOURNALED_DECODER.decode(p).record for _, p in journal.read()]
        assert isinstance(records[0].command, Liquidate)
        assert records[0].seq == len(commands) + 1 < first

    async def test_each_command_is_journaled_with_its_origin(self) -> None:
        """``origin`` names the request a command came in under; others have none."""
        journal = MemoryJournal(HEADER)
        mine = _order("a")
        seq = Sequencer(
            ExchangeCore(), journal, origin=lambda c: "req-1" if c is mine else ""
        )
        task = asyncio.create_task(seq.run())
        await asyncio.sleep(0)
        await seq.submit(mine)
        await seq.submit(_order("b"))
        await seq.stop()
        await asyncio.wait_for(task, 5)
        entries = [JOURNALED_DECODER.decode(p) for _, p in journal.read()]
        assert [e.origin for e in entries] == ["req-1", ""]


class TestDurableRecords:
    """``on_durable`` and ``offer``: what a transport adapter builds on."""

    async def test_on_durable_sees_every_record_in_seq_order_once_durable(
        self, tmp_path: Path
    ) -> None:
        """User and liquidation records reach the hook in seq order, none early."""
        journal = FileJournal.open(tmp_path, header=HEADER, fsync="batch")
        seen: list[tuple[int, str, bool]] = []

        def hook(record: Record, events: list[Event]) -> None:
            durable = journal.durable_seq >= record.seq
            seen.append((record.seq, type(record.command).__name__, durable))
            assert events[0].seq == record.seq

        seq = Sequencer(ExchangeCore([_BTC], margin=True), journal, on_durable=hook)
        task = asyncio.create_task(seq.run())
        await asyncio.sleep(0)
        for command in _LIQUIDATION_SETUP:
            await seq.submit(command)
        call_seq, _ = await seq.submit(
            SetIndexPrice(symbol="BTC-PERP", price=56000 * E8)
        )
        await seq.stop()
        await asyncio.wait_for(task, 5)
        journal.close()
        assert [s for s, _, _ in seen] == list(range(1, journal.last_seq + 1))
        assert all(durable for _, _, durable in seen)
        assert seen[call_seq][1] == "Liquidate"

    async def test_offer_queues_without_waiting_and_refuses_when_full(self) -> None:
        """Offer takes commands until the inbox is full, then returns False."""
        applied: list[int] = []
        seq = Sequencer(
            ExchangeCore(),
            MemoryJournal(HEADER),
            queue_size=3,
            on_durable=lambda record, _: applied.append(record.seq),
        )
        assert not seq.offer(_order())  # not running yet
        task = asyncio.create_task(seq.run())
        await asyncio.sleep(0)
        assert [seq.offer(_order(str(i))) for i in range(4)] == [True] * 3 + [False]
        assert seq.backlog == 3
        await seq.stop()
        assert not seq.offer(_order())  # stopping: nothing new
        await asyncio.wait_for(task, 5)
        assert applied == [1, 2, 3]
