"""Tests of market replay with live bots: pacing, the recorded flow, the feed task."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from market_replay_rig import BTC, MARKET, record_seller

from exchange.core import ExchangeCore
from exchange.errors import ConfigError
from exchange.journal import MemoryJournal
from exchange.journal.payload import exchange_header
from exchange.messages import (
    AdvanceTime,
    CancelAll,
    Checkpoint,
    Command,
    DeclareStress,
    Deposit,
    Event,
    InjectReject,
    Liquidate,
    OrderCanceled,
    OrderFilled,
    PlaceOrder,
    Record,
    SetIndexPrice,
)
from exchange.shell.replay_feed import (
    Pacer,
    ReplayFeed,
    parse_speed,
    play,
    wait_for_quotes,
)
from exchange.shell.sequencer import Sequencer
from exchange.shell.server import ServeOptions
from exchange.shell.server_config import ServerConfig, load_server_config
from replay.flow import FlowCounts
from replay.log import ExchangeLog
from replay.market_data import FLOW_ACCOUNT, market_flow
from replay.recorded_flow import RecordedFlow

E8 = 10**8
NS = 10**9


class FakeTime:
    """A monotonic clock in seconds that moves only when the pacer sleeps."""

    def __init__(self) -> None:
        """Start at 100 s with no sleeps."""
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        """Return the current time."""
        return self.now

    async def sleep(self, seconds: float) -> None:
        """Note the sleep and move the clock by it."""
        self.sleeps.append(seconds)
        self.now += seconds


class TestPacer:
    """Recorded time deltas divided by the speed, on the shell's clock."""

    async def test_commands_wait_their_recorded_delta_over_the_speed(self) -> None:
        """At speed 2, records 0 s, 4 s and 10 s apart wait 0, 2 and 3 more seconds."""
        clock = FakeTime()
        pacer = Pacer(2.0, clock=clock, sleep=clock.sleep)
        for ts in (50 * NS, 54 * NS, 60 * NS):
            await pacer.wait(ts)
        assert clock.sleeps == [2.0, 3.0]

    async def test_a_late_command_goes_at_once(self) -> None:
        """If the exchange was busy past a command's due time, it is not delayed."""
        clock = FakeTime()
        pacer = Pacer(1.0, clock=clock, sleep=clock.sleep)
        await pacer.wait(0)
        clock.now += 5.0  # busy for 5 s
        await pacer.wait(3 * NS)
        await pacer.wait(6 * NS)
        assert clock.sleeps == [pytest.approx(1.0)]

    async def test_speed_zero_never_waits(self) -> None:
        """At max speed no command waits, however far apart they were recorded."""
        clock = FakeTime()
        pacer = Pacer(0.0, clock=clock, sleep=clock.sleep)
        for ts in (0, 3600 * NS, 7200 * NS):
            await pacer.wait(ts)
        assert clock.sleeps == []

    @pytest.mark.parametrize(
        ("text", "speed"), [("max", 0.0), ("MAX", 0.0), ("0", 0.0), ("2.5", 2.5)]
    )
    def test_speed_texts_are_factors_or_max(self, text: str, speed: float) -> None:
        """Max and 0 mean as fast as possible; a number is a factor."""
        assert parse_speed(text) == speed

    @pytest.mark.parametrize("text", ["-1", "fast", "inf", "nan"])
    def test_other_speed_texts_are_refused(self, text: str) -> None:
        """Negative, infinite and non-numbers raise ValueError."""
        with pytest.raises(ValueError, match="speed"):
            parse_speed(text)


