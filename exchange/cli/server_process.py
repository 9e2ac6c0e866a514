"""``paperx serve`` as a child process whose JSON log the parent reads.

The demo runs the exchange this way (its own process, so the bots in the
parent and the exchange each get a core of their own), and the integration
tests do too. The child starts in a session of its own: Ctrl-C in the
terminal reaches only the parent, which then stops the child with one
SIGTERM (a second signal would make it exit at once, without draining).
"""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

import exchange

__all__ = ["ServerProcess", "free_port"]

TIMEOUT_S = 15.0  # for what takes milliseconds to seconds; only a hang hits it
_SOURCE = Path(exchange.__file__).resolve().parents[1]


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
            RuntimeError: the server exited first, or ``timeout`` passed.
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
                raise RuntimeError(msg)
            self.log.append(line)
            if line.get("event") == event:
                return line

    def stop(
        self, signum: int = signal.SIGTERM, timeout: float = TIMEOUT_S
    ) -> dict[str, Any]:
        """Signal the server, wait for it to exit 0, return its stop entry.

        Raises:
            RuntimeError: it did not log ``server_stopped`` or exit 0.
        """
        self.process.send_signal(signum)
        stopped = self.wait_for("server_stopped", timeout)
        code = self.process.wait(timeout)
        if code:
            msg = f"paperx serve exited with code {code}"
            raise RuntimeError(msg)
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
