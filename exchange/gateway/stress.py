"""Stress settings: how hostile the venue is to its clients, and the seeded draws.

A venue made hostile on purpose, for teams that must know how their trading
client copes (issue #10; the user's guide, with a full example, is
docs/stress.md). Every mode is off by default; with none on, the server
behaves exactly as without this module. The ``[stress]`` table of the server
config (`exchange.shell.server_config`) or ``paperx serve --stress FILE``
holds them: ``seed``; ``[stress.latency]`` (``private``, ``market_data`` and
per-account ``accounts`` distributions); ``[stress.reject]``
(``probability`` and per-account ``accounts``); ``[stress.flood]``
(``rate`` per second and symbol, ``symbols``); and one
``[stress.disconnect.CLIENT_ID]`` per MQTT client to drop (``at_s``,
``mean_interval_s``).

Latency distributions (milliseconds): ``fixed`` (``ms``), ``uniform``
(``low_ms``..``high_ms``), ``normal`` (``mean_ms``, ``sd_ms``; a negative draw
is 0, so with ``sd_ms`` near ``mean_ms`` the mean comes out above
``mean_ms``), ``lognormal`` (the ``mean_ms`` and ``sd_ms`` of the delay
itself, a long right tail). Market data is one publish per topic for every
subscriber, so its latency is the same for all; ``accounts`` applies to
private messages only.

Seeds: every stream of draws has a generator of its own, seeded from
``seed`` and its name (an account, a symbol, a client id), so one account's
draws never depend on another's traffic: the same seed and the same order of
an account's requests give the same delays and the same injected rejects.
"""

from __future__ import annotations

import math
import random
from typing import Annotated

import msgspec

__all__ = [
    "Delays",
    "DisconnectPlan",
    "Fixed",
    "FloodSettings",
    "Latency",
    "LatencySettings",
    "Lognormal",
    "Normal",
    "RejectInjector",
    "RejectSettings",
    "StressSettings",
    "Uniform",
    "seeded",
]

NonNegative = Annotated[float, msgspec.Meta(ge=0)]
Probability = Annotated[float, msgspec.Meta(ge=0, le=1)]


def seeded(seed: int, *names: str) -> random.Random:
    """Return a generator of its own for one named stream of draws.

    A string seed is hashed with SHA-512 by `random.Random` (version 2), so
    the stream is the same on every run and machine, whatever the hash seed.
    """
    return random.Random("/".join((str(seed), *names)))  # noqa: S311 -- not a secret


