"""A TCP port of 127.0.0.1 that nothing listens on right now: for a server a test starts, or for a
broker URL that must refuse connections."""

from __future__ import annotations

import socket


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
