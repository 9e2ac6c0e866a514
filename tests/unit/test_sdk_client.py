"""The SDK client against an in-process exchange: orders, rejects, retries, streams."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from sdk_rig import BOOK, BTC, BTC_CCXT, client, venue

from clients.sdk import (
    AuthenticationError,
    BadSymbol,
    ClientClosed,
    ConnectionLost,
    InsufficientFunds,
    InvalidOrder,
    LoopbackExchange,
    OrderNotFound,
    PaperxClient,
    RejectedError,
    RequestTimeout,
    TransportError,
)
from clients.sdk._errors import rejected_error
from clients.sdk._orders import OrderCache
from exchange.codes import RejectCode
from exchange.errors import REJECT_CLASSES
from exchange.gateway.answers import LiquidationNotice, TradeFill
from exchange.gateway.wire import Codec

D = Decimal


class TestOrders:
    """Orders placed, canceled, amended and batched through the SDK."""

    async def test_a_resting_limit_order_comes_back_open_in_ccxt_shape(self):
        """A limit order that rests returns as an open ccxt order with its flags."""
        ex = venue("alice")
        async with client(ex, "alice") as alice:
            order = await alice.create_order(
                BTC_CCXT, "limit", "buy", "0.01", "64000", {"clientOrderId": "b1"}
            )
        assert (order["symbol"], order["type"], order["side"]) == (
            BTC_CCXT,
            "limit",
            "buy",
        )
        assert (order["status"], order["clientOrderId"], order["price"]) == (
            "open",
            "b1",
            D(64000),
        )
        assert (order["amount"], order["filled"], order["remaining"]) == (
            D("0.01"),
            0,
            D("0.01"),
        )
        assert (order["timeInForce"], order["postOnly"], order["reduceOnly"]) == (
            "GTC",
            False,
            False,
        )
        assert order["id"] == str(order["info"]["order_id"])

    async def test_a_taker_order_returns_closed_with_its_fills_and_both_sides_see_them(
        self,
    ):
        """A market order fills against a resting one; each side sees its fill."""
        ex = venue("alice", "bob")
        async with client(ex, "alice") as alice, client(ex, "bob") as bob:
            fills = alice.watch_my_trades(BTC)
            await alice.create_order(BTC, "limit", "sell", "0.02", "65000")
            taken = await bob.create_order(BTC, "market", "buy", "0.02")
            maker_fill = await anext(fills)
        assert (taken["status"], taken["filled"], taken["average"]) == (
            "closed",
            D("0.02"),
            D(65000),
        )
        assert taken["cost"] == D(1300)
        assert [t["takerOrMaker"] for t in taken["trades"]] == ["taker"]
        assert (
            maker_fill["side"],
            maker_fill["takerOrMaker"],
            maker_fill["amount"],
        ) == (
            "sell",
            "maker",
            D("0.02"),
        )

    async def test_paperx_symbols_in_results_when_asked(self):
        """With unified_symbols off, results name markets as paperx does."""
        ex = venue("alice")
        async with client(ex, "alice", unified_symbols=False) as alice:
            order = await alice.create_order(BTC_CCXT, "limit", "buy", "0.01", "1000")
        assert order["symbol"] == BTC

    async def test_cancel_order_returns_it_canceled_and_a_second_cancel_is_not_found(
        self,
    ):
        """A cancel returns the canceled order; canceling it again is OrderNotFound."""
        ex = venue("alice")
        async with client(ex, "alice") as alice:
            order = await alice.create_order(BTC, "limit", "buy", "0.01", "64000")
            canceled = await alice.cancel_order(order["id"])
            with pytest.raises(OrderNotFound) as caught:
                await alice.cancel_order(order["id"])
        assert (canceled["id"], canceled["status"]) == (order["id"], "canceled")
        assert caught.value.code == RejectCode.UNKNOWN_ORDER

    async def test_cancel_by_client_order_id(self):
        """An order can be canceled by its client order id."""
        ex = venue("alice")
        async with client(ex, "alice") as alice:
            await alice.create_order(
                BTC, "limit", "buy", "0.01", "64000", {"clientOrderId": "mine"}
            )
            canceled = await alice.cancel_order(None, BTC, {"clientOrderId": "mine"})
        assert (canceled["clientOrderId"], canceled["status"]) == ("mine", "canceled")

    async def test_cancel_all_orders_returns_every_order_it_canceled(self):
        """cancel_all_orders cancels the symbol's orders and returns them."""
        ex = venue("alice")
        async with client(ex, "alice") as alice:
            for price in ("63000", "63500", "64000"):
                await alice.create_order(BTC, "limit", "buy", "0.01", price)
            canceled = await alice.cancel_all_orders(BTC_CCXT)
            left = await alice.fetch_open_orders()
        assert sorted(o["price"] for o in canceled) == [D(63000), D(63500), D(64000)]
        assert {o["status"] for o in canceled} == {"canceled"}
        assert left == []

    async def test_edit_order_moves_price_and_open_amount(self):
        """edit_order gives a resting order a new price and open amount."""
        ex = venue("alice")
        async with client(ex, "alice") as alice:
            order = await alice.create_order(BTC, "limit", "buy", "0.03", "64000")
            edited = await alice.edit_order(
                order["id"], BTC, amount="0.01", price="64100"
            )
            (listed,) = await alice.fetch_open_orders(BTC)
        assert (edited["id"], edited["price"], edited["remaining"]) == (
            order["id"],
            D(64100),
            D("0.01"),
        )
        assert (listed["id"], listed["price"], listed["timeInForce"]) == (
            order["id"],
            D(64100),
            "GTC",
        )

    async def test_a_batch_answers_each_order_and_marks_a_rejected_one(self):
        """create_orders places a batch; the off-tick order comes back rejected."""
        ex = venue("alice")
        async with client(ex, "alice") as alice:
            orders = await alice.create_orders(
                [
                    {
                        "symbol": BTC,
                        "type": "limit",
                        "side": "buy",
                        "amount": "0.01",
                        "price": "64000",
                    },
                    {
                        "symbol": BTC,
                        "type": "limit",
                        "side": "buy",
                        "amount": "0.01",
                        "price": "64000.05",
                    },
                    {
                        "symbol": BTC,
                        "type": "limit",
                        "side": "sell",
                        "amount": "0.01",
                        "price": "66000",
                    },
                ]
            )
            open_orders = await alice.fetch_open_orders()
        assert [o["status"] for o in orders] == ["open", "rejected", "open"]
        assert orders[1]["info"]["name"] == "OFF_TICK"
        assert len(open_orders) == 2

    async def test_unknown_order_params_are_refused_before_sending(self):
        """A misspelt params key raises TypeError instead of being ignored."""
        ex = venue("alice")
        async with client(ex, "alice") as alice:
            with pytest.raises(TypeError, match="reduce_only"):
                await alice.create_order(
                    BTC, "market", "buy", "0.01", params={"reduce_only": True}
                )
            assert await alice.fetch_open_orders() == []


