r"""The transport protocol: how the client reaches a broker, or a venue in-process.

A transport moves opaque payloads on MQTT-style topics. The client drives it
as: ``connect()``, ``subscribe`` to its topics, then ``messages()`` until that
iterator raises `TransportError` (the link dropped; the client reconnects by
calling ``connect()`` again and resubscribing) or the client ``close()``s it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import NamedTuple, Protocol

__all__ = ["Message", "Transport", "TransportError"]


class Message(NamedTuple):
    """One payload received on a topic."""

    topic: str
    payload: bytes


class TransportError(Exception):
    """Raised by a transport when its link is down or drops."""


class Transport(Protocol):
    """A publish/subscribe link to the exchange (MQTT, or the in-process loopback)."""

    async def connect(self) -> None:
        """Open the link (again, after a drop); raise `TransportError` if it fails."""

    async def close(self) -> None:
        """Close the link for good; ``messages()`` then ends."""

    async def publish(self, topic: str, payload: bytes, qos: int) -> None:
        """Send ``payload`` on ``topic`` at MQTT ``qos`` (0 or 1)."""

    async def subscribe(self, topic: str, qos: int) -> None:
        """Receive what is published on ``topic`` (exact name) at up to ``qos``."""

    def messages(self) -> AsyncIterator[Message]:
        """Yield received messages in order; raise `TransportError` on a drop."""
        ...
