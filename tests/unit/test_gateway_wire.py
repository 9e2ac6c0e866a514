"""The wire format: every request and answer survives both codecs unchanged."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest

from exchange.gateway import answers as out
from exchange.gateway import wire
from exchange.gateway.auth import sign

D = Decimal
BASE = {"id": "r1", "ts_ms": 1_700_000_000_000}

REQUESTS: list[wire.Request] = [
    wire.NewOrder(
        **BASE,
        symbol="BTC-PERP",
        side="buy",
        type="stop_limit",
        qty=D("0.5"),
        price=D("65000.1"),
        tif="IOC",
        reduce_only=True,
        trigger_price=D("64000"),
        trigger_by="mark",
        stp="expire_both",
        cid="bot-1",
    ),
    wire.CancelOrder(**BASE, order_id=7),
    wire.AmendOrder(**BASE, cid="bot-1", qty=D("0.25"), recv_window_ms=60_000),
    wire.CancelAll(**BASE, symbol="ETH-PERP"),
    wire.SetLeverage(**BASE, symbol="BTC-PERP", leverage=50),
    wire.SetMarginMode(**BASE, symbol="BTC-PERP", mode="isolated"),
    wire.AdjustMargin(**BASE, symbol="BTC-PERP", amount=D("-12.5")),
    wire.Batch(cmds=[wire.CancelOrder(**BASE, cid="x"), wire.CancelAll(**BASE)]),
    wire.GetBook(**BASE, symbol="BTC-PERP", depth=5),
    wire.GetBalance(**BASE),
    wire.GetPositions(**BASE),
    wire.GetOpenOrders(**BASE, symbol="BTC-PERP"),
]

T = {"seq": 9, "ts_ns": 1_700_000_000_000_000_001}
ANSWERS: list[out.Answer] = [
    out.Accepted(id="r1", op="new", seq=9, order_id=3, cid="c", duplicate=True),
    out.Rejected(id="r1", op="new", code=1008, name="OFF_TICK", message="no"),
    out.OrderUpdate(
        **T,
        order_id=3,
        cid="c",
        symbol="BTC-PERP",
        side="sell",
        type="limit",
        status="canceled",
        price=D("65000.1"),
        qty=D("1"),
        filled=D("0.4"),
        remaining=D(0),
        reason="user",
    ),
    out.TradeFill(
        **T,
        trade_id=1,
        order_id=3,
        cid="",
        symbol="BTC-PERP",
        side="buy",
        price=D(65000),
        qty=D("0.001"),
        liquidity="maker",
        fee=D("0.013"),
    ),
    out.BalanceUpdate(**T, change=D("-1.5"), wallet=D(100), reason="fee"),
    out.PositionUpdate(
        **T,
        symbol="BTC-PERP",
        size=D("-0.2"),
        entry_price=None,
        margin=D(0),
        mode="cross",
        leverage=20,
        realized=D(0),
        fee=D(0),
    ),
    out.MarginCallNotice(
        **T, symbol="", margin_balance=D(10), maintenance_margin=D(11)
    ),
    out.LiquidationNotice(
        **T,
        symbol="BTC-PERP",
        mode="isolated",
        qty=D(1),
        bankruptcy_price=D(60000),
        order_id=4,
        filled=D("0.5"),
        deleveraged=D("0.5"),
        fee=D(3),
        left=D(0),
    ),
    out.AdlNotice(**T, symbol="BTC-PERP", qty=D(1), price=D(60000)),
    out.FundingNotice(
        **T,
        symbol="BTC-PERP",
        amount=D("-0.1"),
        rate=D("0.0001"),
        mark=D(65000),
        funding_ts_ns=5,
    ),
    out.BalanceInfo(id="q", seq=9, wallet=D(1), free=D(1), used=D(0), total=D(1)),
    out.PositionsInfo(
        id="q",
        seq=9,
        positions=[
            out.PositionInfo(
                symbol="BTC-PERP",
                side="long",
                contracts=D("0.2"),
                entry_price=D(65000),
                mark_price=None,
                notional=D(13000),
                leverage=20,
                unrealized_pnl=D(0),
                liquidation_price=None,
                margin_mode="cross",
                collateral=D(100),
                initial_margin=D(650),
                maintenance_margin=D(52),
                margin_ratio=None,
            )
        ],
    ),
    out.OpenOrdersInfo(
        id="q",
        seq=9,
        orders=[
            out.OpenOrder(
                order_id=1,
                client_order_id="c",
                symbol="BTC-PERP",
                side="buy",
                type="limit",
                status="new",
                price=D(1),
                qty=D(1),
                filled=D(0),
                remaining=D(1),
                tif="GTC",
                post_only=False,
                reduce_only=False,
                trigger_price=None,
                trigger_by=None,
                triggered=None,
            )
        ],
    ),
    out.PublicTrade(
        **T, symbol="BTC-PERP", trade_id=1, price=D(1), qty=D(1), taker_side="sell"
    ),
    out.BookUpdate(
        **T, symbol="BTC-PERP", book_seq=4, bids=[(D(1), D(0))], asks=[(D(2), D(3))]
    ),
    out.BookSnapshot(seq=9, symbol="BTC-PERP", book_seq=4, bids=[], asks=[], id="q"),
    out.MarkUpdate(**T, symbol="BTC-PERP", mark=D("65000.5"), index=None),
    out.FundingRate(
        **T, symbol="BTC-PERP", rate=D("0.0001"), mark=D(1), funding_ts_ns=5
    ),
]


@pytest.mark.parametrize("fmt", ["json", "msgpack"])
class TestRoundTrip:
    """Encoding then decoding gives the same message."""

    @pytest.mark.parametrize("request_", REQUESTS, ids=lambda r: type(r).__name__)
    def test_every_request_round_trips(self, fmt, request_):
        """A request decodes to an equal request in both formats."""
        codec = wire.Codec(fmt)
        assert codec.request(codec.encode(request_)) == request_

    @pytest.mark.parametrize("answer", ANSWERS, ids=lambda a: type(a).__name__)
    def test_every_answer_round_trips(self, fmt, answer):
        """An answer decodes to an equal answer in both formats."""
        codec = wire.Codec(fmt)
        assert codec.answer(codec.encode(answer)) == answer

    def test_envelope_keeps_the_exact_request_bytes(self, fmt):
        """The envelope hands back the request's bytes exactly as they were sent."""
        codec = wire.Codec(fmt)
        body = codec.encode(REQUESTS[0])
        envelope = wire.Signed(req=msgspec.Raw(body), sig=sign(b"k", body))
        decoded = codec.envelope(codec.encode(envelope))
        assert bytes(decoded.req) == body
        assert decoded.sig == sign(b"k", body)


