"""The embedded MQTT broker: amqtt on loopback, in a process of its own.

``paperx serve`` without ``--broker`` starts it so that one command is enough
on a fresh machine. amqtt is pure Python and costs tens of microseconds of
CPU per message: in a thread of the exchange's process it fought the
exchange for the GIL, and a 16-bot load fell from ~1,900 answered orders/s
(Mosquitto) to ~140/s. So it runs in a child process (forked, so it starts
in milliseconds), on the other core. It binds 127.0.0.1 only (amqtt's
default is every interface) and loads only the plugins it needs: with no
``users``, anonymous login (only local processes can reach it); with
``users`` (MQTT username -> ``$7$`` password hash, from ``paperx accounts
add``), the same lock as Mosquitto's password file and ACL
(`exchange.shell.broker_plugins`). Real deployments use Mosquitto
(``deploy/``).

The child stops when told to, and when its parent is gone (the end of the
pipe between them), so a killed exchange never leaves a broker behind.
asyncio sets TCP_NODELAY on the broker's accepted sockets itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import getpass
import logging
import multiprocessing
import shutil
import signal
import subprocess
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from exchange.errors import ConfigError
from exchange.gateway.acl import EXCHANGE_USER, acl_file_text
from exchange.logs import get_logger
from exchange.shell.loopback import free_port, listening

__all__ = ["EmbeddedBroker", "PrivateMosquitto", "embedded_broker"]

_log = get_logger(__name__)
_START_TIMEOUT_S = 10.0
_PLUGINS = "exchange.shell.broker_plugins"
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


class EmbeddedBroker:
    """An amqtt broker bound to 127.0.0.1 in a child process."""

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
        self._process: multiprocessing.process.BaseProcess | None = None
        self._pipe: Connection | None = None

    @property
    def url(self) -> str:
        """Return the broker's address as an ``mqtt://`` URL."""
        return f"mqtt://{self.host}:{self.port}"

    def start(self) -> None:
        """Start the broker's process and return once it listens.

        Raises:
            ConfigError: if it cannot listen (e.g. the port is taken).
        """
        context = multiprocessing.get_context("fork")
        ours, theirs = context.Pipe()
        self._process = context.Process(
            target=_run, args=(self._config(), theirs, ours), name="paperx-broker"
        )
        self._process.start()
        theirs.close()  # the child's end: our copy would hide the child's exit
        self._pipe = ours
        answer: tuple[str, Any] = ("error", "no answer")
        if ours.poll(_START_TIMEOUT_S):
            try:
                answer = ours.recv()
            except EOFError:
                answer = ("error", "it exited")
        if answer[0] != "port":
            self.stop()
            msg = f"the embedded broker cannot listen on {self.url}: {answer[1]}"
            raise ConfigError(msg)
        self.port = answer[1]
        _log.info("broker_started", url=self.url, embedded=True)

    def stop(self) -> None:
        """Stop the broker (it disconnects its clients) and wait for its process."""
        if self._pipe is not None:
            self._pipe.close()  # the child's stop signal: the end of the pipe
            self._pipe = None
        process, self._process = self._process, None
        if process is not None:
            process.join(_START_TIMEOUT_S)
            if process.is_alive():
                process.kill()
                process.join(_START_TIMEOUT_S)
            _log.info("broker_stopped", url=self.url)

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


def _run(config: dict[str, Any], pipe: Connection, parents: Connection) -> None:
    """Serve in the child process until the pipe to the parent ends.

    ``parents`` is the parent's end, which the fork copied: closed here, so
    that the parent's exit (or its close) ends the pipe.
    """
    parents.close()
    # amqtt logs every connection at INFO: the exchange's logs come first.
    for noisy in ("amqtt", "transitions"):  # its state machine, at INFO
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        asyncio.run(_serve(config, pipe))
    except Exception as exc:  # noqa: BLE001 -- reported to the parent
        pipe.send(("error", repr(exc)))


async def _serve(config: dict[str, Any], pipe: Connection) -> None:
    """Start the broker, send the bound port, run until the pipe closes."""
    from amqtt.broker import Broker  # noqa: PLC0415 -- only when embedded

    broker = Broker(config)
    await broker.start()
    # amqtt does not expose the bound port; port 0 needs the real one.
    server: Any = broker._servers["default"].instance  # noqa: SLF001
    pipe.send(("port", server.sockets[0].getsockname()[1]))
    ended = asyncio.Event()
    asyncio.get_running_loop().add_reader(pipe.fileno(), ended.set)
    try:
        await ended.wait()  # the parent closed its end, or exited
    finally:
        await broker.shutdown()


