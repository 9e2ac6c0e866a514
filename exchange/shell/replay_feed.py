"""Market replay with live bots: recorded flow re-sent at its recorded times.

``paperx serve --replay JOURNAL`` and ``--replay-market [SYMBOL=]FILE`` run
this as the server's feed task (``paperx.feed``, in place of the index feed):
it submits a recorded flow through the sequencer like any command, while
live bots trade over MQTT; their orders move the same book the recorded
orders meet, market data goes out as live, and the journal records the
combined run like any other (``paperx replay verify`` checks it).

* The flows: a recorded journal's user commands (`replay.recorded_flow`:
  recorded accounts trade as ``rec:NAME``, order ids are mapped to the live
  run's, system records are the live exchange's own) and a public market data
  file (`replay.market_data`: index prices and, from aggTrades, a taker flow
  of ``rec:flow``). With both, both run at once, each paced from its own
  first record, and the market file owns the index (the journal's recorded
  index prices are skipped); with the journal alone, its index prices are
  the index. Either way the random walk does not run.
* Pacing (`Pacer`): a command recorded ``d`` ns after the flow's first goes
  ``d / speed`` after the replay started, on the event loop's monotonic
  clock (the shell's, never the core's). Speed 0 means as fast as possible:
  each command waits only for the one before to be durable. A late command
  goes at once; nothing is skipped. The records get the live clock's stamps
  (the sequencer's), as every record does.
* Each command waits for its own outcome before the next is sent (a cancel
  may need the id the live run gave an order just placed), so the flow's
  rate is at most one record per journal commit.
* ``wait_for``: the replay starts once each named live account has an open
  order (the bots are quoting), so a fast replay cannot run past bots that
  are still connecting. Checked whenever the journal makes a record durable.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Collection
from pathlib import Path
from typing import TYPE_CHECKING

from exchange.errors import ConfigError
from exchange.logs import get_logger
from replay.flow import RECORDED_PREFIX
from replay.log import ExchangeLog
from replay.market_data import market_flow, market_for
from replay.recorded_flow import RecordedFlow

if TYPE_CHECKING:
    from exchange.messages import Command, Event
    from exchange.shell.sequencer import Sequencer
    from exchange.shell.server import ServeOptions
    from exchange.shell.server_config import ServerConfig
    from replay.flow import Flow

__all__ = ["Pacer", "ReplayFeed", "parse_speed", "play", "wait_for_quotes"]

_log = get_logger(__name__)
_NS = 1e9

Submit = Callable[["Command"], Awaitable[tuple[int, list["Event"]]]]


def parse_speed(text: str) -> float:
    """Return a ``--speed`` value: a factor > 0, or 0 for "max" (or "0").

    Raises:
        ValueError: for anything else (negative, not a number, not finite).
    """
    if text.strip().lower() == "max":
        return 0.0
    msg = f"speed {text!r} is not a factor >= 0 (or max)"
    try:
        speed = float(text)
    except ValueError:
        raise ValueError(msg) from None
    if not 0 <= speed < float("inf"):
        raise ValueError(msg)
    return speed


class Pacer:
    """Waits until each recorded time, scaled by ``speed``, is due (module doc)."""

    def __init__(
        self,
        speed: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """Pace at ``speed`` (0: never wait) on ``clock`` (seconds)."""
        self.speed = speed
        self._clock = clock
        self._sleep = sleep
        self._origin: tuple[int, float] | None = None  # (first ts_ns, started)

    async def wait(self, ts_ns: int) -> None:
        """Return when the command recorded at ``ts_ns`` is due."""
        if not self.speed:
            return
        if self._origin is None:
            self._origin = (ts_ns, self._clock())
            return
        first, started = self._origin
        delay = started + (ts_ns - first) / _NS / self.speed - self._clock()
        if delay > 0:
            await self._sleep(delay)


async def play(submit: Submit, flow: Flow, pacer: Pacer) -> None:
    """Send every command of ``flow`` when due; hand each outcome back."""
    for ts_ns, command in flow:
        await pacer.wait(ts_ns)
        _, events = await submit(command)
        flow.took(events)


async def wait_for_quotes(sequencer: Sequencer, accounts: Collection[str]) -> None:
    """Return once each of ``accounts`` has an open order in the live core."""
    core = sequencer.core
    durable = asyncio.Event()
    sequencer.journal.on_durable(lambda _: durable.set())
    while not all(core.by_account.get(a) for a in accounts):
        durable.clear()
        await durable.wait()


class ReplayFeed:
    """The recorded flows of one server run, read and checked before it starts."""

    def __init__(
        self,
        flows: list[tuple[str, Flow]],
        speed: float,
        wait_for: Collection[str] = (),
    ) -> None:
        """Hold the flows (by source name) to play at ``speed`` after ``wait_for``."""
        self.flows = flows
        self.speed = speed
        self.wait_for = tuple(wait_for)

    @classmethod
    def of(cls, config: ServerConfig, options: ServeOptions) -> ReplayFeed | None:
        """Return the replay the options ask for, or None (no replay options).

        Raises:
            ConfigError: if a config account has the recorded prefix, a
                waited-for account is not in the config, the recorded journal
                is the live one or cannot be opened, or a market file cannot
                be read.
            JournalError: if the recorded journal's header is not readable.
        """
        journal, market_file = options.replay, options.replay_market
        if journal is None and market_file is None:
            return None
        _check_accounts(config, options.replay_wait_for)
        flows: list[tuple[str, Flow]] = []
        if market_file is not None:
            market, path = market_for(market_file, config.markets)
            flows.append((str(path), market_flow(path, market)))
        if journal is not None:
            if Path(journal).resolve() == Path(config.journal).resolve():
                msg = f"--replay {journal}: that is the live journal"
                raise ConfigError(msg)
            try:
                log = ExchangeLog(journal)
            except OSError as exc:
                msg = f"--replay {journal}: cannot read the journal: {exc.strerror}"
                raise ConfigError(msg) from exc
            flows.append((str(journal), RecordedFlow(log, index=market_file is None)))
        return cls(flows, options.speed, options.replay_wait_for)

    async def run(self, sequencer: Sequencer) -> None:
        """Wait for the quoting bots, play every flow, log what each did."""
        if self.wait_for:
            _log.info("replay_waiting", accounts=list(self.wait_for))
            await wait_for_quotes(sequencer, self.wait_for)
        _log.info(
            "replay_started", sources=[n for n, _ in self.flows], speed=self.speed
        )
        async with asyncio.TaskGroup() as group:
            for name, flow in self.flows:
                group.create_task(
                    play(sequencer.submit, flow, Pacer(self.speed)),
                    name=f"paperx.replay.{name}",
                )
        for name, flow in self.flows:
            counts = flow.counts
            _log.info(
                "replay_finished",
                source=name,
                read=counts.read,
                sent=counts.sent,
                rejected=counts.rejected,
                skipped=counts.skipped,
                dropped=counts.dropped,
            )


def _check_accounts(config: ServerConfig, wait_for: Collection[str]) -> None:
    """Refuse config accounts with the recorded prefix, and unknown waited-for ones."""
    clashing = sorted(a for a in config.accounts if a.startswith(RECORDED_PREFIX))
    if clashing:
        msg = (
            f"accounts {', '.join(clashing)}: the prefix {RECORDED_PREFIX!r} is "
            "kept for recorded accounts in a replay"
        )
        raise ConfigError(msg)
    unknown = sorted(set(wait_for) - set(config.accounts))
    if unknown:
        msg = f"--replay-wait-for: {', '.join(unknown)} not in the config"
        raise ConfigError(msg)
