"""The one order in which every shell sequences the core's system commands."""

from __future__ import annotations

import asyncio

from clients.margin_flow import MarginShape, generate
from exchange.core import ExchangeCore
from exchange.journal import MemoryJournal
from exchange.journal.payload import JOURNALED_DECODER
from exchange.markets import DEFAULT_MARKETS
from exchange.messages import Command, Liquidate
from exchange.shell.inprocess import Exchange
from exchange.shell.sequencer import Sequencer


def _liquidate(name: str) -> Liquidate:
    return Liquidate(account=name, symbol="BTC-PERP")


class TestCanonicalOrder:
    """`ExchangeCore.system_commands` yields first in, first out."""

    def test_commands_asked_for_by_system_records_come_after_the_earlier_ones(
        self,
    ) -> None:
        """A liquidation's own follow-up waits behind those asked for before it."""
        core = ExchangeCore(margin=True)
        a, b, c, d = (_liquidate(n) for n in "abcd")
        # what the outbox holds after: the record, then a, then b, then c, then d
        batches = iter([[a, b], [c], [d], [], []])
        core.take_system_commands = lambda: next(batches)  # type: ignore[method-assign]
        assert list(core.system_commands()) == [a, b, c, d]  # depth first: a c b d

    def test_nothing_pending_yields_nothing(self) -> None:
        """With an empty outbox the loop of a shell does no work."""
        assert list(ExchangeCore(margin=True).system_commands()) == []


def _margin_stream() -> list[Command]:
    """Return a margin stream with liquidations (system records)."""
    stream = generate(4_000, 11, MarginShape(accounts=1_000))
    return [cmd for _, cmd in (*stream.setup, *stream.flow)]


class TestShellsAgree:
    """The facade and the sequencer journal the same records for the same commands."""

    def test_facade_and_sequencer_write_the_same_journal(self) -> None:
        """Same commands, same clock: the same payloads, system records included."""
        commands = _margin_stream()
        markets = list(DEFAULT_MARKETS)
        clock = lambda: 1_800_000_000 * 10**9  # noqa: E731 -- one fixed stamp

        facade = Exchange(markets, margin=True, clock=clock)
        for command in commands:
            facade.submit(command)
        by_facade = list(facade.journal.read())

        core = ExchangeCore(markets, margin=True)
        journal = MemoryJournal(facade.journal.header)
        sequencer = Sequencer(core, journal, clock=clock)

        async def run() -> None:
            task = asyncio.create_task(sequencer.run())
            await asyncio.sleep(0)  # let it start before the first submit
            for command in commands:
                await sequencer.submit(command)
            await sequencer.stop()
            await task

        asyncio.run(run())
        by_sequencer = list(journal.read())
        liquidations = sum(
            isinstance(JOURNALED_DECODER.decode(payload).record.command, Liquidate)
            for _, payload in by_sequencer
        )
        assert liquidations > 1  # the stream exercises system records
        assert by_sequencer == by_facade