class TestRecordedFlow:
    """A recorded journal's commands as the live run sends them."""

    def test_accounts_are_prefixed_and_system_records_skipped(
        self, tmp_path: Path
    ) -> None:
        """Deposits and orders go as rec:NAME; clock and checkpoint stay behind."""
        record_seller(tmp_path)
        flow = RecordedFlow(ExchangeLog(tmp_path))
        sent = []
        for _, command in flow:
            sent.append(command)
            flow.took([])  # nothing accepted: the cancel has no live id
        assert sent[:3] == [
            Deposit(account="rec:alice", amount=100_000 * E8),
            Deposit(account="rec:bob", amount=100_000 * E8),
            SetIndexPrice(symbol=BTC, price=65_000 * E8),
        ]
        assert [type(c) for c in sent[3:]] == [PlaceOrder, PlaceOrder]
        assert flow.counts.skipped == 2
        assert flow.counts.dropped == 1  # the cancel of an order never accepted

    @pytest.mark.parametrize(
        "command",
        [
            Liquidate(account="alice", symbol=BTC),
            AdvanceTime(ts_ns=5),
            Checkpoint(),
            DeclareStress(settings="{}"),
            InjectReject(command=CancelAll(account="alice")),
        ],
    )
    def test_system_records_are_not_replayed(
        self, tmp_path: Path, command: Command
    ) -> None:
        """Liquidations, clock ticks, checkpoints and the stress are the live run's."""
        record_seller(tmp_path)
        flow = RecordedFlow(ExchangeLog(tmp_path))
        assert flow.translate(command) is None
        assert flow.counts.skipped == 1

    def test_index_prices_are_skipped_when_another_source_owns_the_index(
        self, tmp_path: Path
    ) -> None:
        """With index=False a recorded SetIndexPrice is not sent."""
        record_seller(tmp_path)
        flow = RecordedFlow(ExchangeLog(tmp_path), index=False)
        assert flow.translate(SetIndexPrice(symbol=BTC, price=E8)) is None
        assert RecordedFlow(ExchangeLog(tmp_path)).translate(
            SetIndexPrice(symbol=BTC, price=E8)
        ) == SetIndexPrice(symbol=BTC, price=E8)


class TestPlay:
    """The recorded flow through a live sequencer, beside a live account's order."""

    async def test_the_recorded_flow_waits_for_the_quote_then_hits_it(
        self, tmp_path: Path
    ) -> None:
        """After carol bids, rec:alice cancels live order 2, and rec:bob fills carol."""
        record_seller(tmp_path / "recorded")
        records: list[tuple[Record, list[Event]]] = []
        sequencer, running = await _live_carol(records)
        flow = RecordedFlow(ExchangeLog(tmp_path / "recorded"))
        replay = asyncio.create_task(_after_quotes(sequencer, flow))
        await asyncio.sleep(0)  # the replay task starts waiting
        await sequencer.submit(SetIndexPrice(symbol=BTC, price=65_000 * E8))
        await asyncio.sleep(0)  # a durable record woke it: carol still has no order
        assert not replay.done()
        assert flow.counts.sent == 0
        await sequencer.submit(CAROL_BID)
        async with asyncio.timeout(5):
            await replay
        await sequencer.stop()
        await running
        events = [e for _, evs in records for e in evs]
        canceled = [e for e in events if isinstance(e, OrderCanceled)]
        (fill,) = [e for e in events if isinstance(e, OrderFilled)]
        assert [(c.account, c.order_id) for c in canceled] == [("rec:alice", 2)]
        assert (fill.maker_account, fill.maker_order_id) == ("carol", 1)
        assert (fill.taker_account, fill.price) == ("rec:bob", 650_000)  # ticks
        assert flow.counts == FlowCounts(read=8, sent=6, skipped=2)

    async def test_an_aggtrades_taker_flow_hits_a_live_bid(
        self, tmp_path: Path
    ) -> None:
        """A recorded taker sell of 0.01 is rec:flow's market order; it fills carol."""
        path = tmp_path / "BTC-PERP-aggTrades.csv"
        path.write_text("1,65000,0.01,1,1,1000,true\n", encoding="utf-8")
        records: list[tuple[Record, list[Event]]] = []
        sequencer, running = await _live_carol(records)
        await sequencer.submit(CAROL_BID)
        flow = market_flow(path, MARKET)
        async with asyncio.timeout(5):
            await play(sequencer.submit, flow, Pacer(1.0))
        await sequencer.stop()
        await running
        (fill,) = [e for _, evs in records for e in evs if isinstance(e, OrderFilled)]
        assert (fill.maker_account, fill.taker_account) == ("carol", FLOW_ACCOUNT)
        assert (fill.qty, fill.taker_side) == (10, "sell")  # lots of 0.001
        assert flow.counts == FlowCounts(read=1, sent=3)


