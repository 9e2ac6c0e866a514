"""``paperx serve``: the exchange as a network service, one asyncio TaskGroup.

Wiring (each a named task, joined by bounded queues)::

    paperx.gateway   MQTT cmd/{acct} -> session.decode -> sequencer.offer
                     (inbox or outbox full: an OVERLOADED reject, never a wait)
    paperx.sequencer stamp -> core -> journal; once durable: session.outcome
                     -> outbox (acks and fills only after their record is durable)
    paperx.journal   the journal's group commit (inside the sequencer)
    paperx.publish.private / paperx.publish.market   outbox -> MQTT
    paperx.mqtt      the link: runs the gateway and publishers per connection,
                     and reconnects (jittered backoff) when the broker drops;
                     meanwhile the core, journal and feeds go on and the
                     outbox keeps every ack until it is published
    paperx.snapshots an L2 snapshot per symbol every interval
    paperx.feed      index prices (random walk or a recorded CSV), journaled;
                     with --replay / --replay-market the recorded flow instead
                     (`exchange.shell.replay_feed`)
    paperx.clock     AdvanceTime records, so funding happens with no traffic
    paperx.stress.*  with [stress] settings: book floods and forced
                     disconnects (`exchange.shell.stress_modes`)

Start-up: load the config, start the embedded broker unless one is given,
recover the state (`recover`: the newest valid state snapshot plus the
journal's tail, logged as ``journal_recovered`` with the snapshot used, the
records replayed and the seconds; a damaged journal is refused with the
repair command), read back the requests of the last receive window into the
session's memory (`exchange.shell.requests`: a retry of a request that ran
before a crash is answered, not run again), open the journal for appends,
journal the liquidations recovery found pending, make the first deposit of
every account the state has never seen, connect, then accept traffic
(logged as ``server_ready``, with the state hash).

Running: a state snapshot every ``[server] snapshot_every`` records, taken
between records on the sequencer's task and written once the journal made
it durable (`exchange.shell.snapshotter`).

Shutdown on SIGINT or SIGTERM: stop intake and the feeds, journal a
checkpoint, let the sequencer apply what is queued, sync the journal, write
a last snapshot, close the journal, publish what is left, disconnect
(``server_stopped``, with the state hash). A second signal exits at once;
the journal stays valid either way (a torn tail is cut when it is next
opened), as after a crash.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from exchange.core import ExchangeCore
from exchange.errors import JournalCorrupt
from exchange.gateway.acl import EXCHANGE_USER, mosquitto_hash
from exchange.gateway.auth import KeyStore
from exchange.gateway.limits import RateLimits
from exchange.gateway.mqtt import Backoff, MqttAdapter, connect_lean
from exchange.gateway.mqtt_client import MqttError
from exchange.gateway.session import Session
from exchange.gateway.wire import MAX_RECV_WINDOW_MS, Codec
from exchange.journal import Journal, is_nats_url, open_journal, read_journal
from exchange.journal.durability import check_header
from exchange.journal.payload import exchange_header
from exchange.journal.segment import list_segments
from exchange.logs import get_logger
from exchange.messages import Checkpoint, Deposit
from exchange.shell.broker import EmbeddedBroker, PrivateMosquitto, embedded_broker
from exchange.shell.feeds import random_walk, recorded, run_clock, run_index_feed
from exchange.shell.replay_feed import ReplayFeed
from exchange.shell.requests import JournaledRequest, recent_requests
from exchange.shell.sequencer import Sequencer
from exchange.shell.server_config import ServerConfig
from exchange.shell.snapshotter import Snapshotter
from exchange.shell.stress_modes import StressModes

__all__ = ["ServeOptions", "recall_requests", "recover", "serve"]

_log = get_logger(__name__)
_DRAIN_TIMEOUT_S = 10.0  # publishing what is left after the journal closed


@dataclass(frozen=True, slots=True)
class ServeOptions:
    """What the command line adds to or overrides in the config file."""

    broker: str | None = None  # mqtt:// URL of an external broker
    index_feed: Path | None = None  # a CSV of recorded index prices
    embedded_port: int | None = None  # override of [broker] embedded_port
    embedded: str | None = None  # override of [broker] embedded
    replay: Path | None = None  # a recorded journal whose flow is re-sent
    replay_market: str | None = None  # [SYMBOL=]FILE of public market data
    speed: float = 1.0  # of the replay: 2 = twice as fast; 0 = as fast as possible
    replay_wait_for: tuple[str, ...] = ()  # accounts that quote before it starts


def recover(config: ServerConfig) -> ExchangeCore:
    """Return the state the journal directory describes (a fresh one if none).

    The newest valid snapshot plus a rebuild of the journal's tail
    (`replay.recover.recover`); a corrupt snapshot is skipped and logged.
    Liquidations asked for but not yet journaled wait in the core's outbox,
    for the sequencer to journal first. A JetStream journal recovers the
    same way once it is open: see `_recover_stream`.

    Raises:
        JournalMismatch: If the journal was written under another config.
        JournalCorrupt: If the journal is damaged other than at its tail.
    """
    directory = Path(config.journal)
    if not directory.is_dir() or not list_segments(directory):
        return ExchangeCore(config.markets, margin=True)
    header = exchange_header(config.markets, margin=True)
    check_header(str(directory), read_journal(directory).header, header)
    return _recovered(config)


def _recover_stream(journal: Journal, config: ServerConfig) -> ExchangeCore:
    """Return the state of an open JetStream journal: its newest snapshot + tail.

    Opening it has checked its header and that no record is missing.
    """
    if not journal.last_seq:
        return ExchangeCore(config.markets, margin=True)
    return _recovered(config)


def _recovered(config: ServerConfig) -> ExchangeCore:
    """Recover the journal of ``config`` (`replay.recover.recover`) and log how."""
    from replay.recover import recover as recover_journal  # noqa: PLC0415

    core, report = recover_journal(config.journal, config.markets, margin=True)
    for skipped in report.skipped:
        _log.warning("snapshot_skipped", path=skipped.path, reason=skipped.reason)
    _log.info(
        "journal_recovered",
        path=str(config.journal),
        seq=core.last_seq,
        state_hash=report.state_hash,
        snapshot_seq=report.snapshot_seq,
        snapshot=report.snapshot_path,
        why_no_snapshot=report.why_no_snapshot,
        records_replayed=report.records_replayed,
        pending_liquidations=report.pending_liquidations,
        seconds=round(report.seconds, 4),
        journal=report.journal.reason,
    )
    return core


def recall_requests(config: ServerConfig, core: ExchangeCore) -> list[JournaledRequest]:
    """Return the journal's requests still inside the receive window, for the session.

    A bot retries a request it got no answer to for at most the window
    (`MAX_RECV_WINDOW_MS`), under the same request id: these are the
    requests such a retry can repeat.
    """
    if not core.last_seq:
        return []
    since_ns = time.time_ns() - MAX_RECV_WINDOW_MS * 1_000_000
    reader = read_journal(config.journal)
    return recent_requests(reader, since_ns, core.execution.next_order_id)


def serve(config: ServerConfig, options: ServeOptions) -> int:
    """Run the server until a signal stops it; return the exit code.

    Exit codes: 0 after a clean stop, 1 if the broker is unreachable, 2 if
    the journal is damaged (the log names the repair command).
    """
    broker: EmbeddedBroker | PrivateMosquitto | None = None
    url = options.broker or config.broker.url
    if not url:
        config, broker = _embedded_broker(config, options)
        url = broker.url
    journal: Journal | None = None
    try:
        header = exchange_header(config.markets, margin=True)
        if is_nats_url(config.journal):
            journal = open_journal(config.journal, header=header, fsync=config.fsync)
            core = _recover_stream(journal, config)
            requests = recall_requests(config, core)
        else:
            started = time.perf_counter()
            core = recover(config)  # before the journal opens for appends
            requests = recall_requests(config, core)
            _log.info(
                "requests_recalled",
                requests=len(requests),
                seconds=round(time.perf_counter() - started, 4),
            )
            journal = open_journal(config.journal, header=header, fsync=config.fsync)
        asyncio.run(_Server(config, options, url, journal, core, requests).run())
    except ExceptionGroup as failed:  # the server's task group
        unreachable, other = failed.split(MqttError)  # from adapter.connect
        if unreachable is None or other is not None:
            raise
        _log.error(
            "broker_unreachable", broker=url, error=str(unreachable.exceptions[0])
        )
        return 1
    except JournalCorrupt as exc:
        _log.error(
            "journal_damaged",
            error=str(exc),
            hint=f"paperx replay repair {config.journal}",
        )
        return 2
    finally:
        if journal is not None:
            journal.close()  # after a failure too: what is written is synced
        if broker is not None:
            broker.stop()
    return 0


def _embedded_broker(
    config: ServerConfig, options: ServeOptions
) -> tuple[ServerConfig, EmbeddedBroker | PrivateMosquitto]:
    """Start the embedded broker; return it and the config the server logs in with.

    When accounts have MQTT passwords, the broker requires logins and applies
    the topic ACL; the exchange then logs in as ``[broker] username`` with its
    password, or with a random one made for this run if the config has none.
    """
    port = options.embedded_port
    port = config.broker.embedded_port if port is None else port
    kind = options.embedded or config.broker.embedded
    users = config.broker_users()
    if not users:
        broker = embedded_broker(kind, port)
        broker.start()
        return config, broker
    login = config.broker
    if not login.password:
        login = msgspec.structs.replace(
            login,
            username=login.username or EXCHANGE_USER,
            password=secrets.token_urlsafe(24),
        )
    user = login.username or EXCHANGE_USER
    broker = embedded_broker(
        kind, port, users | {user: mosquitto_hash(login.password)}, user
    )
    broker.start()
    return msgspec.structs.replace(config, broker=login), broker


class _Server:
    """The running server: its parts and the tasks that join them."""

    def __init__(
        self,
        config: ServerConfig,
        options: ServeOptions,
        url: str,
        journal: Journal,
        core: ExchangeCore,
        requests: list[JournaledRequest],
    ) -> None:
        """Build the session, outbox and sequencer around a recovered core.

        ``requests`` are the journaled ones the session remembers again.
        """
        self.config = config
        self.options = options
        self.url = url
        self.journal = journal
        self.core = core
        self.stress = StressModes(config.stress, [m.symbol for m in config.markets])
        self.session = Session(
            core,
            KeyStore(config.credentials()),
            codec=Codec(config.format),
            limits=(
                RateLimits(config.rate_limit, config.rate_burst)
                if config.rate_limit
                else None
            ),
            injector=self.stress.injector,
        )
        now_ms = time.time_ns() // 1_000_000
        for request in requests:
            self.session.restore(
                request.request_id,
                request.record,
                request.events,
                order_id=request.order_id,
                now_ms=now_ms,
            )
        self.outbox = self.stress.outbox(config.outbox, config.market_data.queue)
        self.snapshotter = Snapshotter(
            core,
            journal,
            config.journal,
            every=config.snapshot_every,
            keep=config.snapshot_keep,
        )
        self.sequencer = Sequencer(
            core,
            journal,
            queue_size=config.queue,
            on_durable=lambda record, events: self.outbox.put(
                self.session.outcome(record, events)
            ),
            origin=self.session.origin,
            between=self.snapshotter.between,
        )
        self.stopping = asyncio.Event()
        self.replay = ReplayFeed.of(config, options)  # bad sources fail here

    async def run(self) -> None:
        """Serve until a signal; then drain, close the journal and disconnect."""
        self._install_signals()
        broker = self.config.broker
        identifier = self.config.mqtt_client_id()
        adapter = MqttAdapter(
            lambda clean, on_message: connect_lean(
                self.url,
                identifier,
                on_message,
                username=broker.username or None,
                password=broker.password or None,
                clean_session=clean,
            ),
            self.session,
            self.sequencer.offer,
            self.outbox,
            backoff=Backoff(
                broker.reconnect_delay_ms / 1000, broker.max_reconnect_delay_ms / 1000
            ),
        )
        async with asyncio.TaskGroup() as group:
            sequencer = group.create_task(self.sequencer.run(), name="paperx.sequencer")
            await asyncio.sleep(0)  # let the sequencer start before the deposits
            await self._first_deposits()
            await self.stress.declare(self.sequencer.submit)
            # after the deposits (the first commands may need them), before
            # server_ready (nothing sent after it is lost); what the broker
            # kept for this client id since the last run arrives at once
            await adapter.connect()
            # the link reconnects by itself; the core and the feeds never wait on it
            link = group.create_task(adapter.run(), name="paperx.mqtt")
            feeds = [
                group.create_task(self._snapshots(), name="paperx.snapshots"),
                group.create_task(self._index_feed(), name="paperx.feed"),
                group.create_task(
                    run_clock(self.sequencer.submit, self.config.clock.interval_ms),
                    name="paperx.clock",
                ),
            ]
            login = (broker.username or None, broker.password or None)
            feeds += [
                group.create_task(work, name=name)
                for name, work in self.stress.tasks(
                    self.session, self.outbox, self.url, login
                )
            ]
            _log.info(
                "server_ready",
                broker=self.url,
                seq=self.core.last_seq,
                state_hash=self.core.state_hash(),
                accounts=len(self.config.accounts),
                markets=len(self.config.markets),
            )
            await self.stopping.wait()
            adapter.stop_intake()
            for task in feeds:
                task.cancel()
            await self.sequencer.submit(Checkpoint())
            await self.sequencer.stop()
            await sequencer
            await self.snapshotter.finish()
            self.journal.close()
            self.outbox.close()
            _, late = await asyncio.wait([link], timeout=_DRAIN_TIMEOUT_S)
            for task in late:
                task.cancel()
            _log.info(
                "server_stopped",
                seq=self.core.last_seq,
                state_hash=self.core.state_hash(),
                received=adapter.received,
                reconnects=adapter.reconnects,
                dropped=dict(self.outbox.dropped),
                unpublished=self.outbox.pending,
            )

    def _install_signals(self) -> None:
        """SIGINT/SIGTERM: stop gracefully; a second one exits at once."""
        loop = asyncio.get_running_loop()

        def on_signal(signum: int) -> None:
            if self.stopping.is_set():
                _log.warning("server_killed", signal=signal.Signals(signum).name)
                os._exit(128 + signum)
            _log.info("server_stopping", signal=signal.Signals(signum).name)
            self.stopping.set()

        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, on_signal, signum)

    async def _first_deposits(self) -> None:
        """Deposit each account's configured amount if the state never saw it."""
        ledger = self.core.ledger
        assert ledger is not None  # the server always runs the margin ledger
        for account, amount in self.config.deposits_e8().items():
            if account not in ledger.accounts:
                await self.sequencer.submit(Deposit(account=account, amount=amount))

    async def _snapshots(self) -> None:
        """Publish an L2 snapshot of every symbol every interval."""
        md = self.config.market_data
        while True:
            for market in self.config.markets:
                snapshot = self.session.snapshot(market.symbol, md.depth)
                if snapshot is not None:
                    self.outbox.put([snapshot])
            await asyncio.sleep(md.snapshot_interval_ms / 1000)

    def _index_feed(self) -> Coroutine[Any, Any, None]:
        """Return the index feed task: a replay, the recorded file, else the walk."""
        if self.replay is not None:
            return self.replay.run(self.sequencer)
        feed = self.config.feed
        path = self.options.index_feed or (Path(feed.file) if feed.file else None)
        if path is not None:
            symbols = {m.symbol for m in self.config.markets}
            ticks = iter(list(recorded(path, symbols)))  # a bad row fails here
        else:
            ticks = random_walk(feed.start, feed.step, feed.interval_ms, feed.seed)
        return run_index_feed(self.sequencer.submit, ticks)
