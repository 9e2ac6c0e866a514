"""Integration-test plumbing: real services, skipped with a reason when absent.

A test that needs a service asks for it through `require_service`. Without
the service the test is skipped and says which one and how to start it;
with ``PAPERX_REQUIRE_SERVICES=1`` (set by ``.ci/run``) the same situation
is a failure, so CI always exercises the real servers.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable

import pytest

REQUIRE_ENV = "PAPERX_REQUIRE_SERVICES"

HOW_TO_START = {
    "mosquitto": "mosquitto -d -c /etc/mosquitto/mosquitto.conf",
    "nats": "nats-server -a 127.0.0.1 -p 4222 -js",
}


def services_required() -> bool:
    """Return True when a missing service must fail the run instead of skipping."""
    return os.environ.get(REQUIRE_ENV, "") not in ("", "0", "false", "no")


@pytest.fixture
def require_service() -> Callable[[str, str, int], None]:
    """Return a checker: ``require_service(name, host, port)`` skips or fails if down."""

    def check(name: str, host: str, port: int) -> None:
        try:
            with socket.create_connection((host, port), timeout=2):
                return
        except OSError as exc:
            reason = (f"{name} is not reachable on {host}:{port} ({exc.strerror or exc}); "
                      f"start it with: {HOW_TO_START.get(name, name)}")
        if services_required():
            pytest.fail(f"{REQUIRE_ENV} is set and {reason}")
        pytest.skip(reason)

    return check
