"""The stress modes at work in ``paperx serve``: what the server wires, in one place.

`StressModes` turns the ``[stress]`` settings (`exchange.gateway.stress`)
into the parts the server uses: the outbox (a `DelayedOutbox` when latency
is injected), the session's reject injector, the flood and disconnect
tasks, and the journal record of the settings. With every mode off it gives
the plain outbox, no injector, no task and no record: the server is then
exactly what it is without stress.

Journaled as config: when any mode is on, the server journals a
`DeclareStress` record with the settings (a no-op for the core, so rebuild,
rerun and verify give the same state hash) and logs them as
``stress_settings``, once per start, after the first deposits.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from exchange.gateway.delay import DelayedOutbox
from exchange.gateway.flood import run_flood
from exchange.gateway.outbox import Outbox
from exchange.gateway.session import Session
from exchange.gateway.stress import Delays, RejectInjector, StressSettings
from exchange.logs import get_logger
from exchange.messages import Command, DeclareStress
from exchange.shell.disconnects import run_disconnects

__all__ = ["StressModes"]

_log = get_logger(__name__)

Task = tuple[str, Coroutine[Any, Any, Any]]
"""A task for the server's TaskGroup: its name and its coroutine."""


class StressModes:
    """The parts of the server that the stress settings change."""

    def __init__(self, settings: StressSettings, symbols: list[str]) -> None:
        """Use ``settings`` on a server trading ``symbols`` (the flood's default)."""
        self.settings = settings
        self.symbols = symbols
        self.injector = (
            RejectInjector(settings.reject, settings.seed)
            if settings.reject.enabled
            else None
        )

    def outbox(self, private_limit: int, market_limit: int) -> Outbox:
        """Return the server's outbox: delaying messages if latency is injected."""
        latency = self.settings.latency
        if not latency.enabled:
            return Outbox(private_limit, market_limit)
        delays = Delays(latency, self.settings.seed)
        return DelayedOutbox(delays, private_limit, market_limit)

    async def declare(self, submit: Callable[[Command], Awaitable[object]]) -> None:
        """Journal and log the settings in effect (nothing if every mode is off)."""
        if not self.settings.enabled:
            return
        _log.info("stress_settings", **self.settings.as_data())
        await submit(DeclareStress(settings=self.settings.as_json()))

    def tasks(
        self,
        session: Session,
        outbox: Outbox,
        url: str,
        login: tuple[str | None, str | None],
    ) -> list[Task]:
        """Return the flood and disconnect tasks to run (none if those are off).

        ``login`` is the exchange's MQTT (username, password), for the
        take-overs of the forced disconnects.
        """
        settings = self.settings
        tasks: list[Task] = []
        flood = settings.flood
        if flood.rate:
            symbols = flood.symbols or self.symbols
            tasks.append(
                (
                    "paperx.stress.flood",
                    run_flood(session, outbox, flood, symbols, settings.seed),
                )
            )
        if settings.disconnecting:
            tasks.append(
                (
                    "paperx.stress.disconnects",
                    run_disconnects(url, settings.disconnect, settings.seed, *login),
                )
            )
        return tasks