class TestRejects:
    """Rejects raise the SDK exception of their code's family."""

    async def test_an_off_tick_price_raises_invalid_order_with_its_code(self):
        """An off-tick price raises InvalidOrder carrying code, name and reason."""
        ex = venue("alice")
        async with client(ex, "alice") as alice:
            with pytest.raises(InvalidOrder) as caught:
                await alice.create_order(BTC, "limit", "buy", "0.01", "64000.05")
        error = caught.value
        assert (error.code, error.name) == (1008, "OFF_TICK")
        assert "tick size" in error.reason
        assert str(error).startswith("[1008 OFF_TICK]")

    async def test_an_unknown_symbol_raises_bad_symbol(self):
        """An unknown market raises BadSymbol."""
        ex = venue("alice")
        async with client(ex, "alice") as alice:
            with pytest.raises(BadSymbol):
                await alice.create_order("DOGE/USDT:USDT", "market", "buy", "1")

    async def test_an_order_beyond_the_margin_raises_insufficient_funds(self):
        """An order whose margin exceeds the free balance raises InsufficientFunds."""
        ex = venue("alice", deposit="100")
        async with client(ex, "alice") as alice:
            with pytest.raises(InsufficientFunds) as caught:
                await alice.create_order(BTC, "limit", "buy", "1", "65000")
        assert caught.value.name == "INSUFFICIENT_MARGIN"
        assert caught.value.seq > 0  # the core decided it, in a journaled record

    async def test_a_wrong_secret_raises_authentication_error(self):
        """A request signed with the wrong secret raises AuthenticationError."""
        ex = venue("alice")
        wrong = "not-the-secret"
        async with client(ex, "alice", secret=wrong) as alice:
            with pytest.raises(AuthenticationError) as caught:
                await alice.fetch_balance()
        assert caught.value.name == "BAD_SIGNATURE"

    def test_every_exchange_reject_family_has_an_sdk_class_of_the_same_name(self):
        """Each reject code maps to the SDK class named as the exchange's family."""
        for code, family in REJECT_CLASSES.items():
            error = rejected_error(int(code), code.name, "why")
            assert type(error).__name__ == family.__name__
            assert isinstance(error, RejectedError)

    def test_a_code_the_sdk_does_not_know_raises_the_base_reject(self):
        """An unknown code (a newer server's) raises plain RejectedError."""
        assert type(rejected_error(7777, "NEW", "why")) is RejectedError


