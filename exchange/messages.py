"""Every command, event and record the exchange core speaks, as msgspec structs.

Units. Commands carry prices and quantities in the fixed unit E8 (10**8 per
whole unit), so a command means the same under any market table and an
off-tick price is a reject the core makes and journals, never a rounding.
Events carry the core's units: prices in *ticks* and quantities in *lots* of
the event's market (the journal header keeps the market table); money, rates
and mark prices say their unit (E8 money, ppm, E8 price). Every event carries
the ``seq`` of its record. Schema rules (msgspec's): a new field gets a default
and goes last, a type never changes, a tag is never reused; ``array_like``
keeps the journal compact and fast.
"""

from __future__ import annotations

from typing import Literal

import msgspec

__all__ = [
    "AdjustMargin",
    "AdvanceTime",
    "AllCanceled",
    "AmendOrder",
    "BalanceChanged",
    "BookDelta",
    "CancelAll",
    "CancelOrder",
    "Checkpoint",
    "CheckpointTaken",
    "Command",
    "CommandRejected",
    "DeclareStress",
    "Deposit",
    "Event",
    "FundingPaid",
    "InjectReject",
    "InsuranceFundChanged",
    "Liquidate",
    "LiquidationSkipped",
    "MarginCall",
    "MarkPriceChanged",
    "OrderAccepted",
    "OrderAmended",
    "OrderCanceled",
    "OrderExpired",
    "OrderFilled",
    "OrderRested",
    "OrderTriggered",
    "PlaceOrder",
    "PositionChanged",
    "PositionDeleveraged",
    "PositionLiquidated",
    "Record",
    "RiskLimitsSet",
    "SetIndexPrice",
    "SetLeverage",
    "SetMarginMode",
    "SetRiskLimits",
    "UserCommand",
    "Withdraw",
]

Side = Literal["buy", "sell"]
OrderType = Literal[
    "limit",
    "market",
    "stop_market",
    "stop_limit",
    "take_profit_market",
    "take_profit_limit",
]
TimeInForce = Literal["GTC", "IOC", "FOK"]
SelfTradePrevention = Literal["none", "expire_taker", "expire_maker", "expire_both"]
MarginMode = Literal["isolated", "cross"]
TriggerSource = Literal["last", "mark"]


class _Message(
    msgspec.Struct,
    frozen=True,
    array_like=True,
    tag_field="kind",
    gc=False,
):
    """Base of every command and event: immutable, compact on the journal.

    Build them with at most 15 keywords per call: from 16 on CPython builds a
    dict per call (7x slower), so `OrderAccepted` takes seq and id by position.

    ``gc=False``: messages hold only str, int and bool, so they can never be
    part of a reference cycle; untracked, the millions of them a run creates
    cost the cyclic garbage collector nothing.
    """


# ---------------------------------------------------------------- commands


class PlaceOrder(_Message, tag="new"):
    """Place an order. ``qty``, ``price`` and ``trigger_price`` are E8 units.

    ``price`` is 0 for market types; ``trigger_price`` is 0 except for stop and
    take-profit types, which fire when the ``trigger_by`` price ("last" trade,
    or "mark" with margin) reaches it. ``client_order_id`` ("" for none) must
    be unique among the account's open orders.
    """

    account: str
    symbol: str
    side: Side
    type: OrderType
    qty: int
    price: int = 0
    tif: TimeInForce = "GTC"
    post_only: bool = False
    reduce_only: bool = False
    trigger_price: int = 0
    stp: SelfTradePrevention = "none"
    client_order_id: str = ""
    trigger_by: TriggerSource = "last"


class CancelOrder(_Message, tag="cancel"):
    """Cancel one open order, named by ``order_id`` or else ``client_order_id``."""

    account: str
    order_id: int = 0
    client_order_id: str = ""


class AmendOrder(_Message, tag="amend"):
    """Change a resting order's price and/or open quantity (E8; 0 = unchanged).

    ``qty`` is the new *open* quantity (what remains to fill). Lowering it at
    the same price keeps time priority; a new price or a larger quantity sends
    the order to the back of its (new) level, matching first if it now crosses.
    """

    account: str
    order_id: int = 0
    client_order_id: str = ""
    qty: int = 0
    price: int = 0


class CancelAll(_Message, tag="cancel_all"):
    """Cancel an account's open orders (resting or untriggered); symbol "" = all."""

    account: str
    symbol: str = ""


