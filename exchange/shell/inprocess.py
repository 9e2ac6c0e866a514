"""`Exchange`: the synchronous in-process facade for tests, backtests and notebooks.

It owns an `ExchangeCore` and a journal, stamps each command with the next
``seq`` and a timestamp (the facade is the shell: it may read a clock, the core
never does), journals the record with its events, and returns the outcome in
decimals. A reject raises `Rejected` (the subclass of its code's family, e.g.
`InsufficientFunds`) with its stable code, after it has been journaled like
any outcome; it is the only exception bad input ever raises. Values in and
out are `Decimal` (decimal strings and ints are accepted in).

A call's outcome is found by its kind, never by position: a record that
crosses a funding time starts with the funding it settled, and the
liquidations a record causes follow it as records of their own.

Durability: every call appends its record before it returns; under ``fsync``
"always" it is on disk by then, under "batch" at the next group commit (a few
ms; `close` and `sync` force it), under "off" whenever the OS writes it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, Self, TypeVar, cast

import msgspec

from exchange.codes import Refusal, RejectCode
from exchange.core import ExchangeCore
from exchange.errors import InvariantViolation, JournalNotEmpty, Precision, Rejected
from exchange.journal import Journal, MemoryJournal, open_journal
from exchange.journal.payload import JOURNAL_SCHEMA, exchange_header, journal_payload
from exchange.margin.ledger import Ledger
from exchange.markets import DEFAULT_MARKETS, Market
from exchange.messages import (
    AdjustMargin,
    AdvanceTime,
    AllCanceled,
    AmendOrder,
    CancelAll,
    CancelOrder,
    Checkpoint,
    CheckpointTaken,
    Command,
    CommandRejected,
    Deposit,
    Event,
    OrderAccepted,
    OrderAmended,
    OrderCanceled,
    OrderType,
    PlaceOrder,
    Record,
    SelfTradePrevention,
    SetIndexPrice,
    SetLeverage,
    SetMarginMode,
    SetRiskLimits,
    Side,
    TimeInForce,
    TriggerSource,
    Withdraw,
)
from exchange.shell.account_views import balance_view, position_views
from exchange.shell.config import load_markets
from exchange.shell.order_views import OrderResult, OrderTracker
from exchange.units import checked_e8, from_e8, to_ppm

__all__ = ["JOURNAL_SCHEMA", "Exchange"]

_SIDES = ("buy", "sell")
_TYPES = (
    "limit",
    "market",
    "stop_market",
    "stop_limit",
    "take_profit_market",
    "take_profit_limit",
)
_TIFS = ("GTC", "IOC", "FOK")
_STPS = ("none", "expire_taker", "expire_maker", "expire_both")

Number = Decimal | str | int
_Outcome = TypeVar("_Outcome", bound=Event)


class Exchange:
    """A complete exchange in this process: call a method, get its outcome."""

    def __init__(
        self,
        markets: Iterable[Market] | str | Path | None = None,
        *,
        journal: Journal | str | Path | None = None,
        fsync: Literal["always", "batch", "off"] = "batch",
        clock: Callable[[], int] = time.time_ns,
        margin: bool = False,
    ) -> None:
        """Create an exchange.

        Args:
            markets: the markets to trade, or a TOML file of them (see
                `exchange.shell.config`); default BTC-PERP and ETH-PERP.
            journal: a `Journal`, a directory for a file journal, a
                ``nats://host:port/STREAM`` URL for a JetStream journal, or
                None for an in-memory journal.
            fsync: durability policy of a journal opened from a path or URL.
            clock: nanosecond wall clock used to stamp records.
            margin: run the margin ledger: accounts deposit collateral, orders
                are risk-checked and fills become positions (see `ExchangeCore`).

        Raises:
            JournalNotEmpty: the journal already holds records (replay it).
        """
        if isinstance(markets, str | Path):
            markets = load_markets(markets)
        self.markets = {m.symbol: m for m in (markets or DEFAULT_MARKETS)}
        self.core = ExchangeCore(self.markets.values(), margin=margin)
        header = exchange_header(self.markets.values(), margin=margin)
        opened_here = journal is None or isinstance(journal, str | Path)
        if journal is None:
            journal = MemoryJournal(header)
        elif isinstance(journal, str | Path):
            journal = open_journal(journal, header=header, fsync=fsync)
        self.journal: Journal = journal
        if self.journal.last_seq:
            if opened_here:  # the caller never gets to close it
                self.journal.close()
            msg = "the journal already holds records: open it with replay, not here"
            raise JournalNotEmpty(msg)
        self._clock = clock
        self._last_ts = 0
        self._orders = OrderTracker(self.markets)  # what results report
        self.system_events: list[Event] = []  # of the last call's liquidations

    # ------------------------------------------------------------ raw access

    def submit(self, command: Command) -> tuple[int, list[Event]]:
        """Sequence, apply and journal one command; return its seq and events.

        System commands the record caused (liquidations) are applied and
        journaled right after it, before this returns; their events are in
        the journal (and in `system_events` until the next call).
        """
        self._orders.start_call()
        seq, events = self._apply(command)
        self.system_events = []
        for system_command in self.core.system_commands():
            self.system_events += self._apply(system_command)[1]
        return seq, events

    def _apply(self, command: Command) -> tuple[int, list[Event]]:
        """Stamp, apply and journal one record."""
        seq = self.core.last_seq + 1
        self._last_ts = max(self._last_ts, self._clock())
        record = Record(seq, self._last_ts, command)
        events = self.core.handle(record)
        self.journal.append(seq, journal_payload(record, events))
        self.journal.maybe_sync()
        self._orders.follow(events)
        return seq, events

    def state_hash(self) -> str:
        """Return the canonical sha256 of the whole exchange state."""
        return self.core.state_hash()

    def sync(self) -> None:
        """Make every record so far durable now."""
        self.journal.sync()

    def checkpoint(self) -> str:
        """Journal the current state hash (a `Checkpoint` record) and return it."""
        seq, events = self.submit(Checkpoint())
        return _outcome(seq, events, CheckpointTaken).state_hash

    def close(self) -> None:
        """Journal a checkpoint, then sync and close the journal."""
        self.checkpoint()
        self.journal.close()

    def __enter__(self) -> Self:
        """Use the exchange as a context manager that closes its journal."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the journal."""
        self.close()

    # ------------------------------------------------------------ orders

    def place_order(
        self,
        account: str,
        symbol: str,
        side: str,
        type: str,  # noqa: A002 -- the exchange's own name for it (ccxt too)
        qty: Number,
        price: Number | None = None,
        *,
        tif: str = "GTC",
        post_only: bool = False,
        reduce_only: bool = False,
        trigger_price: Number | None = None,
        stp: str | None = None,
        client_order_id: str | None = None,
        trigger_by: str = "last",
    ) -> OrderResult:
        """Place an order and return its outcome after matching.

        The result is the order after the whole call: a fill that made an
        account liquidatable (this one's or another's) is followed by its
        liquidation before this returns, and the result shows what that did to
        the order (see `OrderResult`).

        Raises:
            Rejected: of the code's family (e.g. `InvalidOrder`), with the
                reject's code and reason (the reject is journaled,
                except for values that cannot even be expressed as a command:
                unknown literals and more than 8 decimals).
        """
        for name, value, allowed in (
            ("side", side, _SIDES),
            ("type", type, _TYPES),
            ("tif", tif, _TIFS),
            ("stp", stp or "none", _STPS),
            ("trigger_by", trigger_by, ("last", "mark")),
        ):
            _check_literal(name, value, allowed)
        # The literals were checked just above (a struct built in Python is not
        # validated; only decoding validates), so the casts are safe.
        command = PlaceOrder(
            account=account,
            symbol=symbol,
            side=cast("Side", side),
            type=cast("OrderType", type),
            qty=_e8("qty", qty),
            price=_e8("price", price),
            tif=cast("TimeInForce", tif),
            post_only=post_only,
            reduce_only=reduce_only,
            trigger_price=_e8("trigger_price", trigger_price),
            stp=cast("SelfTradePrevention", stp or "none"),
            client_order_id=client_order_id or "",
            trigger_by=cast("TriggerSource", trigger_by),
        )
        return self._order_call(command, OrderAccepted)

    def cancel_order(
        self,
        account: str,
        order_id: int | None = None,
        *,
        client_order_id: str | None = None,
    ) -> OrderResult:
        """Cancel one open order by id or client id; return its final state."""
        command = CancelOrder(
            account=account,
            order_id=order_id or 0,
            client_order_id=client_order_id or "",
        )
        return self._order_call(command, OrderCanceled)

    def amend_order(
        self,
        account: str,
        order_id: int | None = None,
        *,
        qty: Number | None = None,
        price: Number | None = None,
        client_order_id: str | None = None,
    ) -> OrderResult:
        """Change a resting order's price and/or open quantity (see `AmendOrder`)."""
        command = AmendOrder(
            account=account,
            order_id=order_id or 0,
            client_order_id=client_order_id or "",
            qty=_e8("qty", qty),
            price=_e8("price", price),
        )
        return self._order_call(command, OrderAmended)

    def cancel_all(self, account: str, symbol: str | None = None) -> list[OrderResult]:
        """Cancel every open order of the account (one symbol or all).

        Returns:
            The canceled orders' final states, oldest first (empty if none).
        """
        seq, events = self._call(CancelAll(account=account, symbol=symbol or ""))
        _outcome(seq, events, AllCanceled)
        everything = events + self.system_events
        return [
            self._orders.result(seq, e.order_id, everything)
            for e in events
            if isinstance(e, OrderCanceled)
            and e.account == account
            and e.reason == "cancel_all"
        ]

    def _order_call(
        self,
        command: PlaceOrder | CancelOrder | AmendOrder,
        kind: type[OrderAccepted | OrderCanceled | OrderAmended],
    ) -> OrderResult:
        """Submit an order command; return its order after the call, or raise."""
        seq, events = self._call(command)
        order_id = _outcome(seq, events, kind).order_id
        return self._orders.result(seq, order_id, events + self.system_events)

    # ------------------------------------------------------------ accounts

    def deposit(self, account: str, amount: Number) -> None:
        """Credit paper collateral (USDT) to the account's cross wallet."""
        self._checked(Deposit(account=account, amount=_e8("amount", amount)))

    def withdraw(self, account: str, amount: Number) -> None:
        """Withdraw collateral; never more than the free balance."""
        self._checked(Withdraw(account=account, amount=_e8("amount", amount)))

    def set_margin_mode(self, account: str, symbol: str, mode: str) -> None:
        """Set "isolated" or "cross" for a symbol (no position, no open orders)."""
        _check_literal("mode", mode, ("isolated", "cross"))
        self._checked(SetMarginMode(account=account, symbol=symbol, mode=mode))  # type: ignore[arg-type]

    def set_leverage(self, account: str, symbol: str, leverage: int) -> None:
        """Set a symbol's leverage (1..the tier maximum for the position)."""
        if not isinstance(leverage, int) or isinstance(leverage, bool):
            raise Rejected(RejectCode.MALFORMED, "leverage must be an integer")
        self._checked(SetLeverage(account=account, symbol=symbol, leverage=leverage))

    def adjust_margin(self, account: str, symbol: str, amount: Number) -> None:
        """Add to (positive) or remove from (negative) an isolated position's margin."""
        self._checked(
            AdjustMargin(account=account, symbol=symbol, amount=_e8("amount", amount))
        )

    def set_index_price(self, symbol: str, price: Number) -> None:
        """Feed the index price of a symbol (moves the mark, may liquidate)."""
        self._checked(SetIndexPrice(symbol=symbol, price=_e8("price", price)))

    def advance_time(self, ts_ns: int) -> None:
        """Move exchange time to ``ts_ns`` (funding settles on the way)."""
        self._checked(AdvanceTime(ts_ns=ts_ns))

    def set_risk_limits(
        self,
        account: str,
        *,
        max_order_margin: Number | None = None,
        daily_loss_limit: Number | None = None,
    ) -> None:
        """Set the account's own limits (None or 0 = off).

        Args:
            account: the account.
            max_order_margin: the most margin one order may need, as a fraction
                of equity ("0.1" = 10%).
            daily_loss_limit: USDT of realized loss plus fees per exchange day
                after which orders that open or grow positions are refused.
        """
        try:
            share = to_ppm(max_order_margin) if max_order_margin is not None else 0
        except (Precision, TypeError) as exc:
            raise Rejected(RejectCode.MALFORMED, f"max_order_margin: {exc}") from exc
        self._checked(
            SetRiskLimits(
                account=account,
                max_order_margin_ppm=share,
                daily_loss_limit=_e8("daily_loss_limit", daily_loss_limit),
            )
        )

    def balance(self, account: str) -> dict[str, Decimal]:
        """Return wallet / free / used / total in USDT (see `balance_view`)."""
        return balance_view(self._ledger(), account)

    def positions(self, account: str) -> list[dict[str, Any]]:
        """Return the account's open positions (see `position_views`)."""
        return position_views(self._ledger(), account)

    def insurance_fund(self) -> Decimal:
        """Return the insurance fund's balance in USDT."""
        return from_e8(self._ledger().settlement.insurance_fund)

    def fees_collected(self) -> Decimal:
        """Return every trading fee collected so far, in USDT."""
        return from_e8(self._ledger().settlement.fees_collected)

    def _ledger(self) -> Ledger:
        """Return the margin ledger, or refuse if this exchange runs without one."""
        if self.core.ledger is None:
            raise Rejected(
                RejectCode.MARGIN_DISABLED,
                "create the Exchange with margin=True for accounts",
            )
        return self.core.ledger

    def _checked(self, command: Command) -> list[Event]:
        """Submit a command and raise `Rejected` if it was refused."""
        seq, events = self._call(command)
        _raise_if_rejected(seq, events)
        return events

    def _call(self, command: Command) -> tuple[int, list[Event]]:
        """Submit a command a public method built from its caller's values.

        A struct built in Python is not type-checked (only decoding checks),
        so a value of the wrong type (an order id "7", a timestamp 1.5) is
        refused here as MALFORMED, before it can reach the core or the journal.
        """
        try:
            msgspec.convert(msgspec.to_builtins(command), type(command))
        except msgspec.ValidationError as exc:
            raise Rejected(RejectCode.MALFORMED, _field_error(command, exc)) from exc
        return self.submit(command)

    # ------------------------------------------------------------ queries

    def order_book(self, symbol: str, depth: int = 10) -> dict[str, Any]:
        """Return the top ``depth`` levels: {"symbol", "bids", "asks", "seq"}.

        Each side is a list of (price, qty) Decimal pairs, best first.
        """
        if not isinstance(depth, int) or isinstance(depth, bool) or depth < 0:
            raise Rejected(
                RejectCode.MALFORMED, f"depth must be an int >= 0: {depth!r}"
            )
        state = self.core.markets.get(symbol) if isinstance(symbol, str) else None
        if state is None:
            raise Rejected(RejectCode.UNKNOWN_SYMBOL, f"unknown symbol {symbol!r}")
        m = state.market
        return {
            "symbol": symbol,
            "seq": self.core.last_seq,
            "bids": [
                (m.price_decimal(p), m.qty_decimal(q))
                for p, q in state.book.depth(is_buy=True, levels=depth)
            ],
            "asks": [
                (m.price_decimal(p), m.qty_decimal(q))
                for p, q in state.book.depth(is_buy=False, levels=depth)
            ],
        }

    def open_orders(
        self, account: str, symbol: str | None = None
    ) -> list[dict[str, Any]]:
        """Return the account's open orders (resting and untriggered), oldest first.

        Each row gives the order's id and client id, symbol, side, type,
        status ("new" or "partially_filled"), price, qty (total), filled and
        remaining quantity, flags (tif, post_only, reduce_only) and trigger
        (trigger_price, trigger_by "last" or "mark", triggered: whether it
        has fired); the three trigger fields are None for a plain order.
        """
        return self._orders.open_rows(
            account,
            symbol or "",
            lambda view: (
                self.core.markets[view.spec.symbol].parked_in(view.spec.order_id)
                is not None
            ),
        )