class _LosingTransport:
    """A loopback transport whose first ``lose`` publishes vanish on the way."""

    def __init__(self, exchange: LoopbackExchange, account: str, lose: int) -> None:
        self.inner = exchange.transport(account)
        self.lose = lose
        self.published: list[bytes] = []

    async def connect(self) -> None:
        await self.inner.connect()

    async def close(self) -> None:
        await self.inner.close()

    async def subscribe(self, topic: str, qos: int) -> None:
        await self.inner.subscribe(topic, qos)

    def messages(self):
        return self.inner.messages()

    async def publish(self, topic: str, payload: bytes, qos: int) -> None:
        self.published.append(payload)
        if self.lose:
            self.lose -= 1
            return
        await self.inner.publish(topic, payload, qos)


class _DeafTransport(_LosingTransport):
    """A loopback transport that goes deaf (delivers nothing) until reconnected.

    As a broker that lost track of a session leaves a live socket behind.
    """

    def __init__(self, exchange: LoopbackExchange, account: str) -> None:
        super().__init__(exchange, account, lose=0)
        self.deaf = False

    async def connect(self) -> None:
        self.deaf = False
        await self.inner.connect()

    async def messages(self):
        async for message in self.inner.messages():
            if not self.deaf:
                yield message


class _EchoingTransport(_LosingTransport):
    """A loopback transport that delivers every received message twice (QoS 1)."""

    def __init__(self, exchange: LoopbackExchange, account: str) -> None:
        super().__init__(exchange, account, lose=0)

    async def messages(self):
        async for message in self.inner.messages():
            yield message
            yield message


class TestRedelivery:
    """At-least-once delivery: a message that arrives twice counts once."""

    async def test_a_fill_delivered_twice_is_kept_once(self):
        """A repeated fill adds no second trade to the order, trades or stream."""
        ex = venue("alice", "bob")
        link = _EchoingTransport(ex, "bob")
        async with (
            client(ex, "alice") as alice,
            client(ex, "bob", transport=link) as bob,
        ):
            fills = bob.watch_my_trades(BTC)
            await alice.create_order(BTC, "limit", "sell", "0.02", "65000")
            await alice.create_order(BTC, "limit", "sell", "0.01", "65001")
            first = await bob.create_order(BTC, "market", "buy", "0.02")
            second = await bob.create_order(BTC, "market", "buy", "0.01")
            streamed = [await anext(fills), await anext(fills)]
            trades = await bob.fetch_my_trades(BTC)
        assert [len(first["trades"]), len(second["trades"])] == [1, 1]
        assert [t["amount"] for t in trades] == [D("0.02"), D("0.01")]
        assert [t["amount"] for t in streamed] == [D("0.02"), D("0.01")]

    def test_fills_of_two_orders_under_one_trade_id_are_both_kept(self):
        """A self-trade's two fills share a trade id but not an order id: both count."""
        cache = OrderCache(str)
        maker = _fill(trade_id=7, order_id=1, liquidity="maker")
        taker = _fill(trade_id=7, order_id=2, liquidity="taker")
        assert [cache.on_fill(f) for f in (maker, taker, maker)] == [True, True, False]
        assert [len(cache.fills[1]), len(cache.fills[2]), len(cache.recent)] == [
            1,
            1,
            2,
        ]


def _fill(*, trade_id: int, order_id: int, liquidity: str) -> TradeFill:
    """Return a fill of 0.01 BTC at 65,000."""
    return TradeFill(
        seq=1,
        ts_ns=0,
        trade_id=trade_id,
        order_id=order_id,
        cid="",
        symbol=BTC,
        side="buy" if liquidity == "taker" else "sell",
        price=D(65000),
        qty=D("0.01"),
        liquidity=liquidity,
        fee=D(0),
    )