class _Table(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A TOML table: an unknown key is an error, not silently ignored."""


# ---------------------------------------------------------------- distributions


class _Distribution(_Table, frozen=True, tag_field="dist"):
    """A latency distribution, in milliseconds, tagged by ``dist``."""


class Fixed(_Distribution, frozen=True, tag="fixed"):
    """Always ``ms``."""

    ms: NonNegative

    def sample(self, rng: random.Random) -> float:  # noqa: ARG002 -- no draw needed
        """Return the delay in milliseconds."""
        return self.ms


class Uniform(_Distribution, frozen=True, tag="uniform"):
    """Evenly between ``low_ms`` and ``high_ms``."""

    low_ms: NonNegative
    high_ms: NonNegative

    def __post_init__(self) -> None:
        """Refuse a range that ends before it starts."""
        if self.high_ms < self.low_ms:
            msg = f"high_ms {self.high_ms} is below low_ms {self.low_ms}"
            raise ValueError(msg)

    def sample(self, rng: random.Random) -> float:
        """Return the delay in milliseconds."""
        return rng.uniform(self.low_ms, self.high_ms)


class Normal(_Distribution, frozen=True, tag="normal"):
    """Gaussian of ``mean_ms`` and ``sd_ms``, a negative draw clipped to 0."""

    mean_ms: NonNegative
    sd_ms: NonNegative

    def sample(self, rng: random.Random) -> float:
        """Return the delay in milliseconds."""
        return max(0.0, rng.gauss(self.mean_ms, self.sd_ms))


class Lognormal(_Distribution, frozen=True, tag="lognormal"):
    """Log-normal whose own mean and standard deviation are ``mean_ms``, ``sd_ms``."""

    mean_ms: Annotated[float, msgspec.Meta(gt=0)]
    sd_ms: NonNegative

    def sample(self, rng: random.Random) -> float:
        """Return the delay in milliseconds."""
        # the underlying normal's parameters, from the mean and variance wanted
        variance = math.log1p((self.sd_ms / self.mean_ms) ** 2)
        mu = math.log(self.mean_ms) - variance / 2
        return rng.lognormvariate(mu, math.sqrt(variance))


Latency = Fixed | Uniform | Normal | Lognormal


# ---------------------------------------------------------------- the settings


class LatencySettings(_Table, frozen=True):
    """``[stress.latency]``: delays before publishing (none by default)."""

    private: Latency | None = None
    market_data: Latency | None = None
    accounts: dict[str, Latency] = {}

    @property
    def enabled(self) -> bool:
        """Return True if any message is delayed."""
        return bool(self.private or self.market_data or self.accounts)


class RejectSettings(_Table, frozen=True):
    """``[stress.reject]``: the chance that a command is refused on purpose."""

    probability: Probability = 0.0
    accounts: dict[str, Probability] = {}

    @property
    def enabled(self) -> bool:
        """Return True if any account's commands may be refused."""
        return bool(self.probability or any(self.accounts.values()))


class FloodSettings(_Table, frozen=True):
    """``[stress.flood]``: book deltas that change nothing, per second and symbol."""

    rate: NonNegative = 0.0
    symbols: list[str] = []


class DisconnectPlan(_Table, frozen=True):
    """One ``[stress.disconnect.CLIENT_ID]``: when to drop that MQTT client."""

    at_s: list[NonNegative] = []
    mean_interval_s: NonNegative = 0.0


class StressSettings(_Table, frozen=True):
    """The ``[stress]`` table: every mode, all off by default (module docstring)."""

    seed: int = 1
    latency: LatencySettings = LatencySettings()
    reject: RejectSettings = RejectSettings()
    flood: FloodSettings = FloodSettings()
    disconnect: dict[str, DisconnectPlan] = {}

    @property
    def enabled(self) -> bool:
        """Return True if any mode is on."""
        return bool(
            self.latency.enabled
            or self.reject.enabled
            or self.flood.rate
            or self.disconnecting
        )

    @property
    def disconnecting(self) -> bool:
        """Return True if any client is to be disconnected."""
        return any(p.at_s or p.mean_interval_s for p in self.disconnect.values())

    def problems(self, accounts: set[str], symbols: set[str]) -> list[str]:
        """Return what the settings name that the server does not have."""
        found = []
        for table, names in (
            ("latency.accounts", self.latency.accounts),
            ("reject.accounts", self.reject.accounts),
        ):
            unknown = sorted(set(names) - accounts)
            if unknown:
                found.append(f"[stress.{table}] names unknown accounts: {unknown}")
        unknown = sorted(set(self.flood.symbols) - symbols)
        if unknown:
            found.append(f"[stress.flood] symbols names unknown markets: {unknown}")
        return found

    def as_json(self) -> str:
        """Return the settings as compact JSON (journaled by `DeclareStress`)."""
        return msgspec.json.encode(self).decode()

    def as_data(self) -> dict[str, object]:
        """Return the settings as plain data (for the log)."""
        data: dict[str, object] = msgspec.to_builtins(self)
        return data


# ---------------------------------------------------------------- the draws


class Delays:
    """The injected latency of each message, drawn per account or topic."""

    def __init__(self, settings: LatencySettings, seed: int) -> None:
        """Draw from ``settings``, each account's and topic's stream seeded apart."""
        self.settings = settings
        self.seed = seed
        self._streams: dict[tuple[str, str], random.Random] = {}

    def private(self, account: str) -> float | None:
        """Return the delay (seconds) of a private message now; None: none set."""
        latency = self.settings.accounts.get(account, self.settings.private)
        return None if latency is None else self._draw(latency, "private", account)

    def market(self, kind: str, symbol: str) -> float | None:
        """Return the delay (seconds) of a market-data message; None: none set."""
        latency = self.settings.market_data
        return None if latency is None else self._draw(latency, kind, symbol)

    def _draw(self, latency: Latency, kind: str, key: str) -> float:
        """Draw the next delay of one stream, in seconds."""
        rng = self._streams.get((kind, key))
        if rng is None:
            rng = self._streams[kind, key] = seeded(self.seed, "latency", kind, key)
        return latency.sample(rng) / 1000


class RejectInjector:
    """Decides, per account and seeded, which commands are refused on purpose."""

    def __init__(self, settings: RejectSettings, seed: int) -> None:
        """Refuse with ``settings``' probabilities, each account's draws apart."""
        self.settings = settings
        self.seed = seed
        self._streams: dict[str, random.Random] = {}

    def draw(self, account: str) -> bool:
        """Return True if ``account``'s next command is to be refused.

        Probability 0 never draws, and 1 always refuses.
        """
        chance = self.settings.accounts.get(account, self.settings.probability)
        if not chance:
            return False
        rng = self._streams.get(account)
        if rng is None:
            rng = self._streams[account] = seeded(self.seed, "reject", account)
        return rng.random() < chance
