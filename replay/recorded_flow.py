"""A recorded journal's order flow, re-sent into a live exchange beside live bots.

`RecordedFlow` turns the records of a recorded journal into the commands a
live server (`exchange.shell.replay_feed`) submits, each with the exchange
time it was recorded at, for the server to pace. It is an iterator that
translates lazily: each command is translated only after the outcome of the
one before was handed to `RecordedFlow.took`, so ids the live run gave are
known by then.

How the recording meets the live run:

* **Recorded accounts are kept apart** from live ones by a prefix
  (`RECORDED_PREFIX`, ``rec:``): recorded ``alice`` trades as ``rec:alice``.
  Live bots log in with the accounts of the server's config, so none can
  speak for a recorded account; the server refuses a config account that
  starts with the prefix.
* **Account commands are replayed** under the prefixed name: orders,
  cancels, amends, cancel-alls, deposits and withdrawals, margin mode,
  leverage, isolated margin and risk limits. The recorded deposits fund the
  recorded accounts; recorded client order ids stay as they were (they are
  per account).
* **Order ids follow their orders.** A cancel or amend by order id names the
  recorded run's order (`RecordedOrderIds` follows those); it is sent with
  the id the live run gave the same order. If the live run never accepted
  that order (the book was different), the command is dropped and counted:
  no bot would cancel an order it never had.
* **System records are the live exchange's own**: recorded liquidations are
  not replayed (the live core makes its own), nor the recorded clock ticks
  (`AdvanceTime`) and checkpoints (the live server runs its clock and
  checkpoints), nor the recorded venue's stress (its `DeclareStress` notes
  and the commands it refused on purpose, `InjectReject`: they never took
  effect). Recorded index prices are replayed unless ``index`` is False
  (another source owns the index, e.g. a market data file).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import msgspec

from exchange.messages import (
    AdjustMargin,
    AdvanceTime,
    AmendOrder,
    CancelAll,
    CancelOrder,
    Checkpoint,
    Command,
    DeclareStress,
    Deposit,
    Event,
    InjectReject,
    Liquidate,
    PlaceOrder,
    SetIndexPrice,
    SetLeverage,
    SetMarginMode,
    SetRiskLimits,
    Withdraw,
)
from replay.flow import RECORDED_PREFIX, FlowCounts, TimedCommand
from replay.order_ids import RecordedOrderIds, accepted_id

if TYPE_CHECKING:
    from replay.log import ExchangeLog

__all__ = ["RecordedFlow"]

_ACCOUNT_COMMANDS = (
    PlaceOrder,
    CancelOrder,
    AmendOrder,
    CancelAll,
    Deposit,
    Withdraw,
    SetMarginMode,
    SetLeverage,
    AdjustMargin,
    SetRiskLimits,
)
_SYSTEM_COMMANDS = (Liquidate, AdvanceTime, Checkpoint, DeclareStress, InjectReject)


class RecordedFlow:
    """Yields a journal's user commands as the live run sends them (module doc)."""

    def __init__(
        self,
        log: ExchangeLog,
        *,
        prefix: str = RECORDED_PREFIX,
        index: bool = True,
    ) -> None:
        """Read ``log``; ``index``: replay its index prices too."""
        self.log = log
        self.prefix = prefix
        self.index = index
        self.counts = FlowCounts()
        self._recorded_ids = RecordedOrderIds()
        self._ids: dict[int, int] = {}  # recorded order id -> the live run's
        self._placing: int | None = None  # recorded id of the order in flight

    def __iter__(self) -> Iterator[TimedCommand]:
        """Yield ``(recorded ts_ns, command)`` for every command to send."""
        for entry in self.log.entries():
            self.counts.read += 1
            record = entry.record
            recorded_id = self._recorded_ids.follow(record.command, entry.events)
            command = self.translate(record.command)
            if command is None:
                continue
            self._placing = recorded_id
            yield record.ts_ns, command

    def translate(self, command: Command) -> Command | None:
        """Return a recorded command as the live run sends it, or None to skip it."""
        if isinstance(command, _SYSTEM_COMMANDS) or (
            isinstance(command, SetIndexPrice) and not self.index
        ):
            self.counts.skipped += 1
            return None
        if not isinstance(command, _ACCOUNT_COMMANDS):
            return command  # an index price: the market, not an account's
        account = self.prefix + command.account
        if isinstance(command, CancelOrder | AmendOrder) and command.order_id:
            live_id = self._ids.get(command.order_id)
            if live_id is None:
                self.counts.dropped += 1
                return None
            return msgspec.structs.replace(command, account=account, order_id=live_id)
        return msgspec.structs.replace(command, account=account)

    def took(self, events: list[Event]) -> None:
        """Take the live outcome of the command yielded last."""
        self.counts.took(events)
        if self._placing is not None:
            live_id = accepted_id(events)
            if live_id is not None:
                self._ids[self._placing] = live_id
            self._placing = None
