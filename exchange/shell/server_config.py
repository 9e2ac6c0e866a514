"""The server's configuration: one TOML file for ``paperx serve``.

A file looks like this (every table but ``markets`` and ``accounts`` is
optional; the values shown are the defaults)::

    [server]
    journal = "runs/serve"   # journal directory (relative to the file) or nats:// URL
    fsync = "batch"          # always | batch | off
    format = "json"          # the wire format: json | msgpack
    queue = 4096             # sequencer inbox: full -> OVERLOADED rejects
    outbox = 65536           # private messages waiting: above -> OVERLOADED
    rate_limit = 0           # requests a second per account (0: no limit);
    rate_burst = 0           # over it -> RATE_LIMITED with a retry-after; burst
                             # 0 = one second's worth
    snapshot_every = 100000  # a state snapshot every N records (0: only on stop)
    snapshot_keep = 3        # snapshots kept in the journal directory

    [broker]
    url = ""                 # mqtt://host:port of an external broker;
                             # "" starts the embedded one on 127.0.0.1
    embedded_port = 1883     # the embedded broker's port (0: any free one)
    embedded = "auto"        # auto: the installed Mosquitto, else amqtt;
                             # or "mosquitto", "amqtt"
    username = ""            # the exchange's MQTT login on an external broker
    password = ""            # (deploy/mosquitto/acl names it "paperx")
    client_id = ""           # the exchange's MQTT client id ("": one derived
                             # from the journal, the same at every start); its
                             # session is persistent until a clean stop
    reconnect_delay_ms = 100      # first reconnect backoff (doubling, +-50%)
    max_reconnect_delay_ms = 5000 # longest reconnect backoff

    [feed]
    file = ""                # CSV of recorded prices (see shell.feeds); "" = walk
    seed = 1                 # the random walk's seed
    interval_ms = 1000       # one index price per symbol this often
    step = "0.0005"          # the walk's step, a fraction of the price
    [feed.start]             # the walk's first index price per symbol
    BTC-PERP = "65000"

    [clock]
    interval_ms = 1000       # an AdvanceTime record this often (funding)

    [market_data]
    snapshot_interval_ms = 1000   # an L2 snapshot per symbol this often
    depth = 50                    # levels per side in a snapshot
    queue = 10000                 # market-data messages waiting, per kind

    [stress]                 # a hostile venue on purpose: latency, injected
                             # rejects, book floods, forced disconnects; all
                             # off (see exchange.gateway.stress, docs/stress.md)

    [markets.BTC-PERP]       # as in `exchange.shell.config`
    tick_size = "0.1"
    lot_size = "0.001"

    [accounts.alice]
    api_key = "alice-key"    # names the account to a REST adapter
    secret = "..."           # signs its requests (HMAC-SHA256)
    deposit = "100000"       # USDT deposited when the account is first seen
    mqtt_password_hash = ""  # its broker password, hashed ($7$, as Mosquitto's
                             # password file); any: the embedded broker
                             # requires logins and applies the topic ACL

``paperx accounts add NAME --config FILE`` writes an account's table (and
Mosquitto's password file and ACL beside it).

Decimals are strings, as in the market table. Secrets live only in this file
and in memory: never in logs or the journal.
"""

from __future__ import annotations

import hashlib
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import msgspec

from exchange.errors import ConfigError
from exchange.gateway.auth import ApiCredentials
from exchange.gateway.stress import StressSettings
from exchange.journal.target import is_nats_url
from exchange.markets import Market
from exchange.shell.config import markets_from_toml
from exchange.units import to_e8

__all__ = [
    "AccountConfig",
    "BrokerConfig",
    "ClockConfig",
    "FeedConfig",
    "MarketDataConfig",
    "ServerConfig",
    "load_server_config",
    "with_stress_file",
]


