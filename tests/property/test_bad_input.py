"""Bad input never crashes the core: any well-typed command gets events, not errors."""

from __future__ import annotations

import os

from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.core import ExchangeCore
from exchange.markets import DEFAULT_MARKETS
from exchange.messages import (
    AdjustMargin,
    AdvanceTime,
    AmendOrder,
    CancelAll,
    CancelOrder,
    Command,
    CommandRejected,
    Deposit,
    Liquidate,
    PlaceOrder,
    Record,
    SetIndexPrice,
    SetLeverage,
    SetMarginMode,
    SetRiskLimits,
    Withdraw,
)

ACCOUNTS = st.sampled_from(["", "a", "b", "c"])
SYMBOLS = st.sampled_from(["", "BTC-PERP", "ETH-PERP", "NOPE"])
# E8 amounts around the interesting edges: zero, negative, off-grid, huge.
AMOUNTS = st.one_of(
    st.integers(-(10**20), 10**20),
    st.sampled_from([0, 1, -1, 10**5, 10**8, 6 * 10**12, 10**15]),
)
SMALL = st.integers(-5, 200)

COMMANDS: st.SearchStrategy[Command] = st.one_of(
    st.builds(
        PlaceOrder,
        account=ACCOUNTS,
        symbol=SYMBOLS,
        side=st.sampled_from(["buy", "sell"]),
        type=st.sampled_from(
            [
                "limit",
                "market",
                "stop_market",
                "stop_limit",
                "take_profit_market",
                "take_profit_limit",
            ]
        ),
        qty=AMOUNTS,
        price=AMOUNTS,
        tif=st.sampled_from(["GTC", "IOC", "FOK"]),
        post_only=st.booleans(),
        reduce_only=st.booleans(),
        trigger_price=AMOUNTS,
        stp=st.sampled_from(["none", "expire_taker", "expire_maker", "expire_both"]),
        client_order_id=st.sampled_from(["", "x", "y" * 40]),
        trigger_by=st.sampled_from(["last", "mark"]),
    ),
    st.builds(
        CancelOrder,
        account=ACCOUNTS,
        order_id=SMALL,
        client_order_id=st.sampled_from(["", "x"]),
    ),
    st.builds(AmendOrder, account=ACCOUNTS, order_id=SMALL, qty=AMOUNTS, price=AMOUNTS),
    st.builds(CancelAll, account=ACCOUNTS, symbol=SYMBOLS),
    st.builds(Deposit, account=ACCOUNTS, amount=AMOUNTS),
    st.builds(Withdraw, account=ACCOUNTS, amount=AMOUNTS),
    st.builds(
        SetMarginMode,
        account=ACCOUNTS,
        symbol=SYMBOLS,
        mode=st.sampled_from(["isolated", "cross"]),
    ),
    st.builds(SetLeverage, account=ACCOUNTS, symbol=SYMBOLS, leverage=SMALL),
    st.builds(AdjustMargin, account=ACCOUNTS, symbol=SYMBOLS, amount=AMOUNTS),
    st.builds(
        SetRiskLimits,
        account=ACCOUNTS,
        max_order_margin_ppm=AMOUNTS,
        daily_loss_limit=AMOUNTS,
    ),
    st.builds(SetIndexPrice, symbol=SYMBOLS, price=AMOUNTS),
    st.builds(AdvanceTime, ts_ns=st.integers(0, 10**15)),
    st.builds(Liquidate, account=ACCOUNTS, symbol=SYMBOLS),
)


class TestBadInput:
    """Malformed and hostile commands: coded rejects, never an exception."""

    @settings(
        max_examples=int(os.environ.get("PAPERX_PROPERTY_EXAMPLES", "300")),
        deadline=None,
    )
    @given(st.lists(COMMANDS, min_size=1, max_size=120), st.booleans())
    def test_any_command_stream_yields_events_and_never_raises(
        self, commands: list[Command], margin: bool
    ) -> None:
        """Every command gets at least one event or none, and the core never raises."""
        core = ExchangeCore(DEFAULT_MARKETS, margin=margin)

        def apply(cmd: Command) -> None:
            seq = core.last_seq + 1
            events = core.handle(Record(seq, seq, cmd))
            for event in events:
                assert event.seq == seq

        for command in commands:
            apply(command)
            for system in core.system_commands():
                apply(system)
        # a final hash is computable: the state is intact
        assert len(core.state_hash()) == 64

    @settings(
        max_examples=int(os.environ.get("PAPERX_PROPERTY_EXAMPLES", "300")),
        deadline=None,
    )
    @given(COMMANDS)
    def test_a_rejected_command_changes_nothing(self, command: Command) -> None:
        """On a funded exchange with a resting order, any reject leaves the state."""
        core = ExchangeCore(DEFAULT_MARKETS, margin=True)
        setup: list[Command] = [
            Deposit(account="a", amount=10**13),
            SetIndexPrice(symbol="BTC-PERP", price=6 * 10**12),
            PlaceOrder(
                account="a",
                symbol="BTC-PERP",
                side="buy",
                type="limit",
                qty=10**8,
                price=59_000 * 10**8,
            ),
        ]
        for seq, cmd in enumerate(setup, 1):
            core.handle(Record(seq, 0, cmd))
        before = core.state_hash(include_seq=False)
        events = core.handle(Record(len(setup) + 1, 0, command))
        if events and isinstance(events[0], CommandRejected):
            assert core.state_hash(include_seq=False) == before
