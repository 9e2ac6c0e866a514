"""A rerun under changed settings: the recorded commands through a fresh core.

`ChangedRun` feeds a journal's commands, in their recorded order and at their
recorded exchange times, to a new core built with changed settings
(`replay.settings`), and writes what it does as a journal of its own: a new
run, with new seqs, that `paperx replay verify` checks like any other.

How the recording becomes the new run:

* **System commands are the new core's own.** The recorded `Liquidate`
  records are not replayed: they were the old run's answers to its margin
  calls. The new core asks for its own (`ExchangeCore.system_commands`),
  and each becomes the very next record, depth first, exactly as the live
  sequencer submits them, stamped with the time of the record that caused it
  (the earliest time the sequencer could have stamped).
* **Market settings** (fees, tiers, liquidation fee, funding) are the new
  core's markets, and the new journal's header holds them; the header also
  names the source journal and the settings (``config["rerun"]``).
* **Account settings become commands.** A recorded `SetMarginMode` or
  `SetLeverage` is rewritten to the value the settings give for it (``flip``
  flips the recorded mode). An account that never set one for a market gets
  a `SetMarginMode` / `SetLeverage` injected just before its first command in
  that market (an order, an isolated margin adjustment, a leverage change),
  when the settings give it something else than the default (cross, 20x).
* **Order ids follow their orders.** A cancel or amend that names an order
  id names the old run's order; it is sent with the id the new run gave the
  same order. If the new run never accepted that order, the command is not
  sent (no bot would send it) and is reported as dropped.
* **Nothing is dropped silently.** A recorded command that the old run
  accepted and the new run refuses is reported (`RefusedCommand`), as are the
  dropped ones; both keep the old and new seq.
* A `Checkpoint` ends the new journal (the recorded ones are replayed too),
  so verify finds a live hash.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import msgspec

from exchange.core import ExchangeCore
from exchange.journal.payload import exchange_header, journal_payload
from exchange.margin.accounts import DEFAULT_LEVERAGE, DEFAULT_MODE
from exchange.messages import (
    AdjustMargin,
    AmendOrder,
    CancelOrder,
    Checkpoint,
    Command,
    CommandRejected,
    Event,
    Liquidate,
    PlaceOrder,
    Record,
    SetLeverage,
    SetMarginMode,
)
from replay.order_ids import RecordedOrderIds, accepted_id

if TYPE_CHECKING:
    from exchange.journal import Journal, JournalHeader
    from exchange.journal.payload import Journaled
    from exchange.markets import Market
    from replay.log import ExchangeLog
    from replay.settings import RerunSettings

__all__ = ["ChangedRun", "OnRecord", "RefusedCommand", "RerunSummary"]

OnRecord = Callable[[Record, list[Event], ExchangeCore], None]
"""Called after every record of the new run with its events and the core."""


class RefusedCommand(msgspec.Struct, frozen=True, kw_only=True):
    """A recorded command the old run accepted and the new run did not apply."""

    old_seq: int
    new_seq: int  # 0: dropped, never sent
    account: str
    command: str  # the command's tag ("new", "cancel", ...)
    symbol: str
    code: int  # the RejectCode; 0 when dropped
    reason: str


class RerunSummary(msgspec.Struct, kw_only=True):
    """What a changed rerun did, in numbers, for the summary and the report."""

    settings: list[str]
    records_read: int = 0
    records_written: int = 0
    recorded_liquidations: int = 0  # Liquidate records of the old run, not replayed
    liquidations: int = 0  # Liquidate records of the new run
    rewritten: int = 0  # recorded mode / leverage / order id commands changed
    injected: int = 0  # mode / leverage commands added
    refused: list[RefusedCommand] = msgspec.field(default_factory=list)
    newly_accepted: int = 0  # recorded commands refused then, accepted now
    state_hash: str = ""


def rerun_header(
    log: ExchangeLog, markets: list[Market], settings: list[str]
) -> JournalHeader:
    """Return the new journal's header: the new markets, and where they came from."""
    header = exchange_header(markets, margin=log.margin)
    config = {**header.config, "rerun": {"source": str(log.path), "settings": settings}}
    return msgspec.structs.replace(header, config=config)


