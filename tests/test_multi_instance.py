"""Two instances of one project behave as one service (`nox -s multi_instance`).

One full variant (openai, auth, Celery, nginx) is baked and installed once; two gunicorn
instances of it (APP_ENV=production) share one fresh PostgreSQL database and one Redis database,
behind a real nginx `upstream` (round robin) on loopback ports, with one Celery worker and a
local stand-in for the OpenAI API. Only the project's external contract is used: its commands,
settings and HTTP endpoints.

Needs PostgreSQL, Redis and nginx (see tests/test_variants.py for the addresses); without them
the module skips, under CI=true it fails instead.
"""

from __future__ import annotations

import http.client
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from test_variants import (  # the variants' own helpers: bake, environment, service addresses
    ADMIN_DATABASE_URL,
    REDIS_URL,
    bake,
    clean_env,
    cookiecutter_config,  # noqa: F401 - a fixture
    tail,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from harness import spare_port  # loopback ports that no outgoing connection is given

pytestmark = pytest.mark.variants

VARIANT = {"ai_provider": "openai", "use_auth": True, "use_celery": True, "use_nginx": True}
PACKAGE = "llm_service"
# The variants use 1-8 by default; two runs on one machine each need their own.
REDIS_DB = int(os.environ.get("MULTI_INSTANCE_REDIS_DB", "9"))
CI = os.environ.get("CI", "").lower() == "true"
START_WAIT = 60.0
RATE_LIMIT = 10  # RATE_LIMIT_DEFAULT per minute and client address
BUDGET = 150  # AI_TOKEN_BUDGET_DAILY
PROMPT_TOKENS, COMPLETION_TOKENS = 10, 5  # what the stub reports per call
CALL_TOKENS = PROMPT_TOKENS + COMPLETION_TOKENS
SETTINGS = {
    "APP_ENV": "production",
    "SECRET_KEY": "s" * 48,
    "JWT_SECRET_KEY": "j" * 48,
    "AI_PROVIDER": "openai",
    "AI_API_KEY": "test-key",
    "AI_MODEL": "stub-model",
    "AI_TIMEOUT": "20",
    "AI_MAX_RETRIES": "0",
    "AI_TOKEN_BUDGET_DAILY": str(BUDGET),
    "AI_CACHE_TTL": "0",
    "RATE_LIMIT_DEFAULT": f"{RATE_LIMIT} per minute",
    "RATE_LIMIT_AUTH": "1000 per minute",
    "RATE_LIMIT_AI": "1000 per minute",
    "CELERY_VISIBILITY_TIMEOUT": "2",
    "CELERY_RETRY_BACKOFF": "0.2",
    "LOG_LEVEL": "WARNING",
    "WEB_CONCURRENCY": "1",
    "GUNICORN_THREADS": "16",
    "GUNICORN_GRACEFUL_TIMEOUT": "30",
}
_addresses = (f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}" for n in itertools.count(1))


def new_address() -> str:
    """A client address of its own (X-Forwarded-For; the app trusts one proxy hop), so the
    per-address rate limit of one test never spends another's."""
    return next(_addresses)


def unavailable(reason: str) -> None:
    if CI:
        pytest.fail(f"CI=true, but {reason}", pytrace=False)
    pytest.skip(f"{reason}: the multi-instance tests need PostgreSQL, Redis and nginx")


# ----------------------------------------------------------------------------------- HTTP client


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: Any


def call(
    port: int,
    method: str,
    path: str,
    body: Any = None,
    token: str | None = None,
    address: str | None = None,
    timeout: float = 30,
) -> Reply:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    headers = {"X-Forwarded-For": address or new_address()}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        connection.request(method, path, body=data, headers=headers)
        response = connection.getresponse()
        raw = response.read()
        payload = json.loads(raw) if raw.startswith((b"{", b"[")) else raw.decode()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, payload)
    finally:
        connection.close()