class TestJsonShape:
    """What a bot in any language reads and writes."""

    def test_decimals_are_strings_on_the_wire(self):
        """Prices and quantities are JSON strings, never floats."""
        encoded = wire.Codec().encode(ANSWERS[3])
        assert b'"price":"65000"' in encoded
        assert b'"qty":"0.001"' in encoded

    def test_answers_are_tagged_by_kind_and_requests_by_op(self):
        """Each message names its type in a tag field."""
        codec = wire.Codec()
        assert codec.encode(ANSWERS[0]).startswith(b'{"kind":"accepted"')
        assert codec.encode(REQUESTS[1]).startswith(b'{"op":"cancel"')

    def test_unknown_field_fails_to_decode(self):
        """A request with a field the schema does not know is an error."""
        bad = b'{"op":"cancel","id":"r","ts_ms":1,"order_id":1,"account":"bob"}'
        with pytest.raises(msgspec.ValidationError, match="account"):
            wire.Codec().request(bad)


class TestTopics:
    """Topic names follow DESIGN.md's tree."""

    @pytest.mark.parametrize(
        ("kind", "key", "name"),
        [
            ("ack", "alice", "paperx/v1/ack/alice"),
            ("acct", "alice", "paperx/v1/acct/alice"),
            ("trades", "BTC-PERP", "paperx/v1/md/BTC-PERP/trades"),
            ("book", "BTC-PERP", "paperx/v1/md/BTC-PERP/book"),
            ("mark", "BTC-PERP", "paperx/v1/md/BTC-PERP/mark"),
        ],
    )
    def test_topic_names(self, kind, key, name):
        """Each topic kind maps to its place in the tree."""
        assert wire.topic(kind, key) == name
