"""The venue under test: a Mosquitto of the run's own and a ``paperx serve`` child.

Both are started on loopback only. The Mosquitto listens on a free port with
``set_tcp_nodelay true`` (the shared broker on 1883 lacks it, and without it
a QoS 1 round trip costs tens of milliseconds) and a QoS 1 window and queue
as wide as the ones deploy/ configures. The server is ``python -m
exchange.cli serve`` with a config written for the run: one account per bot
(deposits large enough that margin never binds), and its JSON log is read
for ``server_ready`` and ``server_stopped`` (the final state hash).
"""

from __future__ import annotations

import getpass
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any, Self

__all__ = [
    "Mosquitto",
    "ServerProcess",
    "VenueError",
    "account_secret",
    "free_port",
    "write_server_config",
]

_TIMEOUT_S = 30.0
_REPO = Path(__file__).resolve().parents[2]


class VenueError(RuntimeError):
    """The broker or the server did not start or stop as it should."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def account_secret(account: str) -> str:
    """Return the API secret the load test gives ``account`` (a throwaway venue)."""
    return f"{account}-loadtest-secret"


def write_server_config(
    directory: Path,
    accounts: list[str],
    markets: dict[str, tuple[str, str, str]],
    fsync: str,
    *,
    deposit: str = "1000000000",
) -> Path:
    """Write the run's server config; return its path.

    ``markets``: symbol -> (tick, lot, start price of the index walk).
    """
    lines = ["[server]", 'journal = "journal"', f'fsync = "{fsync}"', "[feed.start]"]
    lines += [f'{symbol} = "{start}"' for symbol, (_, _, start) in markets.items()]
    for symbol, (tick, lot, _) in markets.items():
        lines += [f"[markets.{symbol}]", f'tick_size = "{tick}"', f'lot_size = "{lot}"']
    for name in accounts:
        lines += [
            f'[accounts."{name}"]',
            f'api_key = "{name}-key"',
            f'secret = "{account_secret(name)}"',
            f'deposit = "{Decimal(deposit)}"',
        ]
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "paperx.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _wait_listening(port: int) -> None:
    """Return once 127.0.0.1:port accepts connections."""
    deadline = time.monotonic() + _TIMEOUT_S
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError as exc:
            if time.monotonic() > deadline:
                msg = f"nothing listens on 127.0.0.1:{port}"
                raise VenueError(msg) from exc
            time.sleep(0.02)  # polling a port being opened
        else:
            return


class Mosquitto:
    """A Mosquitto of the run's own on a free loopback port (a context manager)."""

    def __init__(self, directory: Path) -> None:
        """Write its config into ``directory``; entering starts it."""
        binary = shutil.which("mosquitto")
        if binary is None:
            msg = "mosquitto is not installed (apt-get install mosquitto)"
            raise VenueError(msg)
        self.binary = binary
        self.port = free_port()
        self.url = f"mqtt://127.0.0.1:{self.port}"
        directory.mkdir(parents=True, exist_ok=True)
        self.config = directory / "mosquitto.conf"
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "set_tcp_nodelay true\n"
            "persistence false\n"
            "max_inflight_messages 1024\n"
            "max_queued_messages 100000\n"
            f"user {getpass.getuser()}\n",
            encoding="utf-8",
        )
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Self:
        """Start the broker and return once it listens."""
        self.process = subprocess.Popen(  # noqa: S603 -- our own broker, our config
            [self.binary, "-c", str(self.config)], stderr=subprocess.DEVNULL
        )
        _wait_listening(self.port)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the broker."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(_TIMEOUT_S)


class ServerProcess:
    """``paperx serve`` as a child process (a context manager: killed on exit)."""

    def __init__(self, config: Path, broker: str | None) -> None:
        """Prepare the command: ``broker`` external, or None for the embedded one."""
        self.config = config
        self.embedded_port = 0 if broker else free_port()
        self.url = broker or f"mqtt://127.0.0.1:{self.embedded_port}"
        self.command = [
            sys.executable,
            "-m",
            "exchange.cli",
            "serve",
            "--config",
            str(config),
        ]
        self.command += (
            ["--broker", broker]
            if broker
            else ["--embedded-port", str(self.embedded_port)]
        )
        self.process: subprocess.Popen[bytes] | None = None
        self.lines: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._reader: threading.Thread | None = None

    @property
    def pid(self) -> int:
        """Return the server's process id (for a profiler)."""
        assert self.process is not None
        return self.process.pid

    def __enter__(self) -> Self:
        """Start the server and return once it logs ``server_ready``."""
        path = os.pathsep.join(filter(None, [str(_REPO), os.environ.get("PYTHONPATH")]))
        self.process = subprocess.Popen(  # noqa: S603 -- our own command line
            self.command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": path},
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.wait_for("server_ready")
        return self

    def _read(self) -> None:
        """Pass the server's JSON log lines on; None once its stderr closes."""
        assert self.process is not None
        assert self.process.stderr is not None
        for raw in self.process.stderr:
            try:
                entry = json.loads(raw)
            except ValueError:
                entry = {"event": "text", "text": raw.decode(errors="replace")}
            if isinstance(entry, dict) and entry.get("event") in {
                "server_ready",
                "server_stopped",
                "text",
                "broker_unreachable",
            }:
                self.lines.put(entry)
        self.lines.put(None)

    def wait_for(self, event: str, timeout: float = _TIMEOUT_S) -> dict[str, Any]:
        """Return the server's first log entry named ``event``.

        Raises:
            VenueError: the server exited (or stayed silent) first.
        """
        deadline = time.monotonic() + timeout
        seen: list[str] = []
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty as exc:
                msg = f"paperx serve did not log {event} within {timeout:g} s"
                raise VenueError(msg) from exc
            if line is None:
                msg = f"paperx serve exited before {event}: {' '.join(seen[-5:])}"
                raise VenueError(msg)
            if line.get("event") == event:
                return line
            seen.append(str(line.get("text", line)))

    def stop(self) -> dict[str, Any]:
        """Stop the server as SIGTERM does; return its ``server_stopped`` entry."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        stopped = self.wait_for("server_stopped", timeout=120.0)
        self.process.wait(_TIMEOUT_S)
        return stopped

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Kill the server if it still runs; close its log pipe."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(_TIMEOUT_S)
        if self._reader is not None:
            self._reader.join(_TIMEOUT_S)
        if self.process.stderr is not None:
            self.process.stderr.close()
