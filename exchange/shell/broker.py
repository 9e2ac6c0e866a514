"""The embedded MQTT broker: amqtt on loopback, in a thread of its own.

``paperx serve`` without ``--broker`` starts it so that one command is enough
on a fresh machine. It runs on its own event loop in its own thread, never
on the exchange's loop (it costs tens of microseconds of CPU per message),
binds 127.0.0.1 only (amqtt's default is every interface), and loads only
the plugins it needs: with no ``users``, anonymous login (only local
processes can reach it); with ``users`` (MQTT username -> ``$7$`` password
hash, from ``paperx accounts add``), the same lock as Mosquitto's password
file and ACL (`exchange.shell.broker_plugins`). Real deployments use
Mosquitto (``deploy/``).
asyncio sets TCP_NODELAY on the broker's accepted sockets itself.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

from exchange.errors import ConfigError
from exchange.gateway.acl import EXCHANGE_USER
from exchange.logs import get_logger

__all__ = ["EmbeddedBroker"]

_log = get_logger(__name__)
_START_TIMEOUT_S = 10.0
_PLUGINS = "exchange.shell.broker_plugins"


class EmbeddedBroker:
    """An amqtt broker bound to 127.0.0.1, started and stopped from any thread."""

    def __init__(
        self,
        port: int = 1883,
        host: str = "127.0.0.1",
        users: dict[str, str] | None = None,
        exchange_user: str = EXCHANGE_USER,
    ) -> None:
        """Configure the listener; `start` binds it (port 0: any free port).

        ``users`` (username -> ``$7$`` hash) turns on passwords and the ACL,
        ``exchange_user`` naming the exchange's own login among them.
        """
        self.host = host
        self.port = port
        self.users = users
        self.exchange_user = exchange_user
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        """Return the broker's address as an ``mqtt://`` URL."""
        return f"mqtt://{self.host}:{self.port}"

    def start(self) -> None:
        """Start the broker's thread and return once it listens.

        Raises:
            ConfigError: if it cannot listen (e.g. the port is taken).
        """
        # amqtt logs every connection at INFO: the exchange's logs come first.
        for noisy in ("amqtt", "transitions"):  # its state machine, at INFO
            logging.getLogger(noisy).setLevel(logging.WARNING)
        self._thread = threading.Thread(
            target=self._main, name="paperx.broker", daemon=True
        )
        self._thread.start()
        if not self._started.wait(_START_TIMEOUT_S) or self._error is not None:
            msg = f"the embedded broker cannot listen on {self.url}: {self._error!r}"
            raise ConfigError(msg) from self._error
        _log.info("broker_started", url=self.url, embedded=True)

    def stop(self) -> None:
        """Stop the broker (it disconnects its clients) and join its thread."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stop.set)
        if self._thread is not None:
            self._thread.join(_START_TIMEOUT_S)
        _log.info("broker_stopped", url=self.url)

    def _main(self) -> None:
        """Run the broker's loop in this thread until `stop`."""
        try:
            asyncio.run(self._serve())
        except Exception as exc:  # noqa: BLE001 -- reported to the starting thread
            self._error = exc
            self._started.set()

    async def _serve(self) -> None:
        """Start the broker, report the bound port, wait for the stop event."""
        from amqtt.broker import Broker  # noqa: PLC0415 -- only when embedded

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        broker = Broker(self._config())
        await broker.start()
        # amqtt does not expose the bound port; port 0 needs the real one.
        server: Any = broker._servers["default"].instance  # noqa: SLF001
        self.port = server.sockets[0].getsockname()[1]
        self._started.set()
        try:
            await self._stop.wait()
        finally:
            await broker.shutdown()

    def _config(self) -> dict[str, Any]:
        """Return amqtt's configuration: one TCP listener and its lock."""
        plugins: dict[str, Any] = {
            "amqtt.plugins.authentication.AnonymousAuthPlugin": {
                "allow_anonymous": True
            }
        }
        if self.users is not None:
            plugins = {
                f"{_PLUGINS}.PasswordPlugin": {"users": dict(self.users)},
                f"{_PLUGINS}.AclPlugin": {"exchange_user": self.exchange_user},
            }
        return {
            "listeners": {
                "default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}
            },
            "plugins": plugins,
        }
