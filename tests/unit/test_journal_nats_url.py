"""Naming a NATS journal: the ``nats://host:port/STREAM`` URL (no server needed)."""

from __future__ import annotations

import pytest

from exchange.errors import JournalError
from exchange.journal import is_nats_url
from exchange.journal.nats import parse_nats_url


def test_a_url_names_server_stream_and_subjects() -> None:
    """Host, port and stream come from the URL; the port defaults to 4222."""
    address = parse_nats_url("nats://10.0.0.5/ORDERS")
    assert (address.server, address.stream, address.replicas) == (
        "nats://10.0.0.5:4222",
        "ORDERS",
        1,
    )
    assert address.header_subject == "paperx.ORDERS.header"
    assert address.records_subject == "paperx.ORDERS.records"
    assert parse_nats_url("nats://h:4333/S-1?replicas=3").replicas == 3


@pytest.mark.parametrize(
    "url",
    [
        "nats://127.0.0.1:4222",
        "nats://127.0.0.1:4222/",
        "http://127.0.0.1:4222/S",
        "nats://127.0.0.1:4222/a.b",
        "nats://127.0.0.1:4222/S?replicas=9",
        "nats://127.0.0.1:4222/S?replicas=x",
        "nats://127.0.0.1:4222/S?storage=memory",
    ],
)
def test_a_malformed_url_is_refused(url: str) -> None:
    """A URL without a stream, with a bad name or an unknown option raises."""
    with pytest.raises(JournalError):
        parse_nats_url(url)


def test_only_a_nats_url_string_names_a_stream() -> None:
    """Directories, paths and other schemes are not NATS journals."""
    assert is_nats_url("nats://127.0.0.1:4222/S")
    assert not is_nats_url("runs/demo")
    assert not is_nats_url("natsdir/x")
