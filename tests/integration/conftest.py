"""Integration-test plumbing: real services, skipped with a reason when absent.

A test that needs a service asks for it through `require_service`. Without
the service the test is skipped and says which one and how to start it;
with ``PAPERX_REQUIRE_SERVICES=1`` (set by ``.ci/run``) the same situation
is a failure, so CI always exercises the real servers (see ``services.py``).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from serve_rig import (
    PASSWORD,
    REPO,
    Mosquitto,
    Server,
    Start,
    free_port,
    write_config,
)
from services import NATS_URL, missing, require_nats

from exchange.journal.nats import delete_nats_journal

HOW_TO_START = {
    "mosquitto": "mosquitto -d -c /etc/mosquitto/mosquitto.conf",
    "nats": "nats-server -a 127.0.0.1 -p 4222 -js",
}


@pytest.fixture
def require_service() -> Callable[[str, str, int], None]:
    """Return ``require_service(name, host, port)``: it skips or fails if down."""

    def check(name: str, host: str, port: int) -> None:
        try:
            with socket.create_connection((host, port), timeout=2):
                return
        except OSError as exc:
            missing(
                f"{name} is not reachable on {host}:{port} ({exc.strerror or exc}); "
                f"start it with: {HOW_TO_START.get(name, name)}"
            )

    return check


@pytest.fixture(params=["mosquitto", "embedded"])
def broker(
    request: pytest.FixtureRequest,
    require_service: Callable[[str, str, int], None],
) -> tuple[str | None, int, str]:
    """Return (external URL or None, embedded port, the URL bots connect to)."""
    if request.param == "mosquitto":
        require_service("mosquitto", "127.0.0.1", 1883)
        return "mqtt://127.0.0.1:1883", 0, "mqtt://127.0.0.1:1883"
    port = free_port()
    return None, port, f"mqtt://127.0.0.1:{port}"


@pytest.fixture
def names() -> tuple[str, str]:
    """Return two account names no other test or run uses."""
    tag = uuid.uuid4().hex[:8]
    return f"alice-{tag}", f"bob-{tag}"


@pytest.fixture
def start(
    tmp_path: Path, broker: tuple[str | None, int, str], names: tuple[str, str]
) -> Iterator[Start]:
    """Return ``start(directory)``: a ready server with that config directory."""
    servers: list[Server] = []

    def run(directory: Path) -> Server:
        config = directory / "paperx.toml"
        if not config.exists():
            write_config(directory, list(names))
        # the embedded one is amqtt here: the installed Mosquitto would be
        # picked by default, and the embedded-mosquitto tests cover that
        extra = () if broker[0] else ("--embedded-broker", "amqtt")
        server = Server(config, broker[0], broker[1], extra=extra)
        servers.append(server)
        server.wait_for("server_ready")
        return server

    yield run
    for server in servers:
        server.kill()
    assert tmp_path.exists()


@pytest.fixture
def url(broker: tuple[str | None, int, str]) -> str:
    """Return the URL the bots connect to."""
    return broker[2]


@pytest.fixture
def locked_broker(tmp_path: Path) -> Iterator[str]:
    """Run Mosquitto with deploy/mosquitto's config on a free port; yield its URL."""
    passwd = shutil.which("mosquitto_passwd")
    if passwd is None:
        missing("mosquitto_passwd is not installed")
    store = tmp_path / "passwd"
    for n, user in enumerate(("paperx", "alice", "bob")):
        create = ["-c"] if n == 0 else []
        subprocess.run(  # noqa: S603 -- the test's own broker tool
            [passwd, *create, "-b", str(store), user, PASSWORD], check=True
        )
    text = (REPO / "deploy/mosquitto/mosquitto.conf").read_text(encoding="utf-8")
    text = text.replace("/mosquitto/config/passwd", str(store))
    text = text.replace("/mosquitto/config/acl", str(REPO / "deploy/mosquitto/acl"))
    broker = Mosquitto(tmp_path, text).start()
    try:
        yield broker.url
    finally:
        broker.kill()


@pytest.fixture
def nats_journal() -> Iterator[str]:
    """Return the URL of a fresh JetStream journal, deleted (with its snapshots) after.

    Skips (or fails, under required services) without the NATS server.
    """
    require_nats()
    url = f"{NATS_URL}/paperx-it-{uuid.uuid4().hex[:12]}"
    yield url
    delete_nats_journal(url)
