"""`PaperxClient`: an async, ccxt-style client of one paperx account.

Lifetime is ``async with``: entering connects and subscribes to the
account's ``ack`` and ``acct`` topics; a receive task then routes every
message (answers to waiting requests, order updates and fills to the order
view and the streams, market data to local books and streams) and, when the
link drops, reconnects with jittered exponential backoff and resubscribes.

Requests. Each gets a request id (and each new order a client order id),
is signed (`exchange.gateway.auth.signed_payload`) and published at QoS 1;
its answer is awaited for ``timeout`` seconds, then it is sent again, up to
``retries`` times, with the same request id and client order id and a fresh
timestamp: the exchange recalls a request by its id before it checks the
time, so a retry is answered with the original outcome and never runs
twice. The whole retry budget stays inside the exchange's memory of
requests (`exchange.gateway.wire.MAX_RECV_WINDOW_MS`). Rejects raise the
`RejectedError` family of their code; no answer raises `RequestTimeout`.

A link that takes requests but delivers nothing is reconnected: when a
request got no answer for ``timeout`` seconds and nothing at all arrived
meanwhile, the client connects again before the retry. A broker that
mis-tracks a session across a client id take-over (amqtt, under a venue's
forced disconnects) leaves such a link, alive to the socket and to pings.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from types import TracebackType
from typing import Any, Literal, Self

import msgspec

from clients.sdk._book import LocalBook
from clients.sdk._errors import (
    ClientClosed,
    ClientError,
    ConnectionLost,
    NetworkError,
    RequestTimeout,
    rejected_error,
)
from clients.sdk._mqtt import MqttTransport
from clients.sdk._orders import OrderCache
from clients.sdk._params import Number, order_fields
from clients.sdk._shapes import (
    Balances,
    MarkPrice,
    Order,
    OrderBook,
    Position,
    Trade,
    as_decimal,
    balance_shape,
    ccxt_symbol,
    fill_shape,
    info,
    mark_shape,
    paperx_symbol,
    position_info_shape,
    position_update_shape,
    public_trade_shape,
)
from clients.sdk._streams import Channels, Stream
from clients.sdk._transport import Message, Transport, TransportError
from exchange.gateway import answers as out
from exchange.gateway import wire
from exchange.gateway.auth import signed_payload

__all__ = ["PaperxClient"]

_RESYNC_TRIES = 5


class PaperxClient:
    """An async client of one account: ccxt's method names, paperx's wire."""

    def __init__(
        self,
        account: str,
        api_key: str,
        secret: str,
        *,
        broker: str = "mqtt://127.0.0.1:1883",
        transport: Transport | None = None,
        fmt: Literal["json", "msgpack"] = "json",
        timeout: float = 5.0,
        retries: int = 2,
        recv_window_ms: int = wire.DEFAULT_RECV_WINDOW_MS,
        unified_symbols: bool = True,
        reconnect_delay: float = 0.1,
        max_reconnect_delay: float = 10.0,
        stream_limit: int = 10_000,
        mqtt_password: str | None = None,
        clock_ms: Callable[[], int] | None = None,
        client_id: str | None = None,
    ) -> None:
        """Set up a client; nothing connects until ``async with``.

        Args:
            account: the account (the MQTT username and topic key).
            api_key: the account's API key (kept for adapters that need it;
                on MQTT the topic names the account).
            secret: the API secret that signs every request; never logged.
            broker: ``mqtt://[user[:password]@]host[:port]`` (ignored when a
                ``transport`` is given).
            transport: another transport, e.g. `LoopbackExchange.transport`.
            fmt: the wire format, "json" or "msgpack" (the server's).
            timeout: seconds to wait for an answer before sending again (and
                for the broker's answer to a connect, subscribe or publish).
            retries: how many times a request is sent again.
            recv_window_ms: the exchange accepts a request this long after
                its timestamp.
            unified_symbols: results name markets as ccxt does
                (``BTC/USDT:USDT``); False: as paperx does (``BTC-PERP``).
            reconnect_delay: the first reconnect backoff, seconds (doubling,
                jittered +-50%, up to ``max_reconnect_delay``).
            max_reconnect_delay: the longest reconnect backoff, seconds.
            stream_limit: items a stream holds before it overflows.
            mqtt_password: the account's broker password.
            clock_ms: the bot's clock in ms since the epoch (default: time).
            client_id: the MQTT client id (default: a random one per client
                object), kept across reconnects so the broker's session, and
                what it queued meanwhile, is resumed. Name it to let a
                stressed venue disconnect this client on purpose.

        Raises:
            ValueError: the retry budget exceeds the exchange's request memory.
        """
        if timeout * (retries + 1) * 1000 >= wire.MAX_RECV_WINDOW_MS:
            msg = "timeout * (retries + 1) must stay under the 60 s request memory"
            raise ValueError(msg)
        self.account = account
        self.api_key = api_key
        self._secret = secret
        self._transport: Transport = transport or MqttTransport(
            broker,
            username=account,
            password=mqtt_password,
            client_id=client_id,
            timeout=timeout,
        )
        self._codec = wire.Codec(fmt)
        self.timeout = timeout
        self.retries = retries
        self.recv_window_ms = recv_window_ms
        self._symbol = ccxt_symbol if unified_symbols else _same
        self.reconnect_delay = reconnect_delay
        self.max_reconnect_delay = max_reconnect_delay
        self.stream_limit = stream_limit
        self._clock_ms = clock_ms or _wall_clock_ms
        self._cmd_topic = f"paperx/v1/cmd/{account}"
        self._topics: dict[str, int] = {
            wire.topic("ack", account): 1,
            wire.topic("acct", account): 1,
        }
        self._prefix = secrets.token_hex(4)  # ids never repeat a former run's
        self._counter = 0
        self._pending: dict[str, asyncio.Future[out.Answer]] = {}
        self._connected = asyncio.Event()
        self._closed = False
        self._receiver: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._jitter = random.Random()  # noqa: S311 -- backoff jitter, not a secret
        self.channels = Channels()
        self.orders = OrderCache(self._symbol)
        self.books: dict[str, LocalBook] = {}
        self.marks: dict[str, out.MarkUpdate] = {}
        self.reconnects = 0
        self._generation = 0  # counts connections, to tell a stale failure
        self._last_received = 0.0  # time.monotonic() of the last message
        self.undecodable = 0

    # ------------------------------------------------------------ lifetime

    async def __aenter__(self) -> Self:
        """Connect, subscribe and start receiving.

        Raises:
            NetworkError: the first connection failed.
        """
        try:
            await self._transport.connect()
            await self._subscribe_all()
        except TransportError as exc:
            msg = f"cannot connect: {exc}"
            raise NetworkError(msg) from exc
        self._connected.set()
        self._start_receiving()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the client."""
        await self.close()

    async def close(self) -> None:
        """Stop receiving, disconnect, and end every stream and waiting request."""
        if self._closed:
            return
        self._closed = True
        self._connected.clear()
        for task in [self._receiver, *self._tasks]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task  # we cancelled it ourselves
        await self._transport.close()
        self.channels.end_all(ClientClosed("the client was closed"))
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ClientClosed("the client was closed"))

    async def _subscribe_all(self) -> None:
        """Subscribe to every topic in use (after each connect)."""
        for name, qos in self._topics.items():
            await self._transport.subscribe(name, qos)

    def _start_receiving(self, *, relink: bool = False) -> None:
        """Start the receive task (``relink``: it reconnects first)."""
        self._receiver = asyncio.create_task(
            self._receive(relink=relink), name=f"paperx.sdk.{self.account}.receive"
        )

    async def _receive(self, *, relink: bool = False) -> None:
        """Route messages; on a drop (or to relink), end the streams and reconnect."""
        while True:
            if not relink:
                with contextlib.suppress(TransportError):
                    async for message in self._transport.messages():
                        self._last_received = time.monotonic()
                        self._route(message)
            relink = False
            self._connected.clear()
            self.channels.end_all(ConnectionLost("the connection dropped"))
            await self._reconnect()

    def _relink_if_silent(self, since: float, generation: int) -> None:
        """Reconnect a link that delivered nothing since ``since`` (a dead one).

        Only the link ``generation`` names, and only while it counts as up:
        a reconnect already under way, or done meanwhile, is left alone.
        """
        if (
            self._last_received >= since
            or generation != self._generation
            or not self._connected.is_set()
            or self._receiver is None
        ):
            return
        self._connected.clear()
        self._receiver.cancel()  # in the transport's iterator: nothing half-routed
        self._start_receiving(relink=True)

    async def _reconnect(self) -> None:
        """Connect again with jittered exponential backoff, then resubscribe."""
        delay = self.reconnect_delay
        while True:
            await asyncio.sleep(delay * self._jitter.uniform(0.5, 1.5))
            delay = min(delay * 2, self.max_reconnect_delay)
            try:
                await self._transport.connect()
                await self._subscribe_all()
            except TransportError:
                continue
            self.reconnects += 1
            self._generation += 1
            self._connected.set()
            for book in self.books.values():  # deltas may have been lost meanwhile
                self._spawn(self._resync(book), f"resync.{book.symbol}")
            return

    def _spawn(self, work: Any, name: str) -> None:  # noqa: ANN401 -- a coroutine
        """Run background work owned (and cancelled on close) by the client."""
        task = asyncio.create_task(work, name=f"paperx.sdk.{self.account}.{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------ routing

    def _route(self, message: Message) -> None:  # noqa: C901, PLR0912 -- one branch per kind
        """Deliver one received message to whoever waits for it."""
        try:
            answer = self._codec.answer(message.payload)
        except msgspec.DecodeError:
            self.undecodable += 1  # a newer server's message: skip it
            return
        match answer:
            case out.BookSnapshot() if answer.id:
                self._answered(answer.id, answer)
            case (
                out.Accepted()
                | out.Rejected()
                | out.BalanceInfo()
                | out.PositionsInfo()
                | out.OpenOrdersInfo()
            ):
                self._answered(answer.id, answer)
            case out.OrderUpdate():
                self.orders.on_update(answer)
                self._push(("orders", answer.symbol), self.orders.shape(answer))
            case out.TradeFill():
                if self.orders.on_fill(answer):  # a redelivered fill is not news
                    shape = self._symbol(answer.symbol)
                    self._push(("my_trades", answer.symbol), fill_shape(answer, shape))
            case out.PositionUpdate():
                position = position_update_shape(answer, self._symbol(answer.symbol))
                self._push(("positions", answer.symbol), position)
            case out.BookUpdate():
                book = self.books.get(answer.symbol)
                if book is not None:
                    self._book_delta(book, answer)
            case out.BookSnapshot():
                book = self.books.get(answer.symbol)
                if book is not None and book.apply_snapshot(answer):
                    self._push_book(book)
            case out.PublicTrade():
                trade = public_trade_shape(answer, self._symbol(answer.symbol))
                self._push(("trades", answer.symbol), trade)
            case out.MarkUpdate():
                self.marks[answer.symbol] = answer
                mark = mark_shape(answer, self._symbol(answer.symbol))
                self._push(("mark", answer.symbol), mark)
            case _:
                self.channels.push("account", answer)

    def _answered(self, request_id: str, answer: out.Answer) -> None:
        """Resolve the request waiting for ``answer`` (a late duplicate: nothing)."""
        future = self._pending.get(request_id)
        if future is not None and not future.done():
            future.set_result(answer)

    def _push(self, channel: tuple[str, str], item: object) -> None:
        """Give an item to the streams of a channel and of its symbol."""
        kind, symbol = channel
        self.channels.push(kind, item)
        self.channels.push(f"{kind}:{symbol}", item)

    def _book_delta(self, book: LocalBook, delta: out.BookUpdate) -> None:
        """Apply a delta; a gap starts a resync from a snapshot."""
        was_synced = book.synced
        if book.apply_delta(delta):
            self._push_book(book)
        elif was_synced and not book.synced:
            self._spawn(self._resync(book), f"resync.{book.symbol}")

    def _push_book(self, book: LocalBook) -> None:
        """Give the book's new state to its streams (they keep only the newest)."""
        bids, asks = book.top()
        shaped = OrderBook(
            symbol=self._symbol(book.symbol),
            bids=bids,
            asks=asks,
            nonce=book.book_seq,
            timestamp=None,
            datetime=None,
        )
        self.channels.push(f"book:{book.symbol}", shaped)

    async def _resync(self, book: LocalBook) -> None:
        """Fetch snapshots until the book is in sync again."""
        for attempt in range(_RESYNC_TRIES):
            if book.synced:
                return
            try:
                snapshot = await self._book_snapshot(book.symbol, 1000)
            except ClientError:
                await asyncio.sleep(self.reconnect_delay * 2**attempt)
                continue
            if book.apply_snapshot(snapshot):
                self._push_book(book)

    # ------------------------------------------------------------ requests

    def _next_id(self) -> str:
        """Return a request id unique to this client object."""
        self._counter += 1
        return f"{self._prefix}-{self._counter}"

    async def _send(self, items: list[wire.BatchItem | wire.Query]) -> list[out.Answer]:
        """Send requests (several as one batch) and return their answers, in order.

        Raises:
            RequestTimeout: some request got no answer after every retry.
            ClientClosed: the client is closed.
        """
        if self._closed:
            msg = "the client was closed"
            raise ClientClosed(msg)
        loop = asyncio.get_running_loop()
        futures = {item.id: loop.create_future() for item in items}
        self._pending.update(futures)
        waiting = items
        try:
            for _ in range(self.retries + 1):
                sent_at, generation = time.monotonic(), self._generation
                if await self._publish(waiting):
                    await asyncio.wait(
                        [futures[item.id] for item in waiting], timeout=self.timeout
                    )
                waiting = [item for item in waiting if not futures[item.id].done()]
                if waiting:
                    self._relink_if_silent(sent_at, generation)
                if not waiting:
                    return [futures[item.id].result() for item in items]
            raise RequestTimeout(waiting[0].id, self.retries + 1)
        finally:
            for request_id in futures:
                self._pending.pop(request_id, None)

    async def _publish(self, items: list[wire.BatchItem | wire.Query]) -> bool:
        """Sign and publish requests with a fresh timestamp; False if not sent."""
        try:
            await asyncio.wait_for(self._connected.wait(), self.timeout)
        except TimeoutError:
            return False
        now = self._clock_ms()
        fresh = [
            msgspec.structs.replace(i, ts_ms=now, recv_window_ms=self.recv_window_ms)
            for i in items
        ]
        batch = wire.Batch(cmds=fresh) if len(fresh) > 1 else None  # type: ignore[arg-type]
        request = fresh[0] if batch is None else batch
        payload = signed_payload(self._codec, self._secret, request)
        generation = self._generation
        try:
            await self._transport.publish(self._cmd_topic, payload, 1)
        except TransportError:
            # The link is down though the receive task has not noticed yet:
            # wait for the reconnect it is about to make, unless it already has.
            if generation == self._generation:
                self._connected.clear()
            return False
        return True

    async def _call(self, item: wire.BatchItem | wire.Query) -> out.Answer:
        """Send one request; return its answer, raising its reject."""
        (answer,) = await self._send([item])
        if isinstance(answer, out.Rejected):
            raise rejected_error(
                answer.code,
                answer.name,
                answer.message,
                request_id=answer.id,
                seq=answer.seq,
            )
        return answer

    def _stamp(self) -> dict[str, Any]:
        """Return the common fields of a request (the timestamp is set on send)."""
        return {"id": self._next_id(), "ts_ms": 0}

    # ------------------------------------------------------------ orders

    def _new_order(
        self,
        symbol: str,
        type_: str,
        side: str,
        amount: Number,
        price: Number | None,
        params: Mapping[str, Any] | None,
    ) -> wire.NewOrder:
        """Build a new-order request; a client order id is made if none is given."""
        params = params or {}
        fields = order_fields(symbol, type_, side, amount, price, params)
        cid = str(params.get("clientOrderId") or f"x{self._prefix}{self._counter + 1}")
        order = wire.NewOrder(**self._stamp(), cid=cid, **fields)
        self.orders.intend(order)
        return order

    async def _order_result(
        self, answer: out.Answer, request: wire.NewOrder | None = None
    ) -> Order:
        """Return the order an accepted command acted on, as of its record."""
        if not isinstance(answer, out.Accepted | out.Rejected):
            msg = f"unexpected answer {type(answer).__name__}"
            raise NetworkError(msg)
        update = None
        if isinstance(answer, out.Accepted) and answer.order_id:
            update = await self.orders.wait(answer.order_id, answer.seq, self.timeout)
        if update is not None:
            return self.orders.shape(update)
        if request is None:
            msg = f"no update of order {answer.order_id} after request {answer.id}"
            raise NetworkError(msg)
        return self.orders.shape_unseen(request, answer)

    async def create_order(
        self,
        symbol: str,
        type: str,  # noqa: A002 -- ccxt's name
        side: str,
        amount: Number,
        price: Number | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> Order:
        """Place an order; return it as of its record (fills included).

        ``params``: see `clients.sdk._params` (reduceOnly, postOnly,
        timeInForce, triggerPrice, takeProfitPrice, triggerBy, clientOrderId,
        selfTradePrevention).

        Raises:
            RejectedError: its family, e.g. InvalidOrder, InsufficientFunds.
            RequestTimeout: no answer after every retry (the client order id
                makes a later retry with it safe).
        """
        request = self._new_order(symbol, type, side, amount, price, params)
        answer = await self._call(request)
        return await self._order_result(answer, request)

    async def create_orders(self, orders: Iterable[Mapping[str, Any]]) -> list[Order]:
        """Place several orders in one signed batch, each answered on its own.

        Each item has create_order's keys (``symbol``, ``type``, ``side``,
        ``amount``, ``price``, ``params``). A rejected one is returned with
        status "rejected" and its reject in ``info`` (ccxt's batch shape).
        """
        requests = [
            self._new_order(
                o["symbol"],
                o["type"],
                o["side"],
                o["amount"],
                o.get("price"),
                o.get("params"),
            )
            for o in orders
        ]
        answers = await self._send(list(requests))
        return [
            await self._order_result(a, r)
            for r, a in zip(requests, answers, strict=True)
        ]

    async def cancel_order(
        self,
        id: str | None,  # noqa: A002 -- ccxt's name
        symbol: str | None = None,  # noqa: ARG002 -- ids are exchange-wide
        params: Mapping[str, Any] | None = None,
    ) -> Order:
        """Cancel an open order by id, or by ``params["clientOrderId"]``.

        Raises:
            OrderNotFound: no such open order.
        """
        cid = str((params or {}).get("clientOrderId", ""))
        request = wire.CancelOrder(
            **self._stamp(), order_id=int(id) if id else 0, cid=cid
        )
        return await self._order_result(await self._call(request))

    async def edit_order(
        self,
        id: str,  # noqa: A002 -- ccxt's name
        symbol: str | None = None,  # noqa: ARG002 -- ids are exchange-wide
        type: str | None = None,  # noqa: A002, ARG002 -- an order keeps its type
        side: str | None = None,  # noqa: ARG002 -- an order keeps its side
        amount: Number | None = None,
        price: Number | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> Order:
        """Amend a resting order: ``amount`` is its new *open* quantity.

        Lowering the amount at the same price keeps its time priority.
        """
        request = wire.AmendOrder(
            **self._stamp(),
            order_id=int(id) if id else 0,
            cid=str((params or {}).get("clientOrderId", "")),
            qty=None if amount is None else as_decimal(amount, "amount"),
            price=None if price is None else as_decimal(price, "price"),
        )
        return await self._order_result(await self._call(request))

    async def cancel_all_orders(self, symbol: str | None = None) -> list[Order]:
        """Cancel every open order (in ``symbol`` if given); return those canceled."""
        name = paperx_symbol(symbol) if symbol else ""
        answer = await self._call(wire.CancelAll(**self._stamp(), symbol=name))
        assert isinstance(answer, out.Accepted)  # a reject raised
        # The record's order updates follow its ack on the same topic; the
        # answer to a later query comes after them all.
        await self._call(wire.GetOpenOrders(**self._stamp(), symbol=name))
        return [self.orders.shape(u) for u in self.orders.touched_at(answer.seq)]

    # ------------------------------------------------------------ account

    async def set_leverage(
        self, leverage: int, symbol: str, params: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Set a symbol's leverage (1..its tier's maximum)."""
        del params
        name = paperx_symbol(symbol)
        request = wire.SetLeverage(**self._stamp(), symbol=name, leverage=leverage)
        answer = await self._call(request)
        return {
            "symbol": self._symbol(name),
            "leverage": leverage,
            "info": info(answer),
        }

    async def set_margin_mode(
        self,
        marginMode: str,  # noqa: N803 -- ccxt's name
        symbol: str,
        params: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Set a symbol's margin mode, "isolated" or "cross"."""
        del params
        mode = marginMode.lower()
        if mode not in ("isolated", "cross"):
            msg = f"marginMode must be isolated or cross, not {marginMode!r}"
            raise ValueError(msg)
        name = paperx_symbol(symbol)
        request = wire.SetMarginMode(**self._stamp(), symbol=name, mode=mode)  # type: ignore[arg-type]
        answer = await self._call(request)
        return {"symbol": self._symbol(name), "marginMode": mode, "info": info(answer)}

    async def add_margin(self, symbol: str, amount: Number) -> dict[str, Any]:
        """Move ``amount`` USDT into an isolated position."""
        return await self._adjust_margin(symbol, as_decimal(amount, "amount"), "add")

    async def reduce_margin(self, symbol: str, amount: Number) -> dict[str, Any]:
        """Move ``amount`` USDT out of an isolated position."""
        return await self._adjust_margin(
            symbol, -as_decimal(amount, "amount"), "reduce"
        )

    async def _adjust_margin(
        self,
        symbol: str,
        amount: Decimal,
        kind: str,
    ) -> dict[str, Any]:
        """Send a margin adjustment; return ccxt's margin modification shape."""
        name = paperx_symbol(symbol)
        request = wire.AdjustMargin(**self._stamp(), symbol=name, amount=amount)
        answer = await self._call(request)
        return {
            "symbol": self._symbol(name),
            "type": kind,
            "amount": abs(amount),
            "code": "USDT",
            "status": "ok",
            "info": info(answer),
        }

    async def fetch_balance(self) -> Balances:
        """Return the account's USDT balance (wallet, free, used, total)."""
        answer = await self._call(wire.GetBalance(**self._stamp()))
        assert isinstance(answer, out.BalanceInfo)  # the answer to GetBalance
        return balance_shape(answer)

    async def fetch_positions(
        self, symbols: Iterable[str] | None = None
    ) -> list[Position]:
        """Return the open positions (in ``symbols`` if given)."""
        answer = await self._call(wire.GetPositions(**self._stamp()))
        assert isinstance(answer, out.PositionsInfo)  # the answer to GetPositions
        wanted = None if symbols is None else {paperx_symbol(s) for s in symbols}
        return [
            position_info_shape(p, self._symbol(p.symbol))
            for p in answer.positions
            if wanted is None or p.symbol in wanted
        ]

    async def fetch_open_orders(self, symbol: str | None = None) -> list[Order]:
        """Return the open orders (in ``symbol`` if given), oldest first."""
        name = paperx_symbol(symbol) if symbol else ""
        answer = await self._call(wire.GetOpenOrders(**self._stamp(), symbol=name))
        assert isinstance(answer, out.OpenOrdersInfo)  # the answer to GetOpenOrders
        return [self.orders.shape_open(row) for row in answer.orders]

    async def fetch_my_trades(
        self, symbol: str | None = None, limit: int | None = None
    ) -> list[Trade]:
        """Return the account's fills this client has seen, oldest first."""
        trades = list(self.orders.my_trades(paperx_symbol(symbol) if symbol else None))
        return trades[-limit:] if limit else trades

    async def _book_snapshot(self, symbol: str, depth: int) -> out.BookSnapshot:
        """Return a book snapshot from the exchange."""
        answer = await self._call(
            wire.GetBook(**self._stamp(), symbol=symbol, depth=depth)
        )
        assert isinstance(answer, out.BookSnapshot)  # the answer to GetBook
        return answer

    async def fetch_order_book(
        self, symbol: str, limit: int | None = None
    ) -> OrderBook:
        """Return an L2 snapshot of ``symbol``, ``limit`` levels a side (100)."""
        name = paperx_symbol(symbol)
        snapshot = await self._book_snapshot(name, limit or 100)
        return OrderBook(
            symbol=self._symbol(name),
            bids=[[p, q] for p, q in snapshot.bids],
            asks=[[p, q] for p, q in snapshot.asks],
            nonce=snapshot.book_seq,
            timestamp=None,
            datetime=None,
        )

    # ------------------------------------------------------------ streams

    def _stream(
        self,
        channel: str,
        *,
        conflate: bool = False,
        start: Any = None,  # noqa: ANN401
    ) -> Stream[Any]:
        """Open a stream on a channel, failing at once if the client is closed."""
        stream: Stream[Any] = Stream(
            self.channels,
            channel,
            limit=self.stream_limit,
            conflate=conflate,
            start=start,
        )
        if self._closed:
            stream.end(ClientClosed("the client was closed"))
        return stream

    def _channel(self, kind: str, symbol: str | None) -> str:
        """Return a stream channel, narrowed to a symbol if one is given."""
        return f"{kind}:{paperx_symbol(symbol)}" if symbol else kind

    def watch_orders(self, symbol: str | None = None) -> Stream[Order]:
        """Stream the account's order updates (as ccxt orders)."""
        return self._stream(self._channel("orders", symbol))

    def watch_my_trades(self, symbol: str | None = None) -> Stream[Trade]:
        """Stream the account's fills (as ccxt trades)."""
        return self._stream(self._channel("my_trades", symbol))

    def watch_positions(self, symbol: str | None = None) -> Stream[Position]:
        """Stream the account's position changes."""
        return self._stream(self._channel("positions", symbol))

    def watch_account(self) -> Stream[out.Answer]:
        """Stream account notices: balance, margin call, liquidation, ADL, funding."""
        return self._stream("account")

    def watch_trades(self, symbol: str) -> Stream[Trade]:
        """Stream the public trades of ``symbol``."""
        name = paperx_symbol(symbol)
        return self._stream(
            f"trades:{name}", start=lambda: self._watch_topic("trades", name)
        )

    def watch_mark_price(self, symbol: str) -> Stream[MarkPrice]:
        """Stream ``symbol``'s mark price."""
        name = paperx_symbol(symbol)
        return self._stream(
            f"mark:{name}", start=lambda: self._watch_topic("mark", name)
        )

    def watch_mark_prices(self, symbols: Iterable[str]) -> Stream[MarkPrice]:
        """Stream the mark prices of ``symbols``, one stream, in arrival order.

        It carries every mark this client receives, so also those of a
        symbol another of its streams watches: read each item's ``symbol``.
        """
        names = [paperx_symbol(s) for s in symbols]

        async def start() -> None:
            for name in names:
                await self._watch_topic("mark", name)

        return self._stream("mark", start=start)

    def watch_order_book(self, symbol: str) -> Stream[OrderBook]:
        """Stream ``symbol``'s local book each time it changes while in sync.

        The book starts from a snapshot and follows the deltas; a gap in
        their ``book_seq`` resyncs it from a new snapshot. The stream keeps
        only the newest book: a slow reader skips states, never falls behind.
        """
        name = paperx_symbol(symbol)
        return self._stream(
            f"book:{name}", conflate=True, start=lambda: self._open_book(name)
        )

    async def _watch_topic(
        self, kind: Literal["trades", "book", "mark"], symbol: str
    ) -> None:
        """Subscribe to a market data topic (kept across reconnects)."""
        name = wire.topic(kind, symbol)
        if name not in self._topics:
            self._topics[name] = 0
            with contextlib.suppress(TransportError):  # resubscribed on reconnect
                await self._transport.subscribe(name, 0)

    async def _open_book(self, symbol: str) -> None:
        """Start following a book: subscribe, then sync from a snapshot."""
        book = self.books.setdefault(symbol, LocalBook(symbol))
        await self._watch_topic("book", symbol)
        if not book.synced:
            await self._resync(book)


def _same(symbol: str) -> str:
    """Return the symbol unchanged (paperx names in results)."""
    return symbol


def _wall_clock_ms() -> int:
    """Return the bot's clock: ms since the Unix epoch."""
    return time.time_ns() // 1_000_000
