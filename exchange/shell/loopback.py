"""Ports on 127.0.0.1: a free one to listen on, and whether one is listened on.

The embedded brokers, the server child and the test and benchmark rigs all
start listeners on loopback and wait for them.
"""

from __future__ import annotations

import socket

__all__ = ["free_port", "listening"]


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listening(port: int) -> bool:
    """Return True if something accepts connections on 127.0.0.1:``port``."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True
