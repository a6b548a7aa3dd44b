"""Loopback ports for the servers the tests start, which nothing else can take first.

A port found by binding port 0 and closing the socket again comes from the kernel's ephemeral
range, the range it also gives the local end of every outgoing connection: in a busy run a
connection to PostgreSQL or Redis can take that port before the server binds it, and the server
exits with "Address already in use". So gunicorn inherits a socket already bound (its `fd://`
bind), and a server that binds its own (nginx, chromedriver, the fault tests' relay, which
listens again on its port after a cut) gets a port from below the ephemeral range.
"""

from __future__ import annotations

import random
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APP = "{{ cookiecutter.package_name }}:create_app()"
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


def start_gunicorn(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], int]:
    """gunicorn with the project's gunicorn.conf.py, serving a loopback socket bound here."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        env = {**env, "GUNICORN_BIND": f"fd://{sock.fileno()}"}
        with log.open("wb") as output:
            process = subprocess.Popen(  # noqa: S603 - our own interpreter and config
                [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), APP],
                cwd=ROOT,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                pass_fds=(sock.fileno(),),
            )
    return process, port