class ChangedRun:
    """Reruns one journal under changed settings (see the module docstring)."""

    def __init__(
        self,
        log: ExchangeLog,
        settings: RerunSettings,
        *,
        journal: Journal | None = None,
        on_record: OnRecord | None = None,
    ) -> None:
        """Build the new core; ``journal`` (header from `rerun_header`) gets the run.

        Raises:
            ConfigError: if the settings make a market invalid.
        """
        self.log = log
        self.settings = settings
        self.markets = settings.markets(log.markets)
        self.core = ExchangeCore(self.markets, margin=log.margin)
        self.journal = journal
        self.on_record = on_record
        self.summary = RerunSummary(settings=list(settings.texts))
        self._old_ids = RecordedOrderIds()  # the old run's order ids
        self._ids: dict[int, int] = {}  # old run's order id -> new run's
        # (account, symbol) pairs whose mode / leverage was set so far
        self._mode_set: set[tuple[str, str]] = set()
        self._leverage_set: set[tuple[str, str]] = set()
        self._last: Command | None = None
        self._ts = 0

    def run(self, progress: Callable[[int], None] | None = None) -> RerunSummary:
        """Rerun every record of the log; return the summary.

        ``progress(records_read)`` is called every 1,024 records.
        """
        for entry in self.log.entries():
            self.apply(entry)
            if progress is not None and not self.summary.records_read % 1024:
                progress(self.summary.records_read)
        self.finish()
        return self.summary

    def apply(self, entry: Journaled) -> None:
        """Rerun one recorded record (and whatever the new core asks for after it)."""
        summary = self.summary
        summary.records_read += 1
        record, old_events = entry.record, entry.events
        cmd = record.command
        old_id = self._old_ids.follow(cmd, old_events)
        if isinstance(cmd, Liquidate):
            summary.recorded_liquidations += 1
            return
        self._ts = record.ts_ns
        changed = self._changed(record.seq, cmd)
        if changed is None:
            return
        self._inject(changed)
        events = self._submit(changed)
        self._compare(record.seq, cmd, old_events, events)
        if old_id is not None:
            new_id = accepted_id(events)
            if new_id is not None:
                self._ids[old_id] = new_id

    def finish(self) -> None:
        """End the run with a checkpoint (unless it ended with one); note the hash."""
        if not isinstance(self._last, Checkpoint):
            self._submit(Checkpoint())
        self.summary.state_hash = self.core.state_hash()

    # ------------------------------------------------------------ the new run

    def _changed(self, seq: int, cmd: Command) -> Command | None:
        """Return the command as the new run sends it, or None if it is dropped."""
        settings = self.settings
        if isinstance(cmd, SetMarginMode):
            self._mode_set.add((cmd.account, cmd.symbol))
        elif isinstance(cmd, SetLeverage):
            self._leverage_set.add((cmd.account, cmd.symbol))
        if isinstance(cmd, SetMarginMode) and settings.modes:
            mode = settings.mode(cmd.account, cmd.symbol, cmd.mode)
            return self._rewritten(cmd, msgspec.structs.replace(cmd, mode=mode))
        if isinstance(cmd, SetLeverage) and settings.leverages:
            leverage = settings.leverage(cmd.account, cmd.symbol, cmd.leverage)
            return self._rewritten(cmd, msgspec.structs.replace(cmd, leverage=leverage))
        if isinstance(cmd, CancelOrder | AmendOrder) and cmd.order_id:
            new_id = self._ids.get(cmd.order_id)
            if new_id is None:
                self.summary.refused.append(
                    RefusedCommand(
                        old_seq=seq,
                        new_seq=0,
                        account=cmd.account,
                        command=_tag(cmd),
                        symbol="",
                        code=0,
                        reason=f"dropped: order {cmd.order_id} was never accepted "
                        "in this run",
                    )
                )
                return None
            return self._rewritten(cmd, msgspec.structs.replace(cmd, order_id=new_id))
        return cmd

    def _rewritten(self, old: Command, new: Command) -> Command:
        """Count a rewrite that changed something; return the new command."""
        if new != old:
            self.summary.rewritten += 1
        return new

    def _inject(self, cmd: Command) -> None:
        """Set mode and leverage before an account's first command in a market."""
        if not self.settings.changes_accounts or not isinstance(
            cmd, PlaceOrder | AdjustMargin | SetLeverage
        ):
            return
        pair = (cmd.account, cmd.symbol)
        if pair not in self._mode_set:
            self._mode_set.add(pair)
            mode = self.settings.mode(*pair, DEFAULT_MODE)
            if mode != DEFAULT_MODE:
                self.summary.injected += 1
                self._submit(SetMarginMode(account=pair[0], symbol=pair[1], mode=mode))
        if pair not in self._leverage_set and not isinstance(cmd, SetLeverage):
            self._leverage_set.add(pair)
            leverage = self.settings.leverage(*pair, DEFAULT_LEVERAGE)
            if leverage != DEFAULT_LEVERAGE:
                self.summary.injected += 1
                self._submit(
                    SetLeverage(account=pair[0], symbol=pair[1], leverage=leverage)
                )

    def _submit(self, cmd: Command) -> list[Event]:
        """Apply one command, then the system commands it asks for; its events.

        In the core's order (`ExchangeCore.system_commands`), as the live
        sequencer and the facade sequence them.
        """
        events = self._record(cmd)
        for system in self.core.system_commands():
            self._record(system)
        return events

    def _record(self, cmd: Command) -> list[Event]:
        """Apply one record and journal it; return its events."""
        core = self.core
        record = Record(core.last_seq + 1, self._ts, cmd)
        events = core.handle(record)
        self._last = cmd
        self.summary.records_written += 1
        if isinstance(cmd, Liquidate):
            self.summary.liquidations += 1
        if self.journal is not None:
            self.journal.append(record.seq, journal_payload(record, events))
        if self.on_record is not None:
            self.on_record(record, events, core)
        return events

    def _compare(
        self, old_seq: int, cmd: Command, old: list[Event], new: list[Event]
    ) -> None:
        """Note a command accepted then and refused now (or the reverse)."""
        was = any(type(e) is CommandRejected for e in old)
        refusal = next((e for e in new if type(e) is CommandRejected), None)
        if refusal is None:
            self.summary.newly_accepted += was
            return
        if was:
            return
        self.summary.refused.append(
            RefusedCommand(
                old_seq=old_seq,
                new_seq=refusal.seq,
                account=refusal.account,
                command=_tag(cmd),
                symbol=getattr(cmd, "symbol", ""),
                code=refusal.code,
                reason=refusal.reason,
            )
        )


def _tag(cmd: Command) -> str:
    """Return a command's stable tag ("new", "cancel", ...)."""
    return str(type(cmd).__struct_config__.tag)