class Checkpoint(_Message, tag="checkpoint"):
    """System command: journal the state hash (`CheckpointTaken`) for replays."""


class Deposit(_Message, tag="deposit"):
    """Paper deposit of ``amount`` E8 collateral (USDT) into the cross wallet."""

    account: str
    amount: int


class Withdraw(_Message, tag="withdraw"):
    """Withdraw ``amount`` E8 collateral; never more than the free balance."""

    account: str
    amount: int


class SetMarginMode(_Message, tag="margin_mode"):
    """Set the margin mode of one symbol; refused with a position or open orders."""

    account: str
    symbol: str
    mode: MarginMode


class SetLeverage(_Message, tag="leverage"):
    """Set the leverage of one symbol (1..the tier maximum for the position)."""

    account: str
    symbol: str
    leverage: int


class AdjustMargin(_Message, tag="adjust_margin"):
    """Move ``amount`` E8 into (positive) or out of (negative) an isolated position."""

    account: str
    symbol: str
    amount: int


class SetRiskLimits(_Message, tag="risk_limits"):
    """An account's own limits; 0 turns one off (both are off by default).

    ``max_order_margin_ppm``: the most margin one order may need, as ppm of
    the account's equity. ``daily_loss_limit``: E8; once the day's realized
    PnL minus fees reaches this loss, orders that would open or grow a
    position are refused until the next exchange day (UTC).
    """

    account: str
    max_order_margin_ppm: int = 0
    daily_loss_limit: int = 0


class SetIndexPrice(_Message, tag="index"):
    """System command: the index price feed, ``price`` in E8."""

    symbol: str
    price: int


class Liquidate(_Message, tag="liquidate"):
    """System command: liquidate a position (``symbol``), or cross account ("").

    Asked for by a `MarginCall`; the shell journals it as the very next record.
    """

    account: str
    symbol: str = ""


class AdvanceTime(_Message, tag="clock"):
    """System command: exchange time moves to ``ts_ns`` (funding happens here)."""

    ts_ns: int


UserCommand = (
    PlaceOrder
    | CancelOrder
    | AmendOrder
    | CancelAll
    | SetMarginMode
    | SetLeverage
    | AdjustMargin
)
"""The commands a bot sends (what the gateway makes of its requests)."""


class InjectReject(_Message, tag="inject_reject"):
    """Refuse a bot's ``command`` on purpose: the venue's reject injection.

    The gateway draws, outside the core, which commands its stress settings
    refuse, and sends each wrapped in this: the core answers with a
    `CommandRejected` of code INJECTED_REJECT for the command's account,
    echoing its client order id and order id, and changes nothing. The
    journal keeps the command, so a report shows what was refused and a
    rerun refuses it again.
    """

    command: UserCommand

    @property
    def account(self) -> str:
        """Return the account of the refused command."""
        return self.command.account


class DeclareStress(_Message, tag="stress"):
    """System command: the venue's stress settings in effect from here on.

    ``settings`` is the JSON of the server's ``[stress]`` table (latency,
    reject injection, floods, disconnects; see `exchange.gateway.stress`).
    The core changes nothing: the record only says, in the journal, how
    hostile the venue was to its clients from this record on.
    """

    settings: str


Command = (
    PlaceOrder
    | CancelOrder
    | AmendOrder
    | CancelAll
    | Checkpoint
    | Deposit
    | Withdraw
    | SetMarginMode
    | SetLeverage
    | AdjustMargin
    | SetRiskLimits
    | SetIndexPrice
    | AdvanceTime
    | Liquidate
    | InjectReject
    | DeclareStress
)


