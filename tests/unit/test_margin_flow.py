"""Tests of clients.margin_flow: a seeded, venue-like margin workload, and its file."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

import msgspec
import pytest
from margin_helpers import money_sides

from clients.margin_flow import (
    FUNDING_NS,
    START_NS,
    MarginShape,
    MarginStream,
    generate,
    main,
    read_margin_stream,
    write_margin_stream,
)
from exchange.core import ExchangeCore
from exchange.markets import DEFAULT_MARKETS
from exchange.messages import (
    AdvanceTime,
    CancelAll,
    CancelOrder,
    CommandRejected,
    Deposit,
    FundingPaid,
    PlaceOrder,
    PositionDeleveraged,
    PositionLiquidated,
    Record,
    SetIndexPrice,
    SetMarginMode,
)

if TYPE_CHECKING:
    from pathlib import Path

    from exchange.messages import Command

SMALL = MarginShape(accounts=1_000)


@pytest.fixture(scope="module")
def stream() -> MarginStream:
    """Twenty thousand flow commands of a thousand accounts, seed 42."""
    return generate(20_000, 42, SMALL)


@pytest.fixture(scope="module")
def outcome(stream: MarginStream) -> tuple[ExchangeCore, Counter[str]]:
    """The stream run through a margin core, liquidations fed back; events by kind.

    Rejects are counted for the flow only ("flow_rejects").
    """
    core = ExchangeCore(DEFAULT_MARKETS, margin=True)
    counts: Counter[str] = Counter()

    def send(ts_ns: int, cmd: Command, *, flow: bool) -> None:
        events = core.handle(Record(core.last_seq + 1, ts_ns, cmd))
        counts.update(type(e).__name__ for e in events)
        if flow:
            counts["flow_rejects"] += sum(type(e) is CommandRejected for e in events)
        for system in core.system_commands():
            later = core.handle(Record(core.last_seq + 1, ts_ns, system))
            counts.update(type(e).__name__ for e in later)

    for ts_ns, cmd in stream.setup:
        send(ts_ns, cmd, flow=False)
    for ts_ns, cmd in stream.flow:
        send(ts_ns, cmd, flow=True)
    return core, counts


class TestDeterminism:
    """The stream depends on its seed and shape only."""

    def test_the_same_seed_gives_the_same_stream(self) -> None:
        """Two generations with one seed encode to the same bytes."""
        first = msgspec.msgpack.encode(generate(3_000, 7, SMALL))
        assert first == msgspec.msgpack.encode(generate(3_000, 7, SMALL))

    def test_another_seed_gives_another_stream(self) -> None:
        """Seeds 7 and 8 give different flows."""
        assert generate(3_000, 7, SMALL).flow != generate(3_000, 8, SMALL).flow


class TestShape:
    """The stream has the shape its module doc states."""

    def test_flow_has_exactly_n_commands_in_time_order(
        self, stream: MarginStream
    ) -> None:
        """There are n flow commands and their timestamps never go back."""
        stamps = [ts for ts, _ in stream.setup + stream.flow]
        assert len(stream.flow) == 20_000
        assert stamps == sorted(stamps)

    def test_every_account_deposits_once_in_the_setup(
        self, stream: MarginStream
    ) -> None:
        """The setup funds 1,000 distinct accounts, 8 of them makers."""
        funded = [c.account for _, c in stream.setup if isinstance(c, Deposit)]
        assert len(set(funded)) == len(funded) == 1_000
        assert sum(name.startswith("mm-") for name in funded) == SMALL.makers

    def test_takers_use_both_margin_modes(self, stream: MarginStream) -> None:
        """Both isolated and cross are set, on both markets."""
        pairs = {
            (c.symbol, c.mode)
            for _, c in stream.setup
            if isinstance(c, SetMarginMode) and not c.account.startswith("mm-")
        }
        assert pairs == {
            (m.symbol, mode) for m in DEFAULT_MARKETS for mode in ("isolated", "cross")
        }

    def test_the_flow_crosses_three_funding_times(self, stream: MarginStream) -> None:
        """Three `AdvanceTime` records land on funding times, which the stamps pass."""
        ticks = [c.ts_ns for _, c in stream.flow if isinstance(c, AdvanceTime)]
        assert len(ticks) == 3
        assert all(t % FUNDING_NS == 0 and t > START_NS for t in ticks)
        assert stream.flow[-1][0] >= ticks[-1]

    def test_the_flow_holds_every_kind_of_command(self, stream: MarginStream) -> None:
        """Market, IOC, reduce-only, stop, take-profit, cancel and cancel-all appear."""
        places = [c for _, c in stream.flow if isinstance(c, PlaceOrder)]
        kinds = {c.type for c in places} | {c.tif for c in places}
        assert {"market", "limit", "stop_market", "take_profit_market", "IOC"} <= kinds
        assert any(c.reduce_only and c.type == "market" for c in places)
        assert any(isinstance(c, CancelOrder) for _, c in stream.flow)
        assert any(isinstance(c, CancelAll) for _, c in stream.flow)

    def test_activity_is_skewed_toward_a_few_takers(self, stream: MarginStream) -> None:
        """The busiest tenth of the active takers sends over a third of their orders."""
        senders = Counter(
            c.account
            for _, c in stream.flow
            if isinstance(c, PlaceOrder) and c.account.startswith("t-")
        )
        counts = sorted(senders.values(), reverse=True)
        assert sum(counts[: len(counts) // 10]) > sum(counts) / 3

    def test_each_index_moves_at_least_two_percent(self, stream: MarginStream) -> None:
        """Each market's index spans at least 2 % of its start over the flow."""
        for market in DEFAULT_MARKETS:
            path = [
                c.price
                for _, c in stream.flow
                if isinstance(c, SetIndexPrice) and c.symbol == market.symbol
            ]
            assert (max(path) - min(path)) * 50 >= path[0]

    def test_a_shape_without_takers_is_refused(self) -> None:
        """Makers must be fewer than the accounts."""
        with pytest.raises(ValueError, match="one taker"):
            MarginShape(accounts=8, makers=8)

    def test_no_commands_is_refused(self) -> None:
        """A flow of zero commands is refused."""
        with pytest.raises(ValueError, match="positive"):
            generate(0)


