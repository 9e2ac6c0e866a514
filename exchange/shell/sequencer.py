"""The sequencer: the one asyncio task that owns the core.

Everything that wants to change exchange state calls `Sequencer.submit`,
which queues the command and waits. The sequencer task takes commands in
arrival order, stamps each with the next ``seq`` and the wall-clock time (the
only clock read on the write path; the core sees just the stamp), applies it
to the core, appends the record and the events it cannot derive
(`exchange.journal.payload.journal_payload`) to the journal, and resolves
the caller's future **only once the journal reports the record durable** under
its fsync policy: no acknowledgement leaves before its record is safe.

Queue policy: the inbox is bounded (``queue_size``); when it is full,
`submit` waits (backpressure on the caller) rather than dropping anything,
and `offer` returns False at once (the gateway answers OVERLOADED): a network
reader never waits on the core.

A transport adapter that answers from the records themselves (the gateway's
session) passes ``on_durable``: it is called once for *every* record, user
and system alike (liquidations, index prices, clock ticks), in seq order,
with the record and all its events, as soon as the record is durable. It
also passes ``origin``: the request id a command came in under, journaled
with its record so that a restarted server knows which requests already ran.
``between`` is called on the sequencer's task after each record whose
system commands are journaled too: the moment to take a consistent snapshot.

Start-up: the system commands a recovered core still asks for (liquidations
decided before a crash but not journaled) are journaled first, before any
queued command.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

from exchange.core import ExchangeCore
from exchange.errors import PaperxError
from exchange.journal import Journal
from exchange.journal.payload import journal_payload
from exchange.logs import get_logger
from exchange.messages import Command, Event, Record

__all__ = ["OnDurable", "Origin", "Sequencer", "SequencerStopped"]

_Outcome = tuple[int, list[Event]]
_Item = tuple[Command, "asyncio.Future[_Outcome] | None"]
OnDurable = Callable[[Record, list[Event]], None]
Origin = Callable[[Command], str]

_log = get_logger(__name__)


class SequencerStopped(PaperxError):
    """Raised by `Sequencer.submit` when the sequencer is not running anymore."""


class Sequencer:
    """Stamps, applies and journals commands; releases outcomes once durable."""

    def __init__(
        self,
        core: ExchangeCore,
        journal: Journal,
        *,
        clock: Callable[[], int] = time.time_ns,
        queue_size: int = 4096,
        on_durable: OnDurable | None = None,
        origin: Origin | None = None,
        between: Callable[[], None] | None = None,
    ) -> None:
        """Wire a core to its journal; call `run` in a task to start.

        ``on_durable(record, events)`` is called for every record once it is
        durable, in seq order (see the module docstring); it must not raise.
        ``origin(command)`` returns the request id to journal with a command
        ("" for none); ``between()`` runs after each record and its system
        commands. Neither may raise.
        """
        self.core = core
        self.journal = journal
        self._clock = clock
        self._last_ts = 0
        self._on_durable = on_durable
        self._origin = origin
        self._between = between
        # (command, caller's future or None), or None: the stop marker
        self._inbox: asyncio.Queue[_Item | None] = asyncio.Queue(queue_size)
        # Applied but not yet durable, in seq order: (record, future, events);
        # records nobody waits for are kept only when on_durable wants them.
        self._unreleased: deque[
            tuple[Record, asyncio.Future[_Outcome] | None, list[Event]]
        ] = deque()
        self._running = False
        self._stopping = False
        self._failure: BaseException | None = None
        journal.on_durable(self._release)

    async def submit(self, command: Command) -> tuple[int, list[Event]]:
        """Queue a command; return its (seq, events) once its record is durable.

        ``events`` are every event the core returned, derived ones included
        (acceptances, rests, book deltas), though the journal keeps only the
        rest.

        Raises:
            SequencerStopped: if the sequencer stopped or failed.
        """
        if self._failure is not None or not self._running:
            msg = "the sequencer is not running"
            raise SequencerStopped(msg) from self._failure
        future: asyncio.Future[tuple[int, list[Event]]] = (
            asyncio.get_running_loop().create_future()
        )
        await self._inbox.put((command, future))
        return await future

    def offer(self, command: Command) -> bool:
        """Queue a command without waiting; return False if the inbox is full.

        Nobody waits for its outcome here: it reaches ``on_durable`` like
        every record. A stopped sequencer accepts nothing (False).
        """
        if self._failure is not None or not self._running or self._stopping:
            return False
        try:
            self._inbox.put_nowait((command, None))
        except asyncio.QueueFull:
            return False
        return True

    @property
    def backlog(self) -> int:
        """Return the commands queued and not yet applied."""
        return self._inbox.qsize()

    async def run(self) -> None:
        """Own the core until `stop`: run this as the task ``paperx.sequencer``.

        The journal's group commit runs beside it as ``paperx.journal``. An
        exception from the core is a bug: it is logged, every waiting caller
        gets `SequencerStopped`, and the exception propagates (state that may
        be half-applied is never used again).
        """
        self._running = True
        try:
            async with asyncio.TaskGroup() as group:
                committer = group.create_task(
                    self.journal.run_group_commit(), name="paperx.journal"
                )
                await self._loop()
                self.journal.sync()
                committer.cancel()
        except BaseException as exc:
            self._failure = exc
            _log.exception("sequencer_failed", seq=self.core.last_seq)
            self._fail_waiters(exc)
            raise
        finally:
            self._running = False

    async def stop(self) -> None:
        """Ask `run` to finish after the commands already queued.

        `offer` refuses new commands from now on.
        """
        self._stopping = True
        await self._inbox.put(None)

    async def _loop(self) -> None:
        """Journal what recovery left pending, then apply commands until the stop."""
        for system_command in self.core.system_commands():
            self._record(system_command, None)
        inbox = self._inbox
        between = self._between
        while True:
            item = await inbox.get()
            while True:
                if item is None:
                    return
                command, future = item
                self._apply(command, future)
                if between is not None:
                    between()
                if inbox.empty():
                    break
                item = inbox.get_nowait()
            self.journal.maybe_sync()

    def _apply(self, command: Command, future: asyncio.Future[_Outcome] | None) -> None:
        """Apply one command, then the system commands it causes.

        System commands the core asks for (liquidations) become the very next
        records, ahead of anything still queued, in the core's order
        (`ExchangeCore.system_commands`); they have no caller.
        """
        self._record(command, future)
        for system_command in self.core.system_commands():
            self._record(system_command, None)

    def _record(
        self, command: Command, future: asyncio.Future[_Outcome] | None
    ) -> None:
        """Stamp, apply and journal one record; hold its outcome until durable."""
        seq = self.core.last_seq + 1
        self._last_ts = max(self._last_ts, self._clock())
        record = Record(seq, self._last_ts, command)
        events = self.core.handle(record)
        if future is not None or self._on_durable is not None:
            self._unreleased.append((record, future, events))
        origin = "" if self._origin is None else self._origin(command)
        self.journal.append(seq, journal_payload(record, events, origin))

    def _release(self, durable_seq: int) -> None:
        """Resolve the futures of every record now durable, in seq order."""
        unreleased = self._unreleased
        on_durable = self._on_durable
        while unreleased and unreleased[0][0].seq <= durable_seq:
            record, future, events = unreleased.popleft()
            if on_durable is not None:
                on_durable(record, events)
            if future is not None and not future.done():
                future.set_result((record.seq, events))

    def _fail_waiters(self, exc: BaseException) -> None:
        """Fail every caller still waiting for an outcome."""
        error = SequencerStopped("the sequencer stopped before the record was durable")
        error.__cause__ = exc
        while self._unreleased:
            _, future, _ = self._unreleased.popleft()
            if future is not None and not future.done():
                future.set_exception(error)