class Record(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """One sequenced input: the ``seq`` and exchange time ``ts_ns`` stamped on it."""

    seq: int
    ts_ns: int
    command: Command


# ---------------------------------------------------------------- events


class OrderAccepted(_Message, tag="accepted"):
    """An order passed every check and has an id. ``qty`` lots, prices ticks.

    ``margin`` is the E8 margin the ledger holds for it (0 without margin, for
    untriggered stops and reduce-only orders). ``liquidation`` marks the
    exchange's own IOC order that closes a liquidated position.
    """

    seq: int
    order_id: int
    account: str
    symbol: str
    side: Side
    type: OrderType
    qty: int
    price: int
    tif: TimeInForce
    post_only: bool
    reduce_only: bool
    trigger_price: int
    stp: SelfTradePrevention
    client_order_id: str
    margin: int = 0
    liquidation: bool = False
    trigger_by: TriggerSource = "last"

    @classmethod
    def placed(
        cls,
        seq: int,
        order_id: int,
        cmd: PlaceOrder,
        qty: int,
        price: int,
        trigger_price: int,
        margin: int,
    ) -> OrderAccepted:
        """Return the acceptance of ``cmd``: its fields, in lots and ticks.

        The one place a `PlaceOrder` becomes an order's spec, for the core and
        for a rebuild that derives it from the journaled command.
        """
        return cls(
            seq,  # seq and id by position: see `_Message`
            order_id,
            account=cmd.account,
            symbol=cmd.symbol,
            side=cmd.side,
            type=cmd.type,
            qty=qty,
            price=price,
            tif=cmd.tif,
            post_only=cmd.post_only,
            reduce_only=cmd.reduce_only,
            trigger_price=trigger_price,
            stp=cmd.stp,
            client_order_id=cmd.client_order_id,
            margin=margin,
            trigger_by=cmd.trigger_by,
        )


class CommandRejected(_Message, tag="rejected"):
    """A command was refused and changed nothing. ``code`` is a `RejectCode`.

    Any command: an order command echoes the client order id (and an amend or
    cancel its order id); an account or index command leaves them empty. The
    tag is the one journals of schema 1 used for refused orders.
    """

    seq: int
    account: str
    code: int
    reason: str
    order_id: int = 0
    client_order_id: str = ""


class OrderFilled(_Message, tag="fill"):
    """One trade between a taker and a resting maker, at the maker's price.

    ``price`` ticks, ``qty`` lots, fees in collateral units (0 until margin).
    """

    seq: int
    trade_id: int
    symbol: str
    price: int
    qty: int
    taker_order_id: int
    taker_account: str
    taker_side: Side
    maker_order_id: int
    maker_account: str
    taker_fee: int = 0
    maker_fee: int = 0


class OrderRested(_Message, tag="rested"):
    """An order's open quantity (``qty`` lots) joined the back of its level."""

    seq: int
    order_id: int
    symbol: str
    side: Side
    price: int
    qty: int


class OrderCanceled(_Message, tag="canceled"):
    """An open order left the book on request; ``qty`` lots were still open."""

    seq: int
    order_id: int
    account: str
    symbol: str
    qty: int
    reason: str = "user"


class OrderExpired(_Message, tag="expired"):
    """An order's open ``qty`` lots ended unfilled by rule, not by request.

    ``reason``: "ioc" (IOC/market remainder), "fok" (triggered FOK that could
    not fill whole), "post_only" (triggered post-only that would take),
    "stp_taker" / "stp_maker" (self-trade prevention).
    """

    seq: int
    order_id: int
    account: str
    symbol: str
    qty: int
    reason: str


class OrderAmended(_Message, tag="amended"):
    """A resting order now has ``price`` ticks and ``qty`` open lots.

    ``requeued`` orders left the book and re-enter it through matching (fills,
    then `OrderRested`); others kept their place. ``margin`` is what the ledger
    now holds for it (E8).
    """

    seq: int
    order_id: int
    account: str
    symbol: str
    price: int
    qty: int
    requeued: bool
    margin: int = 0


class OrderTriggered(_Message, tag="triggered"):
    """A stop / take-profit order's trigger was reached at ``last_price`` ticks.

    ``last_price`` is the reference that fired it: the last trade, or for a
    ``trigger_by="mark"`` order the mark rounded down to ticks. ``margin`` is
    what the ledger holds for it from now on (E8).
    """

    seq: int
    order_id: int
    account: str
    symbol: str
    trigger_price: int
    last_price: int
    margin: int = 0


class AllCanceled(_Message, tag="all_canceled"):
    """A cancel-all finished; ``count`` orders were canceled."""

    seq: int
    account: str
    symbol: str
    count: int


class CheckpointTaken(_Message, tag="checkpoint_taken"):
    """The canonical `state_hash` after the `Checkpoint` record ``seq``."""

    seq: int
    state_hash: str


class BookDelta(_Message, tag="book"):
    """The total open quantity at one level after a record (0 = level gone)."""

    seq: int
    symbol: str
    side: Side
    price: int
    qty: int


class BalanceChanged(_Message, tag="balance"):
    """An account's cross wallet moved by ``amount`` (E8) to ``wallet``.

    ``reason``: "deposit", "withdraw", "realized_pnl", "fee", "funding",
    "isolated_margin" (to or from an isolated position), "liquidation".
    """

    seq: int
    account: str
    amount: int
    wallet: int
    reason: str


class PositionChanged(_Message, tag="position"):
    """The state of one account's position after a change (a full snapshot).

    ``size`` signed lots, ``cost`` signed E8 entry value (entry price = cost /
    size), ``margin`` the isolated wallet (0 in cross mode), ``realized`` and
    ``fee`` what this change realized and paid (E8).
    """

    seq: int
    account: str
    symbol: str
    size: int
    cost: int
    margin: int
    mode: MarginMode
    leverage: int
    realized: int = 0
    fee: int = 0


class InsuranceFundChanged(_Message, tag="insurance"):
    """The insurance fund moved by ``amount`` (E8) to ``balance``.

    ``reason``: "shortfall" (paid a bankrupt balance's deficit), "liquidation_fee",
    "liquidation_surplus", "funding_remainder". ``bad_debt`` is the deficit the
    fund could not pay (auto-deleveraging closes it).
    """

    seq: int
    amount: int
    balance: int
    reason: str
    account: str = ""
    bad_debt: int = 0


class MarginCall(_Message, tag="margin_call"):
    """A margin balance fell to its maintenance margin: liquidation follows.

    ``symbol`` "" is a cross account (all its cross positions); amounts E8.
    """

    seq: int
    account: str
    symbol: str
    margin_balance: int
    maintenance_margin: int


class PositionLiquidated(_Message, tag="liquidated"):
    """A position was liquidated at or better than ``bankruptcy_price``.

    ``qty`` lots: ``filled`` in the book by ``order_id``, the rest by ADL;
    ``fee`` and ``surplus`` (E8) went to the insurance fund; ``left`` lots stay
    open after a partial liquidation (0: closed).
    """

    seq: int
    account: str
    symbol: str
    mode: MarginMode
    qty: int
    bankruptcy_price: int
    order_id: int
    filled: int
    deleveraged: int
    fee: int
    surplus: int
    left: int = 0


class PositionDeleveraged(_Message, tag="adl"):
    """Auto-deleveraging closed ``qty`` lots of ``account``'s position.

    At ``price`` ticks (the bankruptcy price), against the bankrupt
    ``counterparty``, without a fee.
    """

    seq: int
    symbol: str
    account: str
    counterparty: str
    qty: int
    price: int


class FundingPaid(_Message, tag="funding"):
    """A position paid (``amount`` > 0) or received (< 0) funding, E8.

    ``rate`` E8 rate units (1e-8) of the interval ending at ``funding_ts_ns``,
    ``mark`` E8. Positive rates: longs pay shorts.
    """

    seq: int
    symbol: str
    account: str
    amount: int
    rate: int
    mark: int
    funding_ts_ns: int


class LiquidationSkipped(_Message, tag="liquidation_skipped"):
    """A requested liquidation found nothing to do (``reason``: "recovered", "flat")."""

    seq: int
    account: str
    symbol: str
    reason: str


class RiskLimitsSet(_Message, tag="risk_limits_set"):
    """An account's risk limits are now these (see `SetRiskLimits`)."""

    seq: int
    account: str
    max_order_margin_ppm: int
    daily_loss_limit: int


class MarkPriceChanged(_Message, tag="mark"):
    """A market's mark price (E8) after a record; ``index`` 0 if none yet."""

    seq: int
    symbol: str
    mark: int
    index: int


Event = (
    OrderAccepted
    | CommandRejected
    | OrderFilled
    | OrderRested
    | OrderCanceled
    | OrderExpired
    | OrderAmended
    | OrderTriggered
    | AllCanceled
    | BookDelta
    | CheckpointTaken
    | BalanceChanged
    | PositionChanged
    | MarkPriceChanged
    | InsuranceFundChanged
    | MarginCall
    | PositionLiquidated
    | PositionDeleveraged
    | LiquidationSkipped
    | FundingPaid
    | RiskLimitsSet
)


# One encoder for every msgpack the exchange writes (journal frames, state
# hashes): msgspec encoders are stateless and reusable.
ENCODER = msgspec.msgpack.Encoder()