class TestThroughTheCore:
    """Run through a margin core, the stream liquidates, funds and rarely fails."""

    def test_positions_are_liquidated_and_deleveraged(
        self, outcome: tuple[ExchangeCore, Counter[str]]
    ) -> None:
        """Liquidations and ADL both happen."""
        _, counts = outcome
        assert counts[PositionLiquidated.__name__] > 0
        assert counts[PositionDeleveraged.__name__] > 0

    def test_funding_is_paid(self, outcome: tuple[ExchangeCore, Counter[str]]) -> None:
        """Positions open at the funding times pay or receive funding."""
        _, counts = outcome
        assert counts[FundingPaid.__name__] > 0

    def test_under_two_percent_of_the_flow_is_refused(
        self, outcome: tuple[ExchangeCore, Counter[str]]
    ) -> None:
        """Fewer than 2 % of the flow's commands are rejected."""
        _, counts = outcome
        assert counts["flow_rejects"] < 20_000 * 0.02

    def test_money_is_conserved_and_positions_net_out(
        self, outcome: tuple[ExchangeCore, Counter[str]]
    ) -> None:
        """Deposits equal what is held, and each market's positions sum to zero."""
        core, _ = outcome
        ledger = core.ledger
        assert ledger is not None
        deposits, held = money_sides(ledger)
        assert deposits == held
        net = Counter[str]()
        for account in ledger.accounts.values():
            for symbol, p in account.positions.items():
                net[symbol] += p.size
        assert all(size == 0 for size in net.values())


class TestFile:
    """The stream's file form round-trips and names what is wrong."""

    @pytest.mark.parametrize("suffix", [".msgpack", ".json"])
    def test_a_written_stream_reads_back_equal(
        self, tmp_path: Path, suffix: str
    ) -> None:
        """Writing then reading gives the same stream."""
        stream = generate(2_000, 3, SMALL)
        path = tmp_path / f"flow{suffix}"
        write_margin_stream(path, stream)
        assert read_margin_stream(path) == stream

    def test_an_unknown_suffix_is_refused(self, tmp_path: Path) -> None:
        """A .txt file is neither written nor read."""
        with pytest.raises(ValueError, match="format"):
            write_margin_stream(tmp_path / "flow.txt", generate(100, 3, SMALL))
        (tmp_path / "flow.txt").write_text("x")
        with pytest.raises(ValueError, match="format"):
            read_margin_stream(tmp_path / "flow.txt")

    def test_another_version_is_refused(self, tmp_path: Path) -> None:
        """A file of another format version is refused with both versions named."""
        stream = msgspec.structs.replace(generate(100, 3, SMALL), version=99)
        path = tmp_path / "flow.msgpack"
        write_margin_stream(path, stream)
        with pytest.raises(ValueError, match="version 99"):
            read_margin_stream(path)

    def test_cli_writes_a_readable_file(self, tmp_path: Path) -> None:
        """``python -m clients.margin_flow`` writes the stream it describes."""
        path = tmp_path / "flow.msgpack"
        assert main(["500", "--accounts", "1000", "--out", str(path)]) == 0
        assert len(read_margin_stream(path).flow) == 500
