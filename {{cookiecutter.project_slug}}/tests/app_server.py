"""The service under gunicorn, for the tests that need it in processes of its own: one for the
whole session, started by the first test that asks for `service`, traced.

As in production, gunicorn's worker builds the app after the fork, on a loopback socket bound
here and inherited (gunicorn's `fd://` bind): no other process can take its port between
choosing it and listening on it (see ports.py for the servers that bind their own). It runs
with `test_settings` and `served_settings`, logs JSON lines at INFO, and sends its spans over
OTLP/HTTP to `receiver`, which decodes them as a collector would, every 50 ms
(OTEL_BSP_SCHEDULE_DELAY). A tracer provider is set once per process and the tests' own apps
never trace, which is why the traced service runs apart. Other tests (e.g. nginx's) use the same
service, so a test finds its own request's spans by the request's id (`Service.trace_of`).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

ROOT = Path(__file__).resolve().parents[1]
APP = "{{ cookiecutter.package_name }}:create_app()"
SERVICE_NAME = "traced-service"  # OTEL_SERVICE_NAME, instead of the project's name
WAIT = 20.0  # seconds for spans and log lines to arrive
START_WAIT = 120.0  # a loaded machine can take long to import the app; normally it is 1-2 s


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
                start_new_session=True,  # its own process group: see `Service.stop`
            )
    return process, port


def _documented_settings() -> frozenset[str]:
    """The variables .env.example documents, set or commented out: the project's settings."""
    lines = (ROOT / ".env.example").read_text(encoding="utf-8").splitlines()
    return frozenset(
        match[1] for line in lines if (match := re.match(r"#? ?([A-Z][A-Z0-9_]*)=", line))
    )


def environment(settings: dict[str, Any]) -> dict[str, str]:
    """The environment of a service process with these settings and none of the caller's: its
    settings variables and OpenTelemetry's are left out, the rest (PATH, HOME, ...) kept."""
    documented = _documented_settings()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in documented and not key.startswith("OTEL_")
    }
    for key, value in settings.items():
        if isinstance(value, str | int | float):  # lists and None have no place in the env
            env[key.upper()] = str(value)
    return env


# --- the receiver of the spans ------------------------------------------------------------------


@dataclass(frozen=True)
class ReceivedSpan:
    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict[str, Any]
    status: int
    events: tuple[str, ...]
    service: str


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(item) for item in value.array_value.values]
    return getattr(value, kind) if kind else None


class Receiver:
    """An OTLP/HTTP endpoint on a loopback port: every span of every export it is sent."""

    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def receive(self, body: bytes) -> None:
        export = ExportTraceServiceRequest.FromString(body)
        received = []
        for resource_spans in export.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    received.append(
                        ReceivedSpan(
                            name=span.name,
                            kind=span.kind,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_id=span.parent_span_id.hex(),
                            attributes={a.key: _value(a.value) for a in span.attributes},
                            status=span.status.code,
                            events=tuple(event.name for event in span.events),
                            service=str(resource.get("service.name")),
                        )
                    )
        with self.lock:
            self.spans += received

    def wait_for(
        self, found: Callable[[list[ReceivedSpan]], list[ReceivedSpan]], what: str
    ) -> list[ReceivedSpan]:
        """`found(spans)` once it is not empty: the spans a test is waiting for."""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            with self.lock:
                spans = list(self.spans)
            result = found(spans)
            if result:
                return result
            time.sleep(0.05)
        names = sorted({span.name for span in spans})
        pytest.fail(f"{what} did not arrive in {WAIT:.0f} s; the spans received: {names}")


def _handler_for(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.path != "/v1/traces":
                self.send_error(404)
                return
            receiver.receive(body)
            reply = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

    return Handler


# --- the service ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    request_id: str  # the X-Request-ID it was sent with


class Service:
    """gunicorn with the project's gunicorn.conf.py on a loopback port, one worker."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        self.process, self.port = start_gunicorn({**env, "WEB_CONCURRENCY": "1"}, log)
        self._wait_until_up()

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + START_WAIT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"gunicorn exited at start:\n{self.log.read_text()[-3000:]}")
            try:
                if self.request("GET", "/health/live").status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        pytest.fail(f"gunicorn is not up after {START_WAIT:.0f} s:\n{self.log.read_text()[-3000:]}")

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> Reply:
        """One request, with an X-Request-ID of its own."""
        request_id = uuid.uuid4().hex
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            payload = None if body is None else json.dumps(body)
            sent = {
                **(headers or {}),
                "Content-Type": "application/json",
                "X-Request-ID": request_id,
            }
            connection.request(method, path, body=payload, headers=sent)
            response = connection.getresponse()
            return Reply(response.status, response.read(), request_id)
        finally:
            connection.close()

    def log_lines(self) -> list[dict[str, Any]]:
        lines = []
        for line in self.log.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                lines.append(json.loads(line))
        return lines

    def access_line(self, request_id: str) -> dict[str, Any]:
        """The access log line of the request sent with `request_id`, once it is written."""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            for line in self.log_lines():
                if line.get("logger") == "access" and line.get("request_id") == request_id:
                    return line
            time.sleep(0.05)
        pytest.fail(f"no access log line of request {request_id} in {WAIT:.0f} s")

    def trace_of(self, request_id: str) -> str:
        """The id of the trace of the request sent with `request_id` (its log lines carry it)."""
        trace_id: str = self.access_line(request_id)["trace_id"]
        return trace_id

    def stop(self) -> None:
        """gunicorn's quick shutdown, then SIGKILL to whatever of its process group is left.

        The master gives a worker GUNICORN_GRACEFUL_TIMEOUT to exit before it kills it, longer
        than this waits: a worker slower than that to exit would outlive a killed master, with
        no one left to stop it."""
        self.process.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError):  # the master took its workers with it
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    receiver.thread.start()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


@pytest.fixture(scope="session")
def tracing_settings(receiver: Receiver) -> dict[str, Any]:
    """What makes a service process trace, to `receiver`."""
    return {
        "otel_exporter_otlp_endpoint": receiver.endpoint,
        "otel_service_name": SERVICE_NAME,
        "otel_bsp_schedule_delay": 50,  # milliseconds between exports
    }


@pytest.fixture(scope="session")
def service(
    database_url: str,
    test_settings: dict[str, Any],
    served_settings: dict[str, Any],
    tracing_settings: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Service]:
    settings = {
        **test_settings,
        **served_settings,
        **tracing_settings,
        "database_url": database_url,
        "log_level": "INFO",
        "log_format": "json",
    }
    log = tmp_path_factory.mktemp("service") / "gunicorn.log"
    service = Service(environment(settings), log)
    yield service
    service.stop()