def stream(port: int, body: Any, token: str, events: list[tuple[str, Any]]) -> int:
    """POST /api/v1/ai/stream; appends each server-sent event as it arrives."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {
        "Content-Type": "application/json",
        "Authorization": f"Bearer {token}",
        "X-Forwarded-For": new_address(),
    }
    try:
        connection.request("POST", "/api/v1/ai/stream", json.dumps(body).encode(), headers)
        response = connection.getresponse()
        name = "message"
        for raw in response:
            line = raw.decode().rstrip("\r\n")
            if line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                events.append((name, json.loads(line.split(":", 1)[1])))
                name = "message"
        return response.status
    finally:
        connection.close()


def ask(text: str) -> dict[str, Any]:
    """A completion request the stub answers as `text` tells it (see Stub). `max_tokens` keeps
    the budget reservation of each call (prompt + max_tokens) small."""
    return {
        "messages": [{"role": "user", "content": f"{text} id={uuid.uuid4().hex}"}],
        "max_tokens": COMPLETION_TOKENS,
    }


# ---------------------------------------------------------------------------- the OpenAI stand-in


@dataclass
class Call:
    content: str
    stream: bool
    start: float
    end: float | None = None


@dataclass
class Stub:
    """OpenAI chat completions on loopback. The last user message steers it: `delay=S` waits S
    seconds before answering, `chunks=N gap=S` streams N chunks S seconds apart."""

    calls: list[Call] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0

    def matching(self, marker: str) -> list[Call]:
        with self.lock:
            return [c for c in self.calls if marker in c.content]


def _number(content: str, name: str, default: float) -> float:
    match = re.search(rf"\b{name}=([\d.]+)", content)
    return float(match.group(1)) if match else default


def stub_handler(stub: Stub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            content = str(body["messages"][-1]["content"])
            record = Call(content, bool(body.get("stream")), time.monotonic())
            with stub.lock:
                stub.calls.append(record)
            time.sleep(_number(content, "delay", 0))
            base = {"id": "chatcmpl-stub", "created": int(time.time()), "model": body["model"]}
            usage = {
                "prompt_tokens": PROMPT_TOKENS,
                "completion_tokens": COMPLETION_TOKENS,
                "total_tokens": CALL_TOKENS,
            }
            try:
                if record.stream:
                    self._stream(base, usage, content)
                else:
                    message = {"role": "assistant", "content": "Hello from the stub."}
                    choice = {"index": 0, "message": message, "finish_reason": "stop"}
                    reply = {**base, "object": "chat.completion", "choices": [choice]}
                    data = json.dumps({**reply, "usage": usage}).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                return
            finally:
                record.end = time.monotonic()

        def _stream(self, base: dict[str, Any], usage: dict[str, int], content: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            chunks, gap = int(_number(content, "chunks", 3)), _number(content, "gap", 0)

            def send(delta: dict[str, Any], finish: str | None, **extra: Any) -> None:
                choices = [{"index": 0, "delta": delta, "finish_reason": finish}]
                chunk = {**base, "object": "chat.completion.chunk", "choices": choices, **extra}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()

            send({"role": "assistant", "content": ""}, None)
            for index in range(chunks):
                time.sleep(gap)
                send({"content": f"part{index} "}, None)
            send({}, "stop")
            final = {**base, "object": "chat.completion.chunk", "choices": [], "usage": usage}
            self.wfile.write(f"data: {json.dumps(final)}\n\n".encode())
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()

    return Handler


# -------------------------------------------------------------------------------------- services


@dataclass
class Service:
    project: Path
    env: dict[str, str]
    logs: Path
    stub: Stub
    ports: list[int]
    nginx_port: int
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    worker_starts: int = 0

    def spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        with (self.logs / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(
                args,
                cwd=self.project,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes[name] = process
        return process

    def start_api(self, index: int) -> None:
        port = self.ports[index]
        bin_dir = self.project / ".venv" / "bin"
        process = self.spawn(
            f"api{index}",
            [
                str(bin_dir / "gunicorn"),
                "-c",
                "gunicorn.conf.py",
                "--bind",
                f"127.0.0.1:{port}",
                f"{PACKAGE}:create_app()",
            ],
        )
        deadline = time.monotonic() + START_WAIT
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"api{index} exited at start:\n{self.log()}", pytrace=False)
            try:
                if call(port, "GET", "/health/ready", timeout=2).status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        pytest.fail(f"api{index} did not start:\n{self.log()}", pytrace=False)

    def start_worker(self) -> subprocess.Popen[bytes]:
        self.worker_starts += 1
        name = f"worker{self.worker_starts}"
        return self.spawn(
            name,
            [
                str(self.project / ".venv" / "bin" / "celery"),
                "-A",
                f"{PACKAGE}.tasks",
                "worker",
                "--pool=solo",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                f"--hostname={name}@%h",
            ],
        )

    def stop(self, name: str, sig: int = signal.SIGTERM, wait: float = 40) -> int | None:
        process = self.processes.get(name)
        if process is None or process.poll() is not None:
            return None if process is None else process.returncode
        process.send_signal(sig)
        try:
            return process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait()

    def log(self) -> str:
        return "\n".join(
            f"== {path.name}\n{tail(path.read_text(errors='replace'), 30)}"
            for path in sorted(self.logs.glob("*.log"))
        )


def nginx_conf(directory: Path, listen: int, upstreams: list[int]) -> Path:
    for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (directory / "temp" / name).mkdir(parents=True, exist_ok=True)
    servers = "".join(f"        server 127.0.0.1:{port};\n" for port in upstreams)
    conf = directory / "nginx.conf"
    conf.write_text(
        f"""daemon off;
