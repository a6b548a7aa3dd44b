"""A TCP relay in front of a real service, to cut it away and bring it back (fault tests).

`require(variable)` gives the real service's URL from the environment; without it the test
skips, except under CI=true, where a missing service fails the run.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from typing import NoReturn

import pytest

from .ports import spare_port


def require(variable: str) -> str:
    """A real service's URL; skips without it, but fails under CI=true (CI has the services)."""
    value = os.environ.get(variable)
    if value:
        return value
    require_service(f"{variable} is not set: set it to run the fault tests against a real service")


def require_service(reason: str) -> NoReturn:
    """Skip for `reason` (a missing service); fail under CI=true (CI has the services)."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed by the other side
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        _close(source)
        _close(sink)


class Relay:
    """A TCP relay on a loopback port in front of a real service.

    `cut()` closes the port and drops every open connection, as when the service goes away;
    `restore()` listens on the same port again.
    """

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        # Outside the ephemeral range: no outgoing connection takes it while the relay is cut.
        self.port = spare_port()
        self._listener: socket.socket | None = None
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.restore()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.05)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        with self._lock:
            connections, self._connections = self._connections, set()
        for connection in connections:
            _close(connection)

    def _accept(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _close(client)
                continue
            client.settimeout(None)
            upstream.settimeout(None)
            with self._lock:
                self._connections |= {client, upstream}
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pipe, args=(source, sink), daemon=True).start()