class _Table(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A TOML table: an unknown key is an error, not silently ignored."""


_T = TypeVar("_T", bound=_Table)


class ServerSection(_Table, frozen=True):
    """The ``[server]`` table: journal, durability, wire format and queues."""

    journal: str = "runs/serve"
    fsync: Literal["always", "batch", "off"] = "batch"
    format: Literal["json", "msgpack"] = "json"
    queue: int = 4096
    outbox: int = 65536
    rate_limit: Annotated[int, msgspec.Meta(ge=0)] = 0
    rate_burst: Annotated[int, msgspec.Meta(ge=0)] = 0
    snapshot_every: int = 100_000
    snapshot_keep: int = 3


class BrokerConfig(_Table, frozen=True):
    """The ``[broker]`` table: an external broker's URL or the embedded one."""

    url: str = ""
    embedded_port: int = 1883
    embedded: Literal["auto", "mosquitto", "amqtt"] = "auto"
    username: str = ""
    password: str = ""
    client_id: str = ""
    reconnect_delay_ms: int = 100
    max_reconnect_delay_ms: int = 5000

    def __repr__(self) -> str:
        """Show the broker, never the password."""
        return f"BrokerConfig(url={self.url!r}, username={self.username!r})"


class FeedConfig(_Table, frozen=True):
    """The ``[feed]`` table: where index prices come from."""

    file: str = ""
    seed: int = 1
    interval_ms: int = 1000
    step: Decimal = Decimal("0.0005")
    start: dict[str, Decimal] = {}


class ClockConfig(_Table, frozen=True):
    """The ``[clock]`` table: how often exchange time advances with no traffic."""

    interval_ms: int = 1000


class MarketDataConfig(_Table, frozen=True):
    """The ``[market_data]`` table: snapshots and the conflation queues."""

    snapshot_interval_ms: int = 1000
    depth: int = 50
    queue: int = 10000


class AccountConfig(_Table, frozen=True):
    """One ``[accounts.NAME]`` table: API credentials and the first deposit."""

    api_key: str
    secret: str
    deposit: Decimal = Decimal(0)
    mqtt_password_hash: str = ""

    def __repr__(self) -> str:
        """Show the key, never the secret."""
        return f"AccountConfig(api_key={self.api_key!r}, deposit={self.deposit})"


class _Document(_Table, frozen=True):
    """The whole file, minus the markets (`exchange.shell.config` reads those)."""

    server: ServerSection = ServerSection()
    broker: BrokerConfig = BrokerConfig()
    feed: FeedConfig = FeedConfig()
    clock: ClockConfig = ClockConfig()
    market_data: MarketDataConfig = MarketDataConfig()
    stress: StressSettings = StressSettings()
    accounts: dict[str, AccountConfig] = {}
    markets: dict[str, Any] = {}


class _StressFile(_Table, frozen=True):
    """A file of stress settings alone (``paperx serve --stress FILE``)."""

    stress: StressSettings = StressSettings()


class ServerConfig(msgspec.Struct, kw_only=True):
    """Everything ``paperx serve`` needs, read from one file."""

    markets: list[Market]
    accounts: dict[str, AccountConfig]
    journal: Path | str  # a directory, or a nats://host:port/STREAM URL
    fsync: Literal["always", "batch", "off"]
    format: Literal["json", "msgpack"]
    queue: int
    outbox: int
    rate_limit: int  # requests a second per account; 0: no limit
    rate_burst: int
    broker: BrokerConfig
    feed: FeedConfig
    clock: ClockConfig
    market_data: MarketDataConfig
    snapshot_every: int = 100_000
    """A state snapshot every this many records (0: only on a clean stop)."""
    snapshot_keep: int = 3
    """Snapshots kept beside the journal (at least 1)."""
    stress: StressSettings = StressSettings()
    """The venue's stress modes (all off by default)."""

    def credentials(self) -> dict[str, ApiCredentials]:
        """Return each account's API credentials."""
        return {
            name: ApiCredentials(api_key=a.api_key, secret=a.secret)
            for name, a in self.accounts.items()
        }

    def broker_users(self) -> dict[str, str]:
        """Return the accounts' MQTT users (name -> password hash) that have one."""
        return {
            name: a.mqtt_password_hash
            for name, a in self.accounts.items()
            if a.mqtt_password_hash
        }

    def mqtt_client_id(self) -> str:
        """Return the exchange's MQTT client id: ``[broker] client_id`` if set.

        Otherwise one derived from the journal's location, the same at every
        start: a restarted exchange (after a crash too) takes back its
        persistent broker session, with the commands the broker queued for
        it while it was down.
        """
        if self.broker.client_id:
            return self.broker.client_id
        where = str(self.journal)
        if not is_nats_url(where):
            where = str(Path(where).resolve())
        return "paperx-" + hashlib.sha256(where.encode()).hexdigest()[:12]

    def deposits_e8(self) -> dict[str, int]:
        """Return each account's first deposit in E8 USDT (zero ones left out)."""
        return {n: to_e8(a.deposit) for n, a in self.accounts.items() if a.deposit}


def load_server_config(path: str | Path) -> ServerConfig:
    """Read a server config file (see the module docstring for the format).

    Relative paths in it (the journal, the feed file) are relative to the file.

    Raises:
        ConfigError: if the file is missing, not TOML, or has a bad value.
    """
    path = Path(path)
    text, document = _read(path, _Document, "the server config")
    if not document.accounts:
        msg = f"{path}: needs at least one [accounts.NAME] table"
        raise ConfigError(msg)
    markets = markets_from_toml(text, str(path))
    symbols = {m.symbol for m in markets}
    unknown = sorted(set(document.feed.start) - symbols)
    if unknown:
        msg = f"{path}: [feed.start] names unknown markets: {', '.join(unknown)}"
        raise ConfigError(msg)
    server = document.server
    if server.snapshot_every < 0 or server.snapshot_keep < 1:
        msg = (
            f"{path}: [server] snapshot_every must be 0 or more and snapshot_keep "
            f"1 or more, got {server.snapshot_every} and {server.snapshot_keep}"
        )
        raise ConfigError(msg)
    _check_stress(path, document.stress, set(document.accounts), symbols)
    base = path.parent
    feed = document.feed
    if feed.file:
        feed = msgspec.structs.replace(feed, file=str(base / feed.file))
    return ServerConfig(
        markets=markets,
        accounts=document.accounts,
        journal=(
            server.journal if is_nats_url(server.journal) else base / server.journal
        ),
        fsync=server.fsync,
        format=server.format,
        queue=server.queue,
        outbox=server.outbox,
        rate_limit=server.rate_limit,
        rate_burst=server.rate_burst,
        broker=document.broker,
        feed=feed,
        clock=document.clock,
        market_data=document.market_data,
        snapshot_every=server.snapshot_every,
        snapshot_keep=server.snapshot_keep,
        stress=document.stress,
    )


def with_stress_file(config: ServerConfig, path: str | Path) -> ServerConfig:
    """Return ``config`` with the ``[stress]`` table of file ``path`` instead.

    Raises:
        ConfigError: if the file is missing, not TOML, holds anything but a
            ``[stress]`` table, or names accounts or markets ``config`` has not.
    """
    path = Path(path)
    stress = _read(path, _StressFile, "the stress settings")[1].stress
    symbols = {m.symbol for m in config.markets}
    _check_stress(path, stress, set(config.accounts), symbols)
    return msgspec.structs.replace(config, stress=stress)


def _read(path: Path, kind: type[_T], what: str) -> tuple[str, _T]:
    """Return a TOML file's text and its tables as ``kind``.

    Raises:
        ConfigError: naming the file, if it cannot be read, is not TOML, or
            does not fit ``kind`` (``what`` names the file's role).
    """
    try:
        text = path.read_text(encoding="utf-8")
        return text, msgspec.convert(tomllib.loads(text), kind, strict=False)
    except OSError as exc:
        msg = f"{path}: cannot read {what}: {exc.strerror}"
        raise ConfigError(msg) from exc
    except (tomllib.TOMLDecodeError, msgspec.ValidationError) as exc:
        msg = f"{path}: {exc}"
        raise ConfigError(msg) from exc


def _check_stress(
    path: Path, stress: StressSettings, accounts: set[str], symbols: set[str]
) -> None:
    """Refuse stress settings that name accounts or markets the server lacks.

    Raises:
        ConfigError: naming the file and the first problem.
    """
    problems = stress.problems(accounts, symbols)
    if problems:
        msg = f"{path}: {problems[0]}"
        raise ConfigError(msg)
