"""Loopback ports for the servers the tests start that bind their own (nginx, chromedriver,
the fault tests' relay), which nothing else can take first.

A port found by binding port 0 and closing the socket again comes from the kernel's ephemeral
range, the range it also gives the local end of every outgoing connection: in a busy run a
connection to PostgreSQL or Redis can take that port before the server binds it, and the server
exits with "Address already in use". A port from below that range is never given to a
connection, so it stays free until the server binds it (and, for the relay, while it is cut).
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

# Below Linux's default ephemeral range (32768-60999) and macOS's (49152-65535).
SPARE_PORTS = range(20000, 32768)
_GIVEN: set[int] = set()  # handed out already: two servers started together need two ports


def _ephemeral_ports() -> range:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    except OSError:  # not Linux: the range SPARE_PORTS already avoids
        return range(0)
    return range(int(low), int(high) + 1)


def spare_port() -> int:
    """A loopback port that nothing listens on and no outgoing connection will be given."""
    ephemeral = _ephemeral_ports()
    candidates = [port for port in SPARE_PORTS if port not in ephemeral and port not in _GIVEN]
    for port in random.sample(candidates, min(len(candidates), 50)):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _GIVEN.add(port)
        return port
    # None left (or the ephemeral range covers them all here): the kernel's choice after all.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