class TestRetries:
    """Retries reuse request and client order ids, so nothing runs twice."""

    async def test_a_lost_answer_is_retried_and_the_order_placed_once(self):
        """When the ack is lost, the retry reuses the ids and places no second order."""
        ex = venue("alice")
        ex.lose("paperx/v1/ack/alice", 1)  # the acceptance vanishes
        async with client(ex, "alice", timeout=0.2) as alice:
            order = await alice.create_order(BTC, "limit", "buy", "0.01", "64000")
            open_orders = await alice.fetch_open_orders()
        assert [o["id"] for o in open_orders] == [order["id"]]
        assert order["status"] == "open"

    async def test_a_lost_request_is_sent_again_and_runs_once(self):
        """When the request itself is lost, the retry runs it exactly once."""
        ex = venue("alice")
        link = _LosingTransport(ex, "alice", lose=1)
        async with client(ex, "alice", timeout=0.2, transport=link) as alice:
            await alice.create_order(BTC, "limit", "buy", "0.01", "64000")
            assert len(await alice.fetch_open_orders()) == 1
        first, second = link.published[:2]
        assert first != second  # a fresh timestamp and signature ...
        assert b'"cid":"x' in first
        assert first.split(b'"ts_ms"')[0] == second.split(b'"ts_ms"')[0]  # same id

    async def test_a_repeated_client_order_id_returns_the_original_order(self):
        """Placing again with an accepted client order id returns that order."""
        ex = venue("alice")
        async with client(ex, "alice") as alice:
            params = {"clientOrderId": "once"}
            first = await alice.create_order(
                BTC, "limit", "buy", "0.01", "64000", params
            )
            again = await alice.create_order(
                BTC, "limit", "buy", "0.01", "64000", params
            )
            open_orders = await alice.fetch_open_orders()
        assert again["id"] == first["id"]
        assert again["info"]["seq"] == first["info"]["seq"]
        assert len(open_orders) == 1

    async def test_no_answer_after_every_retry_raises_request_timeout(self):
        """A request whose every send is lost raises RequestTimeout with its id."""
        ex = venue("alice")
        link = _LosingTransport(ex, "alice", lose=10)
        async with client(
            ex, "alice", timeout=0.05, retries=2, transport=link
        ) as alice:
            with pytest.raises(RequestTimeout) as caught:
                await alice.fetch_balance()
        assert caught.value.attempts == 3
        assert len(link.published) == 3

    async def test_a_link_that_delivers_nothing_is_reconnected_before_a_retry(
        self,
    ):
        """Deaf since the request: the client reconnects, and the retry is answered."""
        ex = venue("alice")
        link = _DeafTransport(ex, "alice")
        async with client(ex, "alice", timeout=0.2, transport=link) as alice:
            await alice.fetch_balance()
            link.deaf = True
            order = await alice.create_order(BTC, "limit", "buy", "0.01", "64000")
            assert alice.reconnects == 1
            assert len(await alice.fetch_open_orders()) == 1
        assert order["status"] == "open"

    async def test_a_slow_answer_on_a_live_link_does_not_reconnect(self):
        """Something arrived while waiting: the link lives, the retry goes as is."""
        ex = venue("alice")
        ex.lose("paperx/v1/ack/alice", 1)  # the acceptance; its order update comes
        async with client(ex, "alice", timeout=0.2) as alice:
            await alice.create_order(BTC, "limit", "buy", "0.01", "64000")
            assert alice.reconnects == 0

    def test_a_retry_budget_beyond_the_request_memory_is_refused(self):
        """A client whose retries could outlive the exchange's memory is refused."""
        with pytest.raises(ValueError, match="60 s"):
            PaperxClient("a", "k", "s", timeout=30, retries=1)


