"""Tests of what the journal keeps of a record: the facts, not what can be derived."""

from __future__ import annotations

from typing import get_args

from exchange.core import ExchangeCore
from exchange.journal.payload import (
    DERIVED_EVENTS,
    JOURNALED_DECODER,
    journal_payload,
    journaled_events,
)
from exchange.messages import (
    AllCanceled,
    BalanceChanged,
    BookDelta,
    CheckpointTaken,
    CommandRejected,
    Event,
    FundingPaid,
    InsuranceFundChanged,
    LiquidationSkipped,
    MarginCall,
    MarkPriceChanged,
    OrderAccepted,
    OrderAmended,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRested,
    OrderTriggered,
    PlaceOrder,
    PositionChanged,
    PositionDeleveraged,
    PositionLiquidated,
    Record,
    RiskLimitsSet,
)

E8 = 10**8


def _order(account: str, side: str, qty: int, price: int) -> PlaceOrder:
    return PlaceOrder(
        account=account,
        symbol="BTC-PERP",
        side=side,
        type="limit",  # type: ignore[arg-type]
        qty=qty * E8,
        price=price * E8,
    )


def _handle(core: ExchangeCore, command: PlaceOrder) -> tuple[Record, list[Event]]:
    record = Record(core.last_seq + 1, 1_000 + core.last_seq, command)
    return record, core.handle(record)


def _sell_ioc_accepted(*, liquidation: bool = True, order_id: int = 3) -> OrderAccepted:
    """Return the acceptance of an IOC reduce-only sell (a liquidation by default)."""
    return OrderAccepted(
        7,
        order_id,
        account="a",
        symbol="BTC-PERP",
        side="sell",
        type="limit",
        qty=5,
        price=100,
        tif="IOC",
        post_only=False,
        reduce_only=True,
        trigger_price=0,
        stp="none",
        client_order_id="",
        liquidation=liquidation,
    )


class TestJournaledEvents:
    """What `journaled_events` keeps and `journal_payload` writes."""

    def test_the_journaled_set_is_every_event_but_acceptances_rests_and_levels(
        self,
    ) -> None:
        """Every event type is journaled but OrderAccepted, OrderRested, BookDelta."""
        journaled = set(get_args(Event)) - DERIVED_EVENTS
        assert {OrderAccepted, OrderRested, BookDelta} == DERIVED_EVENTS
        assert journaled == {
            CommandRejected,
            OrderFilled,
            OrderCanceled,
            OrderExpired,
            OrderAmended,
            OrderTriggered,
            AllCanceled,
            CheckpointTaken,
            BalanceChanged,
            PositionChanged,
            MarkPriceChanged,
            InsuranceFundChanged,
            MarginCall,
            PositionLiquidated,
            PositionDeleveraged,
            LiquidationSkipped,
            FundingPaid,
            RiskLimitsSet,
        }

    def test_a_resting_order_journals_nothing_but_its_record(self) -> None:
        """A limit order that rests causes three events and journals none of them."""
        core = ExchangeCore()
        _, events = _handle(core, _order("a", "sell", 1, 100))
        assert [type(e) for e in events] == [OrderAccepted, OrderRested, BookDelta]
        assert journaled_events(events) == []

    def test_a_trade_journals_its_fill_and_drops_the_derived_events(self) -> None:
        """A crossing order keeps its fill, not its acceptance and level reports."""
        core = ExchangeCore()
        _handle(core, _order("a", "sell", 1, 100))
        _, events = _handle(core, _order("b", "buy", 2, 100))
        kept = journaled_events(events)
        assert [type(e) for e in kept] == [OrderFilled]
        assert kept == [e for e in events if type(e) not in DERIVED_EVENTS]

    def test_a_liquidation_orders_acceptance_is_journaled(self) -> None:
        """The liquidator's own order is a decided fact: its acceptance is kept."""
        liquidation = _sell_ioc_accepted()
        plain = _sell_ioc_accepted(liquidation=False, order_id=4)
        assert journaled_events([plain, liquidation]) == [liquidation]

    def test_a_payload_decodes_to_the_record_and_its_journaled_events(self) -> None:
        """journal_payload encodes the record with the journaled events only."""
        core = ExchangeCore()
        _handle(core, _order("a", "sell", 1, 100))
        record, events = _handle(core, _order("b", "buy", 3, 100))
        entry = JOURNALED_DECODER.decode(journal_payload(record, events))
        assert entry.record == record
        assert entry.events == journaled_events(events)
        assert len(entry.events) < len(events)
        assert entry.margin == 0  # no margin ledger: orders hold none