def embedded_broker(
    kind: str,
    port: int,
    users: dict[str, str] | None = None,
    exchange_user: str = EXCHANGE_USER,
) -> EmbeddedBroker | PrivateMosquitto:
    """Return the embedded broker ``kind`` names, not started.

    ``auto`` is a private Mosquitto when the ``mosquitto`` binary is
    installed (C: ~30x the messages per CPU second of amqtt, which falls
    behind above a few hundred orders a second), else amqtt.
    """
    if kind == "mosquitto" or (kind == "auto" and shutil.which("mosquitto")):
        return PrivateMosquitto(port, users, exchange_user)
    return EmbeddedBroker(port, users=users, exchange_user=exchange_user)


class PrivateMosquitto:
    """The installed Mosquitto as the exchange's own broker, on 127.0.0.1.

    Configured as the embedded amqtt one: anonymous without ``users``, else
    their ``$7$`` password hashes and the exchange's topic ACL
    (`exchange.gateway.acl`), in files of a temporary directory of its own.
    Nagle off, QoS 1 window and queue as wide as deploy/'s, nothing kept on
    disk. The child dies with the exchange (Linux's parent-death signal),
    so a killed exchange leaves no broker behind.
    """

    def __init__(
        self,
        port: int = 1883,
        users: dict[str, str] | None = None,
        exchange_user: str = EXCHANGE_USER,
    ) -> None:
        """Configure it; `start` runs it (port 0: a free one, picked now).

        Raises:
            ConfigError: Mosquitto is not installed.
        """
        binary = shutil.which("mosquitto")
        if binary is None:
            msg = "mosquitto is not installed: apt-get install mosquitto"
            raise ConfigError(msg)
        self.binary = binary
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.users = users
        self.exchange_user = exchange_user
        self._directory: tempfile.TemporaryDirectory[str] | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Return the broker's address as an ``mqtt://`` URL."""
        return f"mqtt://{self.host}:{self.port}"

    def start(self) -> None:
        """Run Mosquitto and return once it listens.

        Raises:
            ConfigError: it exited or did not listen within 10 s.
        """
        self._directory = tempfile.TemporaryDirectory(prefix="paperx-broker-")
        config = Path(self._directory.name) / "mosquitto.conf"
        config.write_text(self._config(Path(self._directory.name)), encoding="utf-8")
        self._process = subprocess.Popen(  # noqa: S603 -- the installed broker
            [self.binary, "-c", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 -- no threads yet
        )
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not listening(self.port):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                msg = f"the embedded Mosquitto cannot listen on {self.url}"
                raise ConfigError(msg)
            time.sleep(0.01)  # polling a port being opened
        _log.info("broker_started", url=self.url, embedded="mosquitto")

    def stop(self) -> None:
        """Stop Mosquitto and remove its files."""
        process, self._process = self._process, None
        if process is not None:
            process.terminate()
            try:
                process.wait(_START_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(_START_TIMEOUT_S)
            _log.info("broker_stopped", url=self.url)
        if self._directory is not None:
            self._directory.cleanup()
            self._directory = None

    def _config(self, directory: Path) -> str:
        """Return mosquitto.conf, writing the password and ACL files beside it."""
        lines = [
            f"listener {self.port} {self.host}",
            # as our own user: started as root, Mosquitto would switch to its
            # own, which clears the parent-death signal (and may not read
            # a private temporary directory)
            f"user {getpass.getuser()}",
            "set_tcp_nodelay true",
            "persistence false",
            "max_inflight_messages 1024",
            "max_queued_messages 100000",
        ]
        if self.users is None:
            return "\n".join([*lines, "allow_anonymous true"]) + "\n"
        passwords = directory / "passwd"
        passwords.write_text(
            "".join(f"{user}:{hashed}\n" for user, hashed in self.users.items()),
            encoding="utf-8",
        )
        acl = directory / "acl"
        acl.write_text(acl_file_text(self.exchange_user), encoding="utf-8")
        lines += [
            "allow_anonymous false",
            f"password_file {passwords}",
            f"acl_file {acl}",
        ]
        return "\n".join(lines) + "\n"


def _die_with_parent() -> None:
    """In the child, before exec: have Linux kill it when its parent dies."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