class TestAccount:
    """Account settings and queries."""

    async def test_leverage_mode_and_margin_shape_the_position(self):
        """Leverage, isolated mode and added margin show in the position."""
        ex = venue("alice", "bob")
        async with client(ex, "alice") as alice, client(ex, "bob") as bob:
            await alice.set_margin_mode("isolated", BTC_CCXT)
            await alice.set_leverage(10, BTC_CCXT)
            await bob.create_order(BTC, "limit", "sell", "0.1", "65000")
            await alice.create_order(BTC, "market", "buy", "0.1")
            added = await alice.add_margin(BTC, "100")
            reduced = await alice.reduce_margin(BTC, "40")
            (position,) = await alice.fetch_positions([BTC_CCXT])
            balance = await alice.fetch_balance()
        assert (added["type"], added["amount"], reduced["amount"]) == (
            "add",
            D(100),
            D(40),
        )
        assert (position["side"], position["contracts"], position["leverage"]) == (
            "long",
            D("0.1"),
            10,
        )
        assert position["marginMode"] == "isolated"
        assert position["collateral"] == D(650) + D(60)  # initial margin + 100 - 40
        assert balance["USDT"]["total"] == balance["total"]["USDT"]

    async def test_a_mode_change_with_a_position_raises_its_family(self):
        """Changing the margin mode with a position open is refused, typed."""
        ex = venue("alice", "bob")
        async with client(ex, "alice") as alice, client(ex, "bob") as bob:
            await bob.create_order(BTC, "limit", "sell", "0.1", "65000")
            await alice.create_order(BTC, "market", "buy", "0.1")
            with pytest.raises(RejectedError) as caught:
                await alice.set_margin_mode("isolated", BTC)
        assert caught.value.name == "MODE_CHANGE_WITH_POSITION"


class TestStreams:
    """Streams yield updates and end with a typed error."""

    async def test_order_position_and_account_streams_follow_a_liquidation(self):
        """A leveraged long's streams show its fill, position and liquidation."""
        ex = venue("alice", "bob", "carol")
        async with (
            client(ex, "alice") as alice,
            client(ex, "bob") as bob,
            client(ex, "carol") as carol,
        ):
            orders = alice.watch_orders(BTC_CCXT)
            positions = alice.watch_positions()
            notices = alice.watch_account()
            await alice.set_margin_mode("isolated", BTC)
            await alice.set_leverage(50, BTC)
            await bob.create_order(BTC, "limit", "sell", "0.5", "65000")
            await alice.create_order(BTC, "limit", "buy", "0.5", "65000")
            await carol.create_order(BTC, "limit", "buy", "0.5", "63750")
            ex.set_index(BTC, "63800")
            first = await anext(orders)
            opened = await anext(positions)
            while not opened["contracts"]:  # the settings published flat updates
                opened = await anext(positions)
            kinds = []
            while "LiquidationNotice" not in kinds:
                kinds.append(type(await anext(notices)).__name__)
        assert (first["side"], first["status"]) == ("buy", "closed")
        assert (opened["side"], opened["contracts"]) == ("long", D("0.5"))
        assert kinds.index("MarginCallNotice") < kinds.index("LiquidationNotice")

    async def test_a_dropped_connection_ends_streams_and_the_client_reconnects(self):
        """A drop ends each stream with ConnectionLost; requests work once back."""
        ex = venue("alice")
        async with client(ex, "alice") as alice:
            stream = alice.watch_orders()
            ex.transports[0].drop()
            with pytest.raises(ConnectionLost):
                await anext(stream)
            order = await alice.create_order(BTC, "limit", "buy", "0.01", "64000")
            assert alice.reconnects == 1
        assert order["status"] == "open"

    async def test_answers_published_while_disconnected_arrive_after_reconnect(self):
        """QoS 1 messages queued during a drop reach the client when it is back."""
        ex = venue("alice", "bob")
        async with client(ex, "alice") as alice, client(ex, "bob") as bob:
            await alice.create_order(BTC, "limit", "sell", "0.01", "65000")
            trades = alice.watch_my_trades()  # open when the link drops
            ex.transports[0].drop()
            await bob.create_order(BTC, "market", "buy", "0.01")  # alice is down
            with pytest.raises(ConnectionLost):
                await anext(trades)
            await alice.fetch_balance()  # once this answers, alice is back
            mine = await alice.fetch_my_trades()
        assert [(t["side"], t["amount"]) for t in mine] == [("sell", D("0.01"))]
        assert alice.reconnects == 1

    async def test_a_closed_client_refuses_requests_and_new_streams(self):
        """After close, requests and new streams raise ClientClosed."""
        ex = venue("alice")
        async with client(ex, "alice") as alice:
            pass
        with pytest.raises(ClientClosed):
            await alice.fetch_balance()
        with pytest.raises(ClientClosed):
            await anext(alice.watch_orders())

    async def test_mark_prices_and_public_trades_stream(self):
        """The mark and public trade streams yield the market's updates."""
        ex = venue("alice", "bob")
        async with client(ex, "alice") as alice, client(ex, "bob") as bob:
            marks = alice.watch_mark_price(BTC_CCXT)
            trades = alice.watch_trades(BTC)
            await anext(_ready(marks, trades, alice))
            ex.set_index(BTC, "65100")
            await bob.create_order(BTC, "limit", "sell", "0.01", "65000")
            await alice.create_order(BTC, "market", "buy", "0.01")
            mark = await anext(marks)
            trade = await anext(trades)
        assert mark["markPrice"] == D(65100)
        assert (trade["side"], trade["price"], trade["order"]) == (
            "buy",
            D(65000),
            None,
        )


