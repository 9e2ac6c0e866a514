"""What the test suite needs from outside the repository: skip, or fail in CI.

A test that needs something the repository does not hold (a broker, the shared
workload generator) calls `missing` when it is absent. The test is then
skipped with the reason; with ``PAPERX_REQUIRE_SERVICES=1`` (set by ``.ci/run``)
the same situation is a failure, so CI never passes by skipping.
"""

from __future__ import annotations

import importlib.util
import os
import socket
from typing import NoReturn

import pytest

REQUIRE_ENV = "PAPERX_REQUIRE_SERVICES"


def services_required() -> bool:
    """Return True when a missing service must fail the run instead of skipping."""
    return os.environ.get(REQUIRE_ENV, "") not in {"", "0", "false", "no"}


def missing(reason: str) -> NoReturn:
    """Skip the calling test for ``reason``, or fail it when services are required."""
    if services_required():
        pytest.fail(f"{REQUIRE_ENV} is set and {reason}")
    pytest.skip(reason)


NATS_URL = "nats://127.0.0.1:4222"
"""The JetStream server the NATS journal tests use (``.ci/run`` starts it)."""


def require_nats() -> None:
    """Skip (or fail, under required services) without nats-py or the NATS server."""
    if importlib.util.find_spec("nats") is None:
        missing("nats-py is not installed: pip install 'paperx[nats]'")
    try:
        socket.create_connection(("127.0.0.1", 4222), timeout=2).close()
    except OSError as exc:
        missing(
            f"no NATS server at 127.0.0.1:4222 ({exc.strerror or exc}); start it "
            "with: nats-server -a 127.0.0.1 -p 4222 -js"
        )