CAROL_BID = PlaceOrder(
    account="carol",
    symbol=BTC,
    side="buy",
    type="limit",
    qty=E8 // 100,
    price=65_000 * E8,
)


async def _live_carol(
    records: list[tuple[Record, list[Event]]],
) -> tuple[Sequencer, asyncio.Task[None]]:
    """Start a live sequencer (records go to ``records``); fund carol, set the index."""
    sequencer = Sequencer(
        ExchangeCore([MARKET], margin=True),
        MemoryJournal(exchange_header([MARKET], margin=True)),
        on_durable=lambda record, events: records.append((record, events)),
    )
    running = asyncio.create_task(sequencer.run())
    await asyncio.sleep(0)  # let the sequencer start
    await sequencer.submit(Deposit(account="carol", amount=100_000 * E8))
    await sequencer.submit(SetIndexPrice(symbol=BTC, price=65_000 * E8))
    return sequencer, running


async def _after_quotes(sequencer: Sequencer, flow: RecordedFlow) -> None:
    """Wait for carol's quote, then play the flow at max speed."""
    await wait_for_quotes(sequencer, ["carol"])
    await play(sequencer.submit, flow, Pacer(0.0))


class TestReplayFeedOptions:
    """The replay options are checked before the server starts."""

    def test_no_replay_options_mean_no_replay(self, tmp_path: Path) -> None:
        """Without --replay or --replay-market the index feed runs as before."""
        assert ReplayFeed.of(_config(tmp_path, ["carol"]), ServeOptions()) is None

    @pytest.mark.parametrize(
        ("accounts", "options", "match"),
        [
            (["rec:carol"], {}, "kept for recorded accounts"),
            (["carol"], {"replay_wait_for": ("dave",)}, "not in the config"),
            (["carol"], {"live": True}, "the live journal"),
            (["carol"], {"missing": True}, "cannot read the journal"),
        ],
    )
    def test_clashing_accounts_unknown_waits_and_the_live_journal_are_refused(
        self,
        tmp_path: Path,
        accounts: list[str],
        options: dict[str, object],
        match: str,
    ) -> None:
        """A rec: account, an unknown wait, a live or missing journal: all refused."""
        record_seller(tmp_path / "recorded")
        config = _config(tmp_path, accounts)
        journal = config.journal if options.pop("live", False) else None
        if options.pop("missing", False):
            journal = tmp_path / "nowhere"
        serve = ServeOptions(
            replay=Path(journal or tmp_path / "recorded"),
            replay_wait_for=options.get("replay_wait_for", ()),  # type: ignore[arg-type]
        )
        with pytest.raises(ConfigError, match=match):
            ReplayFeed.of(config, serve)

    def test_a_journal_and_a_market_file_make_two_flows(self, tmp_path: Path) -> None:
        """Both sources play; the market file owns the index."""
        record_seller(tmp_path / "recorded")
        prices = tmp_path / "prices.csv"
        prices.write_text("1000,65000\n", encoding="utf-8")
        feed = ReplayFeed.of(
            _config(tmp_path, ["carol"]),
            ServeOptions(
                replay=tmp_path / "recorded", replay_market=str(prices), speed=0.0
            ),
        )
        assert feed is not None
        (_, market), (_, recorded) = feed.flows
        assert isinstance(recorded, RecordedFlow)
        assert not recorded.index
        assert [type(c) for _, c in market] == [SetIndexPrice]


def _config(tmp_path: Path, accounts: list[str]) -> ServerConfig:
    """Return a server config on BTC-PERP with ``accounts``, journaling to live/."""
    lines = [
        "[server]",
        f'journal = "{tmp_path / "live"}"',
        "[markets.BTC-PERP]",
        'tick_size = "0.1"',
        'lot_size = "0.001"',
    ]
    for name in accounts:
        lines += [f'[accounts."{name}"]', f'api_key = "{name}-key"', 'secret = "s"']
    path = tmp_path / "paperx.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return load_server_config(path)
