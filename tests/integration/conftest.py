"""Integration-test plumbing: real services, skipped with a reason when absent.

A test that needs a service asks for it through `require_service`. Without
the service the test is skipped and says which one and how to start it;
with ``PAPERX_REQUIRE_SERVICES=1`` (set by ``.ci/run``) the same situation
is a failure, so CI always exercises the real servers (see ``services.py``).
"""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest
from services import missing

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
