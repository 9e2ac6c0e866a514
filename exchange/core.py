"""The exchange core: one pure, synchronous state machine over every market.

``ExchangeCore.handle(record) -> list[Event]`` is the whole contract. It does
no I/O, reads no clock and draws no random numbers; the record's ``seq`` and
``ts_ns`` are the only outside facts it sees, so the same records always give
the same events and the same `state_hash`.

The core owns its parts and is the one place where they meet: the engine
(`Execution`: books, matching, triggers; `OrderEntry`: the order commands)
and, with margin, the ledger (`Ledger`: accounts, settlement, marks,
funding) and the `Liquidator`. The engine sees the ledger only as a
`RiskGate`, the liquidator sees the books only as `LiquidationOrders`;
neither package imports the other. A record runs DESIGN.md's pipeline:

0. time     - a stamp past a funding time settles funding first (ledger).
1. check    - validate the command against its market and, with margin, the
              pre-trade risk check; a refusal emits `CommandRejected` and
              changes nothing.
2. match    - `matching.match` against the book, price-time priority; stops
              and take-profits on the last trade price fire here, in turn.
3. settle   - fills become `OrderFilled` events; the ledger books positions,
              fees and wallets.
4. mark and - resting orders are fitted to the positions and wallets the
   liquidate  record changed (`exchange.resting`), marks are refreshed
              (mark-price triggers fire), and the liquidation index is asked
              what the record moved; a position due gets a `MarginCall`, and
              its `Liquidate` system command waits in `system_commands`
              for the shell to journal next.

Every price level the record touched is reported once, as a `BookDelta`.
Without margin (``margin=False``) steps 0 and 4 and the risk parts do nothing.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Iterable, Iterator
from typing import assert_never

import msgspec

from exchange.codes import Refusal, RejectCode
from exchange.engine.execution import Execution
from exchange.engine.orders import OrderEntry, reject
from exchange.errors import InvariantViolation
from exchange.margin.ledger import Ledger
from exchange.margin.liquidation import Liquidator
from exchange.markets import DEFAULT_MARKETS, Market
from exchange.messages import (
    ENCODER,
    AdjustMargin,
    AdvanceTime,
    AmendOrder,
    CancelAll,
    CancelOrder,
    Checkpoint,
    CheckpointTaken,
    DeclareStress,
    Deposit,
    Event,
    InjectReject,
    Liquidate,
    PlaceOrder,
    Record,
    SetIndexPrice,
    SetLeverage,
    SetMarginMode,
    SetRiskLimits,
    Withdraw,
)
from exchange.resting import fit_resting_orders
from exchange.state import CoreState, capture, restore

__all__ = ["STATE_SCHEMA", "ExchangeCore"]

STATE_SCHEMA = 1  # bump when the canonical state encoding changes


class ExchangeCore:
    """The whole exchange state machine; one writer only.

    It owns its parts and is the one place where they meet: `execution` (the
    books, matching, triggers), `orders` (the order commands and their checks),
    and, with margin, `ledger` (accounts, settlement, marks, funding) and
    `liquidator` (margin calls, liquidation orders, auto-deleveraging).
    """

    def __init__(
        self,
        markets: Iterable[Market] = DEFAULT_MARKETS,
        *,
        margin: bool = False,
    ) -> None:
        """Create an exchange with empty books for ``markets``.

        Args:
            markets: the markets to trade.
            margin: run the margin ledger (accounts must deposit, orders are
                risk-checked, fills settle into positions). Without it the core
                is a pure matching venue: every order is accepted on its merits
                as an order, and account commands are refused (MARGIN_DISABLED).
        """
        markets = list(markets)
        self.ledger = Ledger(markets) if margin else None
        self.execution = Execution(markets, self.ledger)
        # the books' shared indexes, for the views to read: symbol -> books,
        # order id -> open order, account -> its open orders
        self.markets = self.execution.markets
        self.index = self.execution.index
        self.by_account = self.execution.by_account
        self.orders = OrderEntry(self.execution, self.ledger)
        self.liquidator = (
            None if self.ledger is None else Liquidator(self.ledger, self.execution)
        )
        self.last_seq = 0
        self.ts_ns = 0  # exchange time: the latest record stamp

    # ------------------------------------------------------------ entry point

    def handle(self, record: Record) -> list[Event]:  # noqa: C901, PLR0912 -- the dispatch
        """Apply one sequenced record and return the events it caused, in order.

        Raises:
            InvariantViolation: if ``record.seq`` does not follow the last one
                (a bug in the caller; the core refuses to apply it).
        """
        seq = record.seq
        if seq != self.last_seq + 1:
            msg = f"record seq {seq} does not follow {self.last_seq}"
            raise InvariantViolation(msg)
        self.last_seq = seq
        cmd = record.command
        ts_ns = (
            max(record.ts_ns, cmd.ts_ns) if type(cmd) is AdvanceTime else (record.ts_ns)
        )
        events: list[Event] = []
        # 0. time
        if ts_ns > self.ts_ns:
            self.ts_ns = ts_ns
            if self.ledger is not None:  # funding of intervals that just ended
                due = self.ledger.on_time(ts_ns)
                if due:
                    self.ledger.pay_funding(seq, due, self._holders, events)
        # 1.-3. check, match and settle the command (one branch per kind)
        match cmd:
            case PlaceOrder():
                self.orders.place(seq, cmd, events)
            case CancelOrder():
                self.orders.cancel(seq, cmd, events)
            case AmendOrder():
                self.orders.amend(seq, cmd, events)
            case CancelAll():
                self.orders.cancel_all(seq, cmd, events)
            case Checkpoint():
                events.append(CheckpointTaken(seq=seq, state_hash=self.state_hash()))
            case (
                Deposit()
                | Withdraw()
                | SetMarginMode()
                | SetLeverage()
                | AdjustMargin()
                | SetRiskLimits()
            ):
                self._account_command(seq, cmd, events)
            case SetIndexPrice():
                self._set_index(seq, cmd, events)
            case AdvanceTime():
                pass  # time moved above; funding settled there
            case Liquidate():
                self._liquidate(seq, cmd, events)
            case InjectReject():
                self._inject_reject(seq, cmd, events)
            case DeclareStress():
                pass  # a note for the journal's readers; nothing changes
            case _:
                assert_never(cmd)
        if self.liquidator is None:
            self.execution.report_levels(seq, events)
            return events
        # 4. mark and liquidate: what this record moved, nothing else
        self._fit_resting_orders(seq, events)
        moved = self._follow_marks(seq, events)
        self.execution.report_levels(seq, events)
        if moved or self.ledger.dirty:  # type: ignore[union-attr]
            self.liquidator.detect(seq, moved, events)
        return events

    def _holders(self, symbol: str) -> Iterable[str]:
        """Return the accounts with a position in ``symbol`` (at a record's start).

        The liquidation index holds exactly them once a record is done (the
        detection re-indexes every account the record changed).
        """
        assert self.liquidator is not None  # margin mode only
        return self.liquidator.indexes[symbol].at.keys()

    def _fit_resting_orders(self, seq: int, events: list[Event]) -> None:
        """Fit resting orders to the positions and wallets this record changed."""
        ledger = self.ledger
        if ledger is not None and ledger.dirty:
            fit_resting_orders(seq, self.execution, ledger, list(ledger.dirty), events)

    def _follow_marks(self, seq: int, events: list[Event]) -> list[str]:
        """Refresh the marks the record moved and fire the mark-price triggers.

        Triggered orders can trade and move a mark again, so this repeats until
        the marks settle (each trigger fires once, so it ends). Returns every
        symbol whose mark moved.
        """
        moved_all: list[str] = []
        while self.execution.marks_touched:
            moved = self._refresh_marks(seq, events)
            moved_all += [s for s in moved if s not in moved_all]
            for symbol in moved:
                state = self.markets[symbol]
                if state.mark_triggers.parked:
                    self.execution.fire_triggers(seq, state, events, by_mark=True)
            self._fit_resting_orders(seq, events)
        return moved_all

    def restore_indexes(self) -> None:
        """Re-derive what the core indexes beside its state, so it can go on.

        The canonical state (books, ledger, marks) is all a rebuild or a
        snapshot restores; the reduce-only orders at rest and the
        liquidation index are derived from it here.
        """
        self.execution.restore_resting_reduce_only()
        if self.liquidator is not None:
            self.liquidator.reindex()

    def snapshot(self) -> CoreState:
        """Return the whole state as plain data, for a snapshot (see `restored`).

        Call it between records. The data is the core's own (frozen structs of
        ints, strings and lists); writing it anywhere is the shell's business.
        """
        return capture(self, STATE_SCHEMA)

    @classmethod
    def restored(
        cls, state: CoreState, markets: Iterable[Market], *, margin: bool
    ) -> ExchangeCore:
        """Return a core rebuilt from ``snapshot()`` data, ready for the next record.

        Given the markets and margin setting the original ran with, the
        result has the original's `state_hash` and handles every following
        record exactly as the original would (same events, same state).

        Raises:
            InvariantViolation: If ``state`` is of another state schema, other
                markets or margin setting, or inconsistent.
        """
        if state.schema != STATE_SCHEMA:
            msg = f"snapshot state schema {state.schema}, this core's {STATE_SCHEMA}"
            raise InvariantViolation(msg)
        core = cls(markets, margin=margin)
        restore(core, state)
        core.restore_indexes()
        return core

    def take_system_commands(self) -> list[Liquidate]:
        """Return (and forget) the system commands the last records asked for.

        A replay finds them in the journal and ignores this outbox; a shell
        that sequences them uses `system_commands`, which fixes their order.
        """
        if self.liquidator is None or not self.liquidator.outbox:
            return []
        out, self.liquidator.outbox = self.liquidator.outbox, []
        return out

    def system_commands(self) -> Iterator[Liquidate]:
        """Yield the system commands to sequence next, in the one canonical order.

        The caller applies each yielded command as the very next record
        before asking for the next one. Order: first in, first out — those the
        last record asked for, then those that each of them asks for, in the
        order they were asked. Every shell (facade, sequencer, rerun, bench)
        sequences through this, so the same commands give the same journal.
        """
        pending = deque(self.take_system_commands())
        while pending:
            yield pending.popleft()
            pending.extend(self.take_system_commands())

    # ------------------------------------------------------------ accounts and prices

    def _account_command(  # noqa: C901 -- one branch per account command
        self,
        seq: int,
        cmd: (
            Deposit
            | Withdraw
            | SetMarginMode
            | SetLeverage
            | AdjustMargin
            | SetRiskLimits
        ),
        events: list[Event],
    ) -> None:
        """Hand an account command to the ledger; refuse it without one."""
        ledger = self.ledger
        refusal: Refusal | None
        if ledger is None:
            refusal = Refusal(
                RejectCode.MARGIN_DISABLED, "this exchange runs without margin accounts"
            )
        elif not cmd.account:
            refusal = Refusal(RejectCode.INVALID_ACCOUNT, "account must not be empty")
        elif not isinstance(cmd, Deposit | Withdraw | SetRiskLimits) and (
            cmd.symbol not in self.markets
        ):
            refusal = Refusal(
                RejectCode.UNKNOWN_SYMBOL, f"unknown symbol {cmd.symbol!r}"
            )
        else:
            match cmd:
                case Deposit():
                    refusal = ledger.deposit(seq, cmd, events)
                case Withdraw():
                    refusal = ledger.withdraw(seq, cmd, events)
                case SetMarginMode():
                    refusal = ledger.set_margin_mode(
                        seq, cmd, self._has_orders(cmd.account, cmd.symbol), events
                    )
                case SetLeverage():
                    refusal = ledger.set_leverage(
                        seq, cmd, self._has_orders(cmd.account, cmd.symbol), events
                    )
                case AdjustMargin():
                    refusal = ledger.adjust_margin(seq, cmd, events)
                case SetRiskLimits():
                    refusal = ledger.set_risk_limits(seq, cmd, events)
                case _:
                    assert_never(cmd)
        if refusal is not None:
            reject(seq, cmd.account, refusal.code, refusal.reason, events)

    def _has_orders(self, account: str, symbol: str) -> bool:
        """Return True if the account has open orders in ``symbol``."""
        return any(
            o.spec.symbol == symbol
            for o in self.execution.by_account.get(account, {}).values()
        )

    def _set_index(self, seq: int, cmd: SetIndexPrice, events: list[Event]) -> None:
        """Take an index price: the mark moves, and margin is checked against it."""
        if self.ledger is None:
            reject(
                seq,
                "",
                RejectCode.MARGIN_DISABLED,
                "this exchange runs without an index or mark price",
                events,
            )
            return
        if cmd.symbol not in self.markets:
            reject(
                seq,
                "",
                RejectCode.UNKNOWN_SYMBOL,
                f"unknown symbol {cmd.symbol!r}",
                events,
            )
            return
        if cmd.price <= 0:
            reject(
                seq,
                "",
                RejectCode.INVALID_PRICE,
                "index price must be positive",
                events,
            )
            return
        market = self.markets[cmd.symbol].market
        if not market.min_price <= cmd.price <= market.max_price:
            reject(
                seq,
                "",
                RejectCode.PRICE_OUT_OF_RANGE,
                "the index price must lie within the market's price limits",
                events,
            )
            return
        self.ledger.markets[cmd.symbol].take_index(
            cmd.price, self.ts_ns, self.markets[cmd.symbol].book
        )
        self.execution.marks_touched[cmd.symbol] = None

    def _refresh_marks(self, seq: int, events: list[Event]) -> list[str]:
        """Recompute the marks this record may have moved; return those that did."""
        ledger = self.ledger
        assert ledger is not None
        moved = [
            symbol
            for symbol in self.execution.marks_touched
            if ledger.markets[symbol].refresh_mark(
                seq, self.markets[symbol].book, self.ts_ns, events
            )
        ]
        self.execution.marks_touched.clear()
        return moved

    def _liquidate(self, seq: int, cmd: Liquidate, events: list[Event]) -> None:
        """Run a liquidation the core asked for (a system command)."""
        if self.liquidator is None:
            reject(
                seq,
                cmd.account,
                RejectCode.MARGIN_DISABLED,
                "this exchange runs without margin accounts",
                events,
            )
            return
        self.liquidator.run(seq, cmd, events)

    @staticmethod
    def _inject_reject(seq: int, cmd: InjectReject, events: list[Event]) -> None:
        """Refuse the wrapped command as its own reject would, changing nothing."""
        inner = cmd.command
        reject(
            seq,
            inner.account,
            RejectCode.INJECTED_REJECT,
            "refused on purpose: the venue injects rejects (its stress settings)",
            events,
            getattr(inner, "client_order_id", ""),
            getattr(inner, "order_id", 0),
        )

    # ------------------------------------------------------------ state

    def canonical_state(self, *, include_seq: bool = True) -> list[object]:
        """Return the full state as plain data in one canonical order.

        ``include_seq=False`` leaves out the last applied seq: what remains is
        everything a command can change, so a rejected command (which is still
        a record and still advances the seq) leaves it identical.
        """
        ledger = (
            None
            if self.ledger is None
            else [
                self.ledger.canonical_state(),
                self.liquidator.canonical_state(),  # type: ignore[union-attr]
            ]
        )
        return [
            STATE_SCHEMA,
            self.last_seq if include_seq else None,
            self.execution.next_order_id,
            self.execution.next_trade_id,
            self.execution.book_rows(),
            ledger,
        ]

    def state_hash(self, *, include_seq: bool = True) -> str:
        """Return the sha256 hex digest of the canonical state encoding.

        Any int state hashes: msgpack holds ints in [-2**63, 2**64), and sums
        such as total deposits can leave that range (past ~1.8e11 USDT), so
        those ints are encoded as a tagged canonical form (`encode_state`).
        """
        encoded = encode_state(self.canonical_state(include_seq=include_seq))
        return hashlib.sha256(encoded).hexdigest()


# msgpack extension type of an int outside msgpack's own range: its two's
# complement, big-endian, in the fewest bytes that hold it.
BIG_INT_EXT = 1
_MSGPACK_INTS = range(-(2**63), 2**64)


def encode_state(state: object) -> bytes:
    """Return the canonical msgpack bytes of plain state data, whatever its ints.

    State whose ints all fit msgpack encodes as plain msgpack (the common case,
    and the same bytes as before big ints were handled); otherwise every int
    outside msgpack's range becomes an extension value of type
    ``BIG_INT_EXT``, so equal states always give equal bytes.
    """
    try:
        return ENCODER.encode(state)
    except OverflowError:
        return ENCODER.encode(_tag_big_ints(state))


def _tag_big_ints(value: object) -> object:
    """Return ``value`` with every int msgpack cannot hold made an extension."""
    if isinstance(value, list | tuple):
        return [_tag_big_ints(item) for item in value]
    if isinstance(value, dict):
        return {key: _tag_big_ints(item) for key, item in value.items()}
    if type(value) is int and value not in _MSGPACK_INTS:
        size = (value.bit_length() + 8) // 8  # room for the sign bit
        return msgspec.msgpack.Ext(BIG_INT_EXT, value.to_bytes(size, signed=True))
    return value