worker_processes 1;
pid {directory}/nginx.pid;
error_log {directory}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {directory}/temp/body;
    proxy_temp_path {directory}/temp/proxy;
    fastcgi_temp_path {directory}/temp/fastcgi;
    uwsgi_temp_path {directory}/temp/uwsgi;
    scgi_temp_path {directory}/temp/scgi;
    upstream app {{
{servers}        keepalive 8;
    }}
    server {{
        listen 127.0.0.1:{listen};
        location / {{
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto http;
            add_header X-Upstream $upstream_addr always;
        }}
    }}
}}
""",
        encoding="utf-8",
    )
    return conf


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    try:
        import psycopg

        admin = psycopg.connect(ADMIN_DATABASE_URL, autocommit=True, connect_timeout=5)
    except Exception as exc:
        unavailable(f"PostgreSQL is not reachable at {ADMIN_DATABASE_URL} ({exc})")
    name = f"multi_{uuid.uuid4().hex[:10]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"{ADMIN_DATABASE_URL.rsplit('/', 1)[0]}/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def redis_url() -> str:
    url = f"{REDIS_URL}/{REDIS_DB}"
    try:
        import redis

        redis.Redis.from_url(url, socket_connect_timeout=5).flushdb()
    except Exception as exc:
        unavailable(f"Redis is not reachable at {url} ({exc})")
    return url


@pytest.fixture(scope="module")
def nginx() -> str:
    binary = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if binary is None:
        unavailable("no nginx binary on PATH")
    assert binary is not None
    return binary


@pytest.fixture(scope="module")
def stub() -> Iterator[Stub]:
    stub = Stub()
    server = ThreadingHTTPServer(("127.0.0.1", 0), stub_handler(stub))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    stub.port = int(server.server_address[1])
    yield stub
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def service(
    database: str,
    redis_url: str,
    nginx: str,
    stub: Stub,
    cookiecutter_config: Path,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Service]:
    uv = shutil.which("uv")
    assert uv, "uv is not on PATH"
    workdir = tmp_path_factory.mktemp("multi")
    project = bake(VARIANT, workdir / "project", cookiecutter_config)
    env = {
        **clean_env(project),
        **SETTINGS,
        "DATABASE_URL": database,
        "REDIS_URL": redis_url,
        "AI_BASE_URL": f"http://127.0.0.1:{stub.port}/v1",
        "PYTHONPYCACHEPREFIX": str(workdir / "pycache"),
    }
    for args in (
        [uv, "venv", "-q", "--python", sys.executable, ".venv"],
        [uv, "pip", "install", "-q", "--python", ".venv/bin/python", "-e", ".", "--group", "dev"],
        [str(project / ".venv" / "bin" / "alembic"), "upgrade", "head"],
    ):
        result = subprocess.run(
            args, cwd=project, env=env, capture_output=True, text=True, timeout=600, check=False
        )
        if result.returncode != 0:
            pytest.fail(f"{' '.join(args[:3])} failed:\n{tail(result.stdout + result.stderr)}")
    logs = workdir / "logs"
    logs.mkdir()
    service = Service(project, env, logs, stub, [spare_port(), spare_port()], spare_port())
    try:
        with ThreadPoolExecutor(2) as pool:  # both instances import the app at once
            list(pool.map(service.start_api, range(2)))
        service.start_worker()
        conf = nginx_conf(workdir / "nginx", service.nginx_port, service.ports)
        service.spawn("nginx", [nginx, "-p", str(conf.parent), "-c", str(conf)])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if call(service.nginx_port, "GET", "/health/live", timeout=2).status == 200:
                    break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail(f"nginx did not start:\n{service.log()}", pytrace=False)
        yield service
    finally:
        for name in list(service.processes):
            service.stop(name, wait=10)


@pytest.fixture(scope="module")
def user(service: Service) -> dict[str, Any]:
    """One signed-up user (on instance 0)."""
    return register(service.ports[0])


def register(port: int) -> dict[str, Any]:
    email = f"user-{uuid.uuid4().hex[:8]}@example.com"
    credentials = {"email": email, "password": "a-long-password", "full_name": "Multi"}
    reply = call(port, "POST", "/api/v1/auth/register", credentials)
    assert reply.status == 201, reply.body
    return reply.body["data"]


# ----------------------------------------------------------------------------------------- tests


def test_rate_limit_holds_across_instances(service: Service, user: dict[str, Any]) -> None:
    """Through nginx (round robin, one client address): the 11th request is refused, whichever
    instance answers it, and both instances answered."""
    token = user["access_token"]
    statuses, upstreams = [], set()
    for _ in range(RATE_LIMIT + 1):
        # nginx sets X-Forwarded-For to its client: 127.0.0.1 for every request.
        reply = call(service.nginx_port, "GET", "/api/v1/items", token=token)
        statuses.append(reply.status)
        upstreams.add(reply.headers.get("x-upstream"))
    assert statuses == [200] * RATE_LIMIT + [429], statuses
    assert reply.body["code"] == "rate_limited"
    assert "retry-after" in reply.headers
    assert upstreams == {f"127.0.0.1:{port}" for port in service.ports}, upstreams


def test_logout_on_one_instance_revokes_on_the_other(service: Service) -> None:
    first, second = service.ports
    session = register(first)
    token = session["access_token"]
    assert call(second, "GET", "/api/v1/users/me", token=token).status == 200
    assert call(first, "POST", "/api/v1/auth/logout", token=token).status == 200
    reply = call(second, "GET", "/api/v1/users/me", token=token)
    assert reply.status == 401, reply.body
    assert reply.body["code"] == "token_revoked"


def test_budget_is_not_overspent_by_concurrent_calls(service: Service) -> None:
    """Calls of one user spread over both instances, several at a time, each taking a while:
    once the day's tokens reach the budget no new call reaches the provider; only the calls in
    flight at that moment may go past it."""
    token = register(service.ports[0])["access_token"]
    marker = f"budget-{uuid.uuid4().hex[:8]}"
    results: list[tuple[int, int, str | None]] = []
    lock = threading.Lock()

    def caller(index: int) -> None:
        for round_ in range(5):
            port = service.ports[(index + round_) % 2]
            reply = call(port, "POST", "/api/v1/ai/complete", ask(f"{marker} delay=0.3"), token)
            with lock:
                results.append((port, reply.status, reply.body.get("code")))
            if reply.status != 200:
                return

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(caller, range(6)))
    ok = [port for port, status, _ in results if status == 200]
    refused = [code for _, status, code in results if status != 200]
    assert set(ok) == set(service.ports), results  # both instances served calls
    assert refused, results
    assert set(refused) == {"budget_exceeded"}, results

    calls = sorted(service.stub.matching(marker), key=lambda c: c.end or 0)
    assert len(calls) == len(ok)
    used, reached = 0, None
    for upstream in calls:
        used += CALL_TOKENS
        if used >= BUDGET:
            reached = upstream.end
            break
    assert reached is not None, f"{len(ok)} calls never reached the budget of {BUDGET}"
    in_flight = [c for c in calls if c.start <= reached < (c.end or 0)]
    late = [c for c in calls if c.start > reached + 0.25]
    assert not late, f"{len(late)} calls reached the provider after the budget was spent"
    usage = call(service.ports[1], "GET", "/api/v1/ai/usage", token=token).body["data"]
    assert usage["today_tokens"] == len(ok) * CALL_TOKENS
    assert usage["today_tokens"] <= BUDGET + len(in_flight) * CALL_TOKENS, (usage, in_flight)
    for port in service.ports:
        reply = call(port, "POST", "/api/v1/ai/complete", ask("after"), token=token)
        assert reply.status == 429
        assert reply.body["code"] == "budget_exceeded"


def wait_for_job(port: int, task_id: str, token: str, wait: float = 45) -> dict[str, Any]:
    deadline = time.monotonic() + wait
    data: dict[str, Any] = {}
    while time.monotonic() < deadline:
        reply = call(port, "GET", f"/api/v1/tasks/{task_id}", token=token)
        assert reply.status == 200, reply.body
        data = reply.body["data"]
        if data["status"] in ("SUCCESS", "FAILURE"):
            return data
        time.sleep(0.2)
    return data


def test_job_queued_on_one_instance_is_visible_on_the_other(
    service: Service, user: dict[str, Any]
) -> None:
    token = user["access_token"]
    reply = call(service.ports[0], "POST", "/api/v1/ai/jobs", ask("job"), token=token)
    assert reply.status == 202, reply.body
    task_id = reply.body["data"]["task_id"]
    data = wait_for_job(service.ports[1], task_id, token)
    assert data["status"] == "SUCCESS", f"{data}\n{service.log()}"
    assert data["result"]["content"] == "Hello from the stub."
    assert call(service.ports[0], "GET", f"/api/v1/tasks/{task_id}", token=token).body["data"][
        "status"
    ] == ("SUCCESS")


def test_killed_worker_loses_no_job(service: Service) -> None:
    """SIGKILL mid-job: nothing is acknowledged, the job goes back on the queue after
    CELERY_VISIBILITY_TIMEOUT (2 s) and the next worker completes it."""
    token = register(service.ports[0])["access_token"]
    marker = f"killed-{uuid.uuid4().hex[:8]}"
    reply = call(service.ports[0], "POST", "/api/v1/ai/jobs", ask(f"{marker} delay=3"), token=token)
    task_id = reply.body["data"]["task_id"]
    deadline = time.monotonic() + 30
    while not service.stub.matching(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert service.stub.matching(marker), f"the worker never started the job\n{service.log()}"
    service.stop(f"worker{service.worker_starts}", signal.SIGKILL)
    service.start_worker()
    data = wait_for_job(service.ports[1], task_id, token)
    assert data["status"] == "SUCCESS", f"{data}\n{service.log()}"
    assert len(service.stub.matching(marker)) >= 2  # run again after the kill


def test_sigterm_finishes_requests_and_streams_in_flight(
    service: Service, user: dict[str, Any]
) -> None:
    """SIGTERM to an instance (what Kubernetes sends after preStop): the request and the stream it
    is serving complete before it exits. Runs last: instance 1 stays down."""
    token = user["access_token"]
    port = service.ports[1]
    slow, streamed = f"slow-{uuid.uuid4().hex[:8]}", f"stream-{uuid.uuid4().hex[:8]}"
    events: list[tuple[str, Any]] = []
    with ThreadPoolExecutor(2) as pool:
        request = pool.submit(
            call, port, "POST", "/api/v1/ai/complete", ask(f"{slow} delay=2"), token
        )
        streaming = pool.submit(stream, port, ask(f"{streamed} chunks=6 gap=0.4"), token, events)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (
            service.stub.matching(slow) and any(name == "delta" for name, _ in events)
        ):
            time.sleep(0.02)
        assert service.stub.matching(slow), f"the request is not in flight\n{service.log()}"
        assert events, f"the stream is not in flight\n{service.log()}"
        started = time.monotonic()
        service.processes["api1"].send_signal(signal.SIGTERM)
        reply = request.result(timeout=40)
        status = streaming.result(timeout=40)
    exit_code = service.processes["api1"].wait(timeout=40)
    assert reply.status == 200, reply.body
    assert reply.body["data"]["content"] == "Hello from the stub."
    assert status == 200
    deltas = [data["content"] for name, data in events if name == "delta"]
    assert "".join(deltas).split() == [f"part{i}" for i in range(6)], events
    assert events[-1][0] == "done", events
    assert exit_code == 0, service.log()
    assert time.monotonic() - started < 30  # within GUNICORN_GRACEFUL_TIMEOUT
    with pytest.raises(ConnectionRefusedError):
        call(port, "GET", "/health/live", timeout=2)
    assert call(service.ports[0], "GET", "/health/live").status == 200
