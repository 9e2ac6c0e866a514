"""``paperx serve`` and a Mosquitto of one's own, as child processes.

The demo runs the exchange this way (its own process, so the bots in the
parent and the exchange each get a core of their own), and so do the load
test, the benchmarks and the integration tests. The server child starts in a
session of its own: Ctrl-C in the terminal reaches only the parent, which
then stops the child with one SIGTERM (a second signal would make it exit at
once, without draining). `Mosquitto` runs a broker on a free loopback port,
never a shared one, so a run may kill and restart it.
"""

from __future__ import annotations

import getpass
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

import exchange
from exchange.shell.loopback import free_port, listening

__all__ = ["Mosquitto", "ServerProcess", "VenueError", "free_port", "wait_listening"]

TIMEOUT_S = 15.0  # for what takes milliseconds to seconds; only a hang hits it
_SOURCE = Path(exchange.__file__).resolve().parents[1]


# A broker for one run: loopback only, Nagle off (a QoS 1 round trip costs
# tens of ms with it), and a QoS 1 window and queue as wide as deploy/'s.
OPEN_BROKER = (
    "allow_anonymous true\n"
    "set_tcp_nodelay true\n"
    "persistence false\n"
    "max_inflight_messages 1024\n"
    "max_queued_messages 100000\n"
)


class VenueError(RuntimeError):
    """The broker or the server did not start or stop as it should."""


def wait_listening(port: int, timeout: float = TIMEOUT_S) -> None:
    """Return once 127.0.0.1:port accepts connections.

    Raises:
        VenueError: nothing listened within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while not listening(port):
        if time.monotonic() > deadline:
            msg = f"nothing listens on 127.0.0.1:{port}"
            raise VenueError(msg)
        time.sleep(0.01)  # polling a port that is being opened


class Mosquitto:
    """A Mosquitto of the caller's own on a free loopback port.

    ``settings`` are its config lines (a password file and an ACL, say; a
    ``listener 1883`` among them is dropped); without them it lets anyone in
    (`OPEN_BROKER`). `start` runs it, `kill` kills it at once (SIGKILL: no
    goodbye to its clients) and `start` again restarts it on the same port,
    with nothing remembered. As a context manager it runs for the block.
    """

    def __init__(self, directory: Path, settings: str = "") -> None:
        """Write the config into ``directory``; `start` runs the broker.

        Raises:
            VenueError: Mosquitto is not installed.
        """
        binary = shutil.which("mosquitto")
        if binary is None:
            msg = "mosquitto is not installed (apt-get install mosquitto)"
            raise VenueError(msg)
        self.binary = binary
        self.port = free_port()
        self.url = f"mqtt://127.0.0.1:{self.port}"
        text = (settings or OPEN_BROKER).replace("listener 1883", "")
        # run as our user: started as root, Mosquitto would switch to user
        # "mosquitto", who may not read a private temporary directory
        text += f"listener {self.port} 127.0.0.1\nuser {getpass.getuser()}\n"
        directory.mkdir(parents=True, exist_ok=True)
        self.config = directory / f"mosquitto-{self.port}.conf"
        self.config.write_text(text, encoding="utf-8")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        """Run the broker and return once it listens."""
        self.process = subprocess.Popen(  # noqa: S603 -- our own broker, our config
            [self.binary, "-c", str(self.config)], stderr=subprocess.DEVNULL
        )
        wait_listening(self.port)
        return self

    def kill(self) -> None:
        """Kill the broker at once, if it runs."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(TIMEOUT_S)
        self.process = None

    def __enter__(self) -> Self:
        """Run the broker for the block."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the broker."""
        self.kill()


class ServerProcess:
    """A running ``paperx serve --config FILE``; its log entries as dicts.

    With ``broker`` it uses that external broker; without, it starts the
    embedded one on ``embedded_port``. Every log line is kept in `log` as
    it is read (and copied to ``log_file`` if given).
    """

    def __init__(
        self,
        config: Path,
        broker: str | None = None,
        embedded_port: int | None = None,
        *,
        log_file: IO[str] | None = None,
        extra: tuple[str, ...] = (),
    ) -> None:
        """Start the server; `wait_for` ``"server_ready"`` before trading.

        ``extra``: more ``paperx serve`` options (a replay, say).
        """
        command = [sys.executable, "-m", "exchange.cli", "serve", "--config"]
        command.append(str(config))
        if broker:
            command += ["--broker", broker]
        elif embedded_port is not None:
            command += ["--embedded-port", str(embedded_port)]
        command += extra
        # the child imports the same paperx as this process
        path = os.pathsep.join(
            filter(None, [str(_SOURCE), os.environ.get("PYTHONPATH")])
        )
        self.process = subprocess.Popen(  # noqa: S603 -- our own command line
            command,
            stdin=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": path},
            start_new_session=True,
        )
        self.lines: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.log: list[dict[str, Any]] = []
        self._log_file = log_file
        self._reader = threading.Thread(
            target=self._read, name="paperx.server-log", daemon=True
        )
        self._reader.start()

    def _read(self) -> None:
        """Pass every log line on as a dict; None when the child's stderr closes."""
        assert self.process.stderr is not None
        for raw in self.process.stderr:
            text = raw.decode(errors="replace")
            if self._log_file is not None:
                self._log_file.write(text)
            try:
                self.lines.put(json.loads(text))
            except ValueError:  # a traceback, say: kept as text
                self.lines.put({"event": "text", "text": text})
        self.lines.put(None)

    def wait_for(self, event: str, timeout: float = TIMEOUT_S) -> dict[str, Any]:
        """Return the first log entry named ``event`` not read before.

        Raises:
            VenueError: the server exited first, or ``timeout`` passed.
        """
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None:
                recent = [entry.get("text", entry) for entry in self.log[-5:]]
                msg = f"paperx serve ended or hung before {event!r}: {recent}"
                raise VenueError(msg)
            self.log.append(line)
            if line.get("event") == event:
                return line

    def stop(
        self, signum: int = signal.SIGTERM, timeout: float = TIMEOUT_S
    ) -> dict[str, Any]:
        """Signal the server, wait for it to exit 0, return its stop entry.

        Raises:
            VenueError: it did not log ``server_stopped`` or exit 0.
        """
        self.process.send_signal(signum)
        stopped = self.wait_for("server_stopped", timeout)
        code = self.process.wait(timeout)
        if code:
            msg = f"paperx serve exited with code {code}"
            raise VenueError(msg)
        return stopped

    def kill(self) -> None:
        """Kill the server if it still runs, and close its pipe."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(TIMEOUT_S)
        self._reader.join(TIMEOUT_S)
        assert self.process.stderr is not None
        self.process.stderr.close()

    def __enter__(self) -> Self:
        """Use the server for the block."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Kill the server if the block left it running."""
        self.kill()