def _outcome(seq: int, events: list[Event], kind: type[_Outcome]) -> _Outcome:
    """Return a command's own outcome event, the first of ``kind``, or raise.

    Only the command itself ever rejects, so an `CommandRejected` anywhere in
    its record is its outcome.

    Raises:
        Rejected: the command was refused.
        InvariantViolation: the record holds neither (a bug).
    """
    for event in events:
        if isinstance(event, CommandRejected):
            raise Rejected(RejectCode(event.code), event.reason, seq)
        if isinstance(event, kind):
            return event
    msg = f"record {seq} holds no {kind.__name__} and no reject"
    raise InvariantViolation(msg)


def _raise_if_rejected(seq: int, events: list[Event]) -> None:
    """Raise `Rejected` if the command was refused (anywhere in its record)."""
    for event in events:
        if isinstance(event, CommandRejected):
            raise Rejected(RejectCode(event.code), event.reason, seq)


def _field_error(command: Command, exc: msgspec.ValidationError) -> str:
    """Name the field a validation error is about (commands encode as arrays)."""
    text = str(exc)
    match = re.search(r"\$\[(\d+)\]", text)
    if match is None:
        return text
    # position 0 is the tag, then the fields in order
    field = type(command).__struct_fields__[int(match.group(1)) - 1]
    return f"{field}: {text.split(' - at ', maxsplit=1)[0]}"


def _check_literal(name: str, value: str, allowed: tuple[str, ...]) -> None:
    """Refuse a value that no command can carry (never reaches the journal)."""
    if value not in allowed:
        raise Rejected(
            RejectCode.MALFORMED,
            f"{name} must be one of {', '.join(allowed)}; got {value!r}",
        )


def _e8(name: str, value: Number | None) -> int:
    """Convert an edge decimal to E8 units (None -> 0), or raise `Rejected`."""
    if value is None:
        return 0
    scaled = checked_e8(name, value)
    if isinstance(scaled, Refusal):
        raise Rejected(scaled.code, scaled.reason)
    return scaled
