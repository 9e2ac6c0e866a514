"""Differential test: the core against a naive list-based reference, seeded streams."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

import pytest
from harness import Harness, of
from naive_book import NaiveExchange, Outcome
from streams import STREAM_MARKETS, SYMBOLS, NaiveView, random_steps, to_command

from exchange.messages import (
    AllCanceled,
    BookDelta,
    CancelAll,
    Command,
    CommandRejected,
    Event,
    OrderAccepted,
    OrderAmended,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRested,
    OrderTriggered,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

COMMANDS_PER_STREAM = 3000
COMPARE_EVERY = 25


def outcomes(  # noqa: C901 -- one case per event kind
    events: Sequence[Event], cmd: Command
) -> list[Outcome]:
    """Return a record's events (book deltas aside) as the reference's tuples."""
    out: list[Outcome] = []
    for e in events:
        match e:
            case OrderAccepted():
                out.append(("acc", e.order_id))
            case CommandRejected():
                out.append(("rej", e.code))
            case OrderFilled():
                out.append(("fill", e.taker_order_id, e.maker_order_id, e.price, e.qty))
            case OrderRested():
                out.append(("rest", e.order_id, e.price, e.qty))
            case OrderCanceled():
                out.append(("cxl", e.order_id, e.qty, e.reason))
            case OrderExpired():
                out.append(("exp", e.order_id, e.qty, e.reason))
            case OrderAmended():
                out.append(("amd", e.order_id, e.price, e.qty, e.requeued))
            case OrderTriggered():
                out.append(("trig", e.order_id, e.trigger_price, e.last_price))
            case AllCanceled():
                out.append(("all", e.count))
    if isinstance(cmd, CancelAll):
        # Cancel-all may report its cancels in any order; the reference sorts by id.
        cancels = sorted(o for o in out if o[0] == "cxl")
        out = cancels + [o for o in out if o[0] != "cxl"]
    return out


def naive_levels(naive: NaiveExchange) -> dict[tuple[str, str, int], int]:
    """Return every level of the reference as {(symbol, side, price): open qty}."""
    levels: dict[tuple[str, str, int], int] = {}
    for symbol in SYMBOLS:
        for is_buy, side in ((True, "buy"), (False, "sell")):
            for _, price, qty in naive.book(symbol, is_buy):
                key = (symbol, side, price)
                levels[key] = levels.get(key, 0) + qty
    return levels


def assert_same_books(core: Harness, naive: NaiveExchange, where: str) -> None:
    """Assert both exchanges hold the same orders in the same priority order."""
    for symbol in SYMBOLS:
        assert core.queue("buy", symbol) == naive.book(symbol, is_buy=True), where
        assert core.queue("sell", symbol) == naive.book(symbol, is_buy=False), where
        assert sorted(core.pending(symbol)) == naive.pending_ids(symbol), where
        assert core.last_price(symbol) == naive.markets[symbol].last_price, where


def assert_deltas_match(
    events: Sequence[Event],
    before: dict[tuple[str, str, int], int],
    after: dict[tuple[str, str, int], int],
    where: str,
) -> None:
    """Assert the record reported each changed level once, with its final quantity."""
    reported = [(d.symbol, d.side, d.price) for d in of(events, BookDelta)]
    assert len(reported) == len(set(reported)), f"{where}: level reported twice"
    for d in of(events, BookDelta):
        assert d.qty == after.get((d.symbol, d.side, d.price), 0), where
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    assert changed <= set(reported), (
        f"{where}: unreported levels {changed - set(reported)}"
    )


class TestDifferential:
    """The core against the naive reference."""

    @pytest.mark.parametrize("seed", range(8))
    def test_core_and_naive_reference_agree_on_a_seeded_stream(self, seed: int):
        """Every outcome, every book delta and the books agree with the reference."""
        rng = random.Random(seed)  # noqa: S311 -- a reproducible test stream
        core = Harness(STREAM_MARKETS)
        naive = NaiveExchange(list(STREAM_MARKETS))
        view = NaiveView(naive)
        fills = 0
        for i, step in enumerate(random_steps(rng, COMMANDS_PER_STREAM)):
            cmd = to_command(step, view)
            where = f"seed {seed}, command {i}: {cmd}"
            before = naive_levels(naive)
            expected = naive.apply(cmd)
            events = core.send(cmd)
            assert outcomes(events, cmd) == expected, where
            assert_deltas_match(events, before, naive_levels(naive), where)
            trade_ids = [f.trade_id for f in of(events, OrderFilled)]
            assert trade_ids == list(range(fills + 1, fills + 1 + len(trade_ids))), (
                where
            )
            fills += len(trade_ids)
            if i % COMPARE_EVERY == 0:
                assert_same_books(core, naive, where)
        assert_same_books(core, naive, f"seed {seed}, end")
        assert fills == naive.trades

    def test_streams_exercise_every_outcome(self):
        """The seeded streams produce every kind of outcome the reference knows."""
        rng = random.Random(0)  # noqa: S311 -- a reproducible test stream
        naive = NaiveExchange(list(STREAM_MARKETS))
        view = NaiveView(naive)
        seen: set[object] = set()
        for step in random_steps(rng, COMMANDS_PER_STREAM):
            for outcome in naive.apply(to_command(step, view)):
                seen.add(outcome[0])
                if outcome[0] in ("exp", "cxl"):
                    seen.add(outcome[-1])
                if outcome[0] == "rej":
                    seen.add(int(outcome[1]))
                if outcome[0] == "amd":
                    seen.add(("amd", outcome[-1]))
        expected = {
            "acc",
            "rej",
            "fill",
            "rest",
            "cxl",
            "exp",
            "amd",
            "trig",
            "all",
            "ioc",
            "stp_maker",
            "stp_taker",
            "user",
            "cancel_all",
            ("amd", True),
            ("amd", False),
            4001,
            4002,
            4003,
            4004,
            4005,
            4006,
            4007,
            1002,
            1003,
            1005,
            1008,
        }
        assert expected <= seen, expected - seen
