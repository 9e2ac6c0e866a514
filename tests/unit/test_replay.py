"""Tests of replay: rebuild from events, rerun of commands, and verify."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import msgspec
import pytest

from clients.orderflow import DEFAULT_ACCOUNTS, DEFAULT_START_PRICES, generate
from exchange import DEFAULT_MARKETS, Exchange, RejectCode, Rejected
from exchange.cli import main
from exchange.core import ExchangeCore
from exchange.journal import FileJournal, JournalHeader, JournalSchemaError
from exchange.journal.payload import (
    JOURNAL_SCHEMA,
    JOURNALED_DECODER,
    Journaled,
    journaled_events,
)
from exchange.markets import config_hash, market_table
from exchange.messages import (
    ENCODER,
    Checkpoint,
    Command,
    CommandRejected,
    Deposit,
    Event,
    OrderExpired,
    OrderFilled,
    Record,
    SetIndexPrice,
)
from exchange.units import to_e8
from replay.errors import Divergence
from replay.log import ExchangeLog
from replay.rebuild import Rebuilder
from replay.rerun import Rerunner
from replay.verify import verify


def _trade_some(ex: Exchange, n: int = 3000) -> None:
    """Drive a generated flow plus stops, amends and STP through the exchange."""
    for command in generate(n, 7, list(DEFAULT_MARKETS)):
        ex.submit(command)
    ex.place_order("s", "BTC-PERP", "sell", "limit", "1", "70000")
    ex.place_order("t", "BTC-PERP", "buy", "stop_market", "0.5", trigger_price="69000")
    ex.place_order("t", "BTC-PERP", "sell", "limit", "0.2", "71000", stp="expire_maker")
    ex.place_order("t", "BTC-PERP", "buy", "limit", "0.3", "71000", stp="expire_maker")
    ex.place_order("u", "BTC-PERP", "buy", "market", "50")


def _entries(ex: Exchange) -> list[Journaled]:
    return [JOURNALED_DECODER.decode(p) for _, p in ex.journal.read()]


class TestVerify:
    """``verify``: the live, rebuilt and rerun state hashes of a journal."""

    def test_a_journal_replays_to_the_live_hash_both_ways(self, tmp_path: Path) -> None:
        """Live hash == rebuild hash == rerun hash for a file journal after close."""
        ex = Exchange(journal=tmp_path / "j", fsync="off")
        _trade_some(ex)
        ex.close()
        live = ex.state_hash()
        report = verify(ExchangeLog(tmp_path / "j"))
        assert report.ok, report
        assert report.live_hash == live == report.rebuild_hash == report.rerun_hash
        assert report.records == ex.core.last_seq

    def test_a_journal_without_checkpoint_has_no_live_hash(
        self, tmp_path: Path
    ) -> None:
        """A log cut before any checkpoint cannot be verified against a live hash."""
        ex = Exchange(journal=tmp_path / "j", fsync="always")
        ex.place_order("a", "BTC-PERP", "buy", "limit", "1", "100")
        ex.journal.close()
        report = verify(ExchangeLog(tmp_path / "j"))
        assert report.live_hash is None
        assert not report.ok

    def test_a_torn_tail_is_reported_and_the_rest_verifies(
        self, tmp_path: Path
    ) -> None:
        """Bytes torn off the end are reported; records up to the checkpoint verify."""
        ex = Exchange(journal=tmp_path / "j", fsync="off")
        _trade_some(ex, 500)
        ex.checkpoint()
        ex.place_order("a", "BTC-PERP", "buy", "limit", "1", "100")
        ex.journal.close()
        segment = next((tmp_path / "j").glob("*.pxj"))
        segment.write_bytes(segment.read_bytes()[:-3])
        report = verify(ExchangeLog(tmp_path / "j"))
        assert report.damage is not None
        assert report.ok


class TestSchema:
    """Which journal payload schemas replay reads."""

    @pytest.mark.parametrize("schema", [1, 2])
    def test_a_journal_of_an_older_schema_still_verifies(
        self, tmp_path: Path, schema: int
    ) -> None:
        """Schema 1 (derived events included) and 2 (no new orders' margins) verify.

        The schema 2 journal runs the margin ledger, so replay asks it for
        each new order's margin, as before schema 3 journaled them.
        """
        margin = schema == 2
        core = ExchangeCore(DEFAULT_MARKETS, margin=margin)
        header = JournalHeader(
            schema_version=schema,
            config_hash=config_hash(DEFAULT_MARKETS),
            config={"markets": market_table(DEFAULT_MARKETS), "margin": margin},
        )
        funding: list[Command] = [
            *(Deposit(account=a, amount=to_e8("1000000")) for a in DEFAULT_ACCOUNTS),
            *(
                SetIndexPrice(symbol=s, price=to_e8(p))
                for s, p in DEFAULT_START_PRICES.items()
            ),
        ]
        flow = generate(500, 5, list(DEFAULT_MARKETS))
        commands = [*(funding if margin else []), *flow, Checkpoint()]
        with FileJournal.open(tmp_path / "j", header=header, fsync="off") as journal:
            for seq, command in enumerate(commands, start=1):
                record = Record(seq, seq, command)
                events = core.handle(record)
                payload = (
                    Journaled(record, events)
                    if schema == 1
                    else (record, journaled_events(events))  # its two fields
                )
                journal.append(seq, ENCODER.encode(payload))
        assert {e.margin for e in ExchangeLog(tmp_path / "j").entries()} == {None}
        assert margin == any(o.reserved for o in core.execution.index.values())
        report = verify(ExchangeLog(tmp_path / "j"))
        assert report.ok, report
        assert report.live_hash == core.state_hash()

    def test_a_schema_this_version_does_not_read_is_refused_with_what_to_do(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A journal of an unknown schema is refused, naming the versions read."""
        header = JournalHeader(
            schema_version=JOURNAL_SCHEMA + 1,
            config_hash="h",
            config={"markets": market_table(DEFAULT_MARKETS)},
        )
        FileJournal.open(tmp_path / "j", header=header, fsync="off").close()
        with pytest.raises(JournalSchemaError) as info:
            ExchangeLog(tmp_path / "j")
        assert info.value.version == JOURNAL_SCHEMA + 1
        assert "upgrade paperx" in str(info.value)
        assert main(["replay", "verify", str(tmp_path / "j")]) == 2
        assert "is not one this paperx reads (1, 2, 3)" in capsys.readouterr().err


class TestRebuild:
    """Rebuilding state from the journal's events."""

    def test_rebuild_matches_live_state_after_every_record(self) -> None:
        """Folding events reproduces the live hash record by record."""
        ex = Exchange()
        rebuilder = Rebuilder(DEFAULT_MARKETS)
        for command in generate(800, 3, list(DEFAULT_MARKETS)):
            ex.submit(command)
            seq = ex.core.last_seq
            rebuilder.apply(_entries_tail(ex, seq))
            assert rebuilder.state_hash() == ex.state_hash()

    @pytest.mark.parametrize("margin", [False, True])
    def test_every_event_type_has_its_fold(self, margin: bool) -> None:
        """The type dispatch covers the whole Event union, no more, no less."""
        folds = Rebuilder(DEFAULT_MARKETS, margin=margin)._handlers
        assert set(folds) == set(get_args(Event))

    def test_a_tampered_fill_is_detected(self) -> None:
        """An event that does not fit the rebuilt state raises Divergence."""
        ex = Exchange()
        _trade_some(ex, 600)
        entries = _entries(ex)
        target = next(
            i
            for i, e in enumerate(entries)
            if any(isinstance(v, OrderFilled) for v in e.events)
        )
        events = [
            msgspec.structs.replace(v, qty=v.qty + 1)
            if isinstance(v, OrderFilled)
            else v
            for v in entries[target].events
        ]
        entries[target] = Journaled(entries[target].record, events)
        rebuilder = Rebuilder(DEFAULT_MARKETS)
        for entry in entries[:target]:
            rebuilder.apply(entry)
        with pytest.raises(Divergence) as info:
            rebuilder.apply(entries[target])
        assert info.value.seq == entries[target].record.seq

    def test_a_dropped_reject_is_detected(self) -> None:
        """An order the core refuses, logged without its reject, is a divergence."""
        ex = Exchange()
        with pytest.raises(Rejected, match="tick"):
            ex.place_order("a", "BTC-PERP", "buy", "limit", "1", "100.05")
        (entry,) = _entries(ex)
        with pytest.raises(Divergence, match="not rejected"):
            Rebuilder(DEFAULT_MARKETS).apply(Journaled(entry.record, []))

    def test_a_dropped_expiry_is_detected(self) -> None:
        """An IOC remainder that neither expires nor may rest is a divergence."""
        ex = Exchange()
        ex.place_order("a", "BTC-PERP", "sell", "limit", "1", "100")
        ex.place_order("b", "BTC-PERP", "buy", "limit", "3", "100", tif="IOC")
        first, last = _entries(ex)
        assert isinstance(last.events[-1], OrderExpired)
        rebuilder = Rebuilder(DEFAULT_MARKETS)
        rebuilder.apply(first)
        with pytest.raises(Divergence, match="neither rests nor expires"):
            rebuilder.apply(Journaled(last.record, last.events[:-1]))

    def test_a_dropped_fill_is_detected_as_a_rest_across_the_book(self) -> None:
        """A crossing order logged without its fill would rest crossing the book."""
        ex = Exchange()
        ex.place_order("a", "BTC-PERP", "sell", "limit", "1", "100")
        ex.place_order("b", "BTC-PERP", "buy", "limit", "2", "100")
        first, last = _entries(ex)
        assert [type(e) for e in last.events] == [OrderFilled]
        rebuilder = Rebuilder(DEFAULT_MARKETS)
        rebuilder.apply(first)
        with pytest.raises(Divergence, match="across the book"):
            rebuilder.apply(Journaled(last.record, []))


class TestRerun:
    """Rerunning the journal's commands, as written or under other settings."""

    def test_rerun_reproduces_every_event(self) -> None:
        """Feeding the logged commands to a fresh core gives identical events."""
        ex = Exchange()
        _trade_some(ex)
        rerunner = Rerunner(DEFAULT_MARKETS)
        for entry in _entries(ex):
            rerunner.apply(entry)
        assert rerunner.first_difference is None
        assert rerunner.state_hash() == ex.state_hash()

    def test_rerun_locates_the_first_difference(self) -> None:
        """A changed logged event is reported with its seq and position."""
        ex = Exchange()
        _trade_some(ex, 400)
        entries = _entries(ex)
        at = next(i for i in range(10, len(entries)) if entries[i].events)
        victim = entries[at]
        entries[at] = Journaled(victim.record, victim.events[:-1])
        rerunner = Rerunner(DEFAULT_MARKETS)
        for entry in entries:
            rerunner.apply(entry)
        difference = rerunner.first_difference
        assert difference is not None
        assert difference.seq == victim.record.seq
        assert difference.index == len(victim.events) - 1
        assert difference.logged is None

    def test_what_if_with_a_coarser_tick_rejects_off_grid_orders(self) -> None:
        """Rerunning under other market settings runs to the end and differs."""
        ex = Exchange()
        _trade_some(ex, 400)
        coarse = [
            msgspec.structs.replace(
                m, tick_size=m.tick_size * 10, min_price=m.tick_size * 10
            )
            for m in DEFAULT_MARKETS
        ]
        rerunner = Rerunner(coarse)
        off_grid = 0
        for entry in _entries(ex):
            events = rerunner.apply(entry)
            off_grid += sum(
                isinstance(e, CommandRejected) and e.code == RejectCode.OFF_TICK
                for e in events
            )
        assert rerunner.first_difference is not None
        assert off_grid > 0


def _entries_tail(ex: Exchange, seq: int) -> Journaled:
    return JOURNALED_DECODER.decode(next(p for s, p in ex.journal.read(seq)))