async def _ready(*args):
    """Start market-data streams (their first read subscribes), without waiting."""
    *streams, sdk = args
    for stream in streams:
        await stream._start()
        stream._start = None
    del sdk
    yield None


class TestOrderBook:
    """The local order book kept from snapshots and deltas."""

    async def test_the_local_book_follows_deltas_and_resyncs_after_a_gap(self):
        """A lost delta is detected by book_seq and the book resyncs to the venue's."""
        ex = venue("alice")
        async with client(ex, "alice", unified_symbols=False) as alice:
            books = alice.watch_order_book(BTC)
            await alice.create_order(BTC, "limit", "buy", "0.01", "64000")
            first = await anext(books)
            ex.lose(BOOK, 1)
            await alice.create_order(BTC, "limit", "buy", "0.02", "63900")  # lost
            await alice.create_order(BTC, "limit", "sell", "0.03", "66000")  # gap
            fetched = await alice.fetch_order_book(BTC)
            book = await anext(books)
            while book["nonce"] < fetched["nonce"]:
                book = await anext(books)
        assert first["bids"] == [[D(64000), D("0.01")]]
        assert alice.books[BTC].gaps == 1
        assert (book["bids"], book["asks"]) == (fetched["bids"], fetched["asks"])
        assert book["bids"] == [[D(64000), D("0.01")], [D(63900), D("0.02")]]

    async def test_a_periodic_snapshot_is_applied_when_newer(self):
        """A snapshot on the book topic moves an out-of-sync book back in sync."""
        ex = venue("alice")
        async with client(ex, "alice") as alice:
            books = alice.watch_order_book(BTC)
            await alice.create_order(BTC, "limit", "sell", "0.01", "66000")
            await anext(books)
            ex.publish_snapshot(BTC)
            await alice.fetch_balance()  # a round trip: the snapshot has arrived
        assert alice.books[BTC].synced


class TestManyClients:
    """Several clients in one event loop."""

    async def test_several_clients_trade_concurrently_in_one_loop(self):
        """Ten clients trading at once all fill, and their positions net to zero."""
        names = [f"bot{i}" for i in range(10)]
        ex = venue(*names)
        async with client(ex, "bot0") as maker:
            await maker.create_order(BTC, "limit", "sell", "1", "65000")
            await maker.create_order(BTC, "limit", "buy", "1", "64000")

            async def trade(name: str, side: str):
                async with client(ex, name) as bot:
                    order = await bot.create_order(BTC, "market", side, "0.01")
                    return order, await bot.fetch_positions()

            results = await asyncio.gather(
                *(trade(n, "buy" if i % 2 else "sell") for i, n in enumerate(names[1:]))
            )
            (position,) = await maker.fetch_positions()
        assert all(order["status"] == "closed" for order, _ in results)
        signed = sum(
            p["contracts"] if p["side"] == "long" else -p["contracts"]
            for _, ps in results
            for p in ps
        )
        maker_signed = position["contracts"] * (1 if position["side"] == "long" else -1)
        assert signed + maker_signed == 0

    async def test_msgpack_clients_trade_on_a_msgpack_venue(self):
        """The msgpack wire format works end to end."""
        ex = venue("alice", codec=Codec("msgpack"))
        async with client(ex, "alice", fmt="msgpack") as alice:
            order = await alice.create_order(BTC, "limit", "buy", "0.01", "64000")
        assert order["status"] == "open"


def test_the_loopback_refuses_a_closed_transport():
    """A closed loopback transport cannot connect again."""
    ex = venue()
    link = ex.transport("alice")
    asyncio.run(link.close())
    with pytest.raises(TransportError):
        asyncio.run(link.connect())


def test_liquidation_notice_is_a_wire_answer():
    """The account stream yields the gateway's own answer types."""
    assert LiquidationNotice.__struct_config__.tag == "liquidation"
