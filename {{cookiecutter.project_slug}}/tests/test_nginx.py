"""The shipped nginx config, run for real in front of a live gunicorn of the app.

A copy of nginx/ is started on loopback ports: only the upstream address and the listen ports
are replaced, and the temp paths point into a temp directory so that nginx runs without root.
The copy also ignores the app's X-Accel-Buffering header, so that streaming is shown to come
from the nginx config itself.
Needs an `nginx` binary on PATH; without one the module skips (under CI=true it fails).
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

{%- if cookiecutter.ai_provider != "none" %}

from {{ cookiecutter.package_name }}.playground.views import CONTENT_SECURITY_POLICY

from .upstream import Text, Upstream
{%- endif %}

ROOT = Path(__file__).resolve().parents[1]
SITE_CONF = "conf.d/{{ cookiecutter.project_slug }}.conf"
MAX_BODY = 1024 * 1024  # client_max_body_size 1m == the app's MAX_CONTENT_LENGTH default
BURST = 20  # limit_req ... burst=20 on /api/


def _nginx_binary() -> str:
    # Debian and Ubuntu install it in /usr/sbin, which a normal user's PATH may lack.
    binary = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if binary is None:
        reason = "nginx is not on PATH: install it (e.g. apt-get install nginx) to run these tests"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (CI=true: required)")
        pytest.skip(reason)
    return binary


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_until_up(
    process: subprocess.Popen[bytes], log: Path, ready: Callable[[], bool], what: str
) -> None:
    # Generous: a loaded CI machine can take long to import the app; normally it is 1-2 s.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{what} exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if ready():
                return
        except OSError:
            pass
        time.sleep(0.1)
    pytest.fail(f"{what} is not up after 120 s:\n{log.read_text()[-3000:]}")


def _listens(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


def _answers(port: int) -> bool:
    """A worker has loaded the app and serves (binding the port comes earlier)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", "/health/live")
        return connection.getresponse().status == 200
    finally:
        connection.close()


def _stop(process: subprocess.Popen[bytes], stop_signal: int = signal.SIGTERM) -> None:
    process.send_signal(stop_signal)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _write_certificate(directory: Path) -> Path:
    """A self-signed certificate for localhost / 127.0.0.1, as nginx/certs/ expects it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "privkey.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_path = directory / "fullchain.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return cert_path


@dataclass
class Proxy:
    """The running nginx: its ports, the CA to trust, and its access log."""

    http_port: int
    https_port: int
    cafile: Path
    access_log: Path

    def connection(
        self, timeout: float = 30, client: str = "127.0.0.1"
    ) -> http.client.HTTPSConnection:
        """A connection from `client`: any 127.x.y.z address is this machine too."""
        context = ssl.create_default_context(cafile=str(self.cafile))
        context.verify_flags &= ~ssl.VERIFY_X509_STRICT
        return http.client.HTTPSConnection(
            "127.0.0.1",
            self.https_port,
            context=context,
            timeout=timeout,
            source_address=(client, 0),
        )

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> tuple[http.client.HTTPResponse, bytes]:
        headers = dict(headers or {})
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
        connection = self.connection()
        try:
            connection.request(method, path, body=data, headers=headers)
            response = connection.getresponse()
            return response, response.read()
        finally:
            connection.close()

    def log_entry(self, request_id: str) -> dict[str, Any]:
        """The access log line of a request (nginx writes it just after the response)."""
        deadline = time.monotonic() + 5
        while True:
            for line in self.access_log.read_text().splitlines():
                entry: dict[str, Any] = json.loads(line)
                if entry["request_id"] == request_id:
                    return entry
            assert time.monotonic() < deadline, f"no access log line for {request_id}"
            time.sleep(0.05)


# --- servers, started once for the module ---------------------------------------------


@pytest.fixture(scope="module")
def nginx_binary() -> str:
    return _nginx_binary()


{%- if cookiecutter.ai_provider != "none" %}


@pytest.fixture(scope="module")
def slow_upstream() -> Iterator[Upstream]:
    """The AI provider stand-in; it streams its reply in timed chunks."""
    upstream = Upstream().start()
    yield upstream
    upstream.stop()
{%- endif %}


@pytest.fixture(scope="module")
def app_port(
    database_url: str,
    tmp_path_factory: pytest.TempPathFactory,
{%- if cookiecutter.ai_provider != "none" %}
    slow_upstream: Upstream,
{%- endif %}
) -> Iterator[int]:
    """gunicorn with the project's gunicorn.conf.py on a loopback port, on the test database."""
    port = _free_port()
    log = tmp_path_factory.mktemp("gunicorn") / "gunicorn.log"
    env = {
        **os.environ,
        "APP_ENV": "testing",
        "SECRET_KEY": "nginx-test-secret-key-that-is-long-enough-0123",
{%- if cookiecutter.use_auth %}
        "JWT_SECRET_KEY": "nginx-test-jwt-secret-key-that-is-long-enough",
{%- endif %}
        "DATABASE_URL": database_url,
        "AUTO_MIGRATE": "false",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "1",
        "GUNICORN_THREADS": "8",
        "LOG_LEVEL": "WARNING",
        # nginx's own limits are under test here, not the app's.
        "RATE_LIMIT_DEFAULT": "10000 per minute",
{%- if cookiecutter.use_auth %}
        "RATE_LIMIT_AUTH": "10000 per minute",
{%- endif %}
{%- if cookiecutter.ai_provider != "none" %}
        "RATE_LIMIT_AI": "10000 per minute",
        "AI_PROVIDER": "{{ cookiecutter.ai_provider }}",
        "AI_API_KEY": "test-key",
        "AI_BASE_URL": slow_upstream.root,
        "AI_MAX_RETRIES": "0",
        "PLAYGROUND_ENABLED": "true",
{%- endif %}
    }
    env.pop("REDIS_URL", None)
    if os.environ.get("TEST_REDIS_URL"):
        env["REDIS_URL"] = os.environ["TEST_REDIS_URL"]
    with log.open("wb") as output:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and config
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                str(ROOT / "gunicorn.conf.py"),
                "{{ cookiecutter.package_name }}:create_app()",
            ],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_up(process, log, lambda: _answers(port), "gunicorn")
        yield port
    finally:
        _stop(process, signal.SIGINT)  # gunicorn's quick shutdown: no draining keepalives


@dataclass
class LocalConfig:
    """A copy of nginx/ set up to run here: its directory and the ports it listens on."""

    prefix: Path
    http_port: int
    https_port: int


@pytest.fixture(scope="module")
def local_config(
    nginx_binary: str, tmp_path_factory: pytest.TempPathFactory, app_port: int
) -> LocalConfig:
    """A copy of nginx/ on loopback ports, with test certificates and temp paths of its own."""
    prefix = tmp_path_factory.mktemp("nginx") / "nginx"
    shutil.copytree(ROOT / "nginx", prefix)
    http_port, https_port = _free_port(), _free_port()
    site = prefix / SITE_CONF
    text = site.read_text()
    for shipped, local in {
        "server api:8000;": f"server 127.0.0.1:{app_port};",
        "listen 80 default_server;": f"listen 127.0.0.1:{http_port} default_server;",
        "listen 443 ssl;": f"listen 127.0.0.1:{https_port} ssl;",
    }.items():
        assert text.count(shipped) == 1, f"{SITE_CONF} no longer has exactly one {shipped!r}"
        text = text.replace(shipped, local)
    site.write_text(text)
    # Without root nginx cannot write its built-in temp paths; relative ones land in the prefix.
    (prefix / "conf.d/00-local.conf").write_text(
        "".join(
            f"{kind}_temp_path temp/{kind};\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        + "proxy_ignore_headers X-Accel-Buffering;\n"
    )
    (prefix / "temp").mkdir()
    _write_certificate(prefix / "certs")
    return LocalConfig(prefix, http_port, https_port)


def _nginx_command(binary: str, prefix: Path, *extra: str) -> list[str]:
    directives = f"pid {prefix / 'nginx.pid'};"
    if os.geteuid() == 0:
        # Workers would drop to "nobody", who cannot enter pytest's private temp directories.
        directives += " user root;"
    if "-t" not in extra:
        directives += " daemon off;"
    config = str(prefix / "nginx.conf")
    return [binary, "-p", f"{prefix}/", "-c", config, "-e", "stderr", "-g", directives, *extra]


@pytest.fixture(scope="module")
def proxy(nginx_binary: str, local_config: LocalConfig) -> Iterator[Proxy]:
    prefix = local_config.prefix
    access_log = prefix / "access.log"
    error_log = prefix / "error.log"
    with access_log.open("wb") as stdout, error_log.open("wb") as stderr:
        process = subprocess.Popen(  # noqa: S603 - the nginx found on PATH
            _nginx_command(nginx_binary, prefix), stdout=stdout, stderr=stderr
        )
    try:
        _wait_until_up(process, error_log, lambda: _listens(local_config.https_port), "nginx")
        yield Proxy(
            http_port=local_config.http_port,
            https_port=local_config.https_port,
            cafile=prefix / "certs/fullchain.pem",
            access_log=access_log,
        )
    finally:
        _stop(process)


@pytest.fixture
def proxy_auth(proxy: Proxy) -> dict[str, str]:
{%- if cookiecutter.use_auth %}
    """A fresh user's bearer token, obtained through the proxy."""
    response, body = proxy.request(
        "POST",
        "/api/v1/auth/register",
        {
            "email": f"nginx-{uuid.uuid4().hex[:12]}@example.com",
            "password": "correct horse battery",
            "full_name": "Nginx Test",
        },
    )
    assert response.status == 201, body
    return {"Authorization": f"Bearer {json.loads(body)['data']['access_token']}"}
{%- else %}
    """No auth in this project: every route is open."""
    return {}
{%- endif %}


# --- the tests, in the order they run ---------------------------------------------------


def test_nginx_accepts_the_shipped_config(nginx_binary: str, local_config: LocalConfig) -> None:
    result = subprocess.run(  # noqa: S603 - the nginx found on PATH
        _nginx_command(nginx_binary, local_config.prefix, "-t"),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def test_json_request_passes_with_security_headers(
    proxy: Proxy, proxy_auth: dict[str, str]
) -> None:
    request_id = f"nginx-test-{uuid.uuid4().hex}"
    response, body = proxy.request(
        "POST",
        "/api/v1/items",
        {"title": "Through the proxy"},
        headers={**proxy_auth, "X-Request-ID": request_id},
    )

    assert response.status == 201, body
    payload = json.loads(body)
    assert payload["success"] is True
    assert payload["data"]["title"] == "Through the proxy"
    assert response.getheader("X-Request-ID") == request_id
    assert response.getheader("Strict-Transport-Security", "").startswith("max-age=")
    assert response.getheader("X-Content-Type-Options") == "nosniff"
    assert response.getheader("X-Frame-Options") == "DENY"
    assert response.getheader("Referrer-Policy") == "no-referrer"
    assert "default-src 'none'" in response.getheader("Content-Security-Policy", "")


def test_docs_get_a_policy_that_lets_swagger_ui_run(proxy: Proxy) -> None:
    response, body = proxy.request("GET", "/docs/")

    assert response.status == 200, body
    policy = response.getheader("Content-Security-Policy", "")
    assert "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert response.getheader("X-Content-Type-Options") == "nosniff"


def test_plain_http_redirects_to_https_but_serves_probes(proxy: Proxy) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", proxy.http_port, timeout=10)
    try:
        connection.request("GET", "/api/v1/items")
        redirect = connection.getresponse()
        redirect.read()
        connection.request("GET", "/health/live")
        probe = connection.getresponse()
        probe_body = probe.read()
    finally:
        connection.close()

    assert redirect.status == 301
    assert redirect.getheader("Location", "").startswith("https://")
    assert redirect.getheader("Strict-Transport-Security") is None
    assert probe.status == 200
    assert json.loads(probe_body) == {"status": "ok"}


def test_health_probes_stay_out_of_the_access_log(proxy: Proxy) -> None:
    marker = uuid.uuid4().hex
    for path in ("/health", "/health/live", "/health/ready"):
        response, _ = proxy.request("GET", path, headers={"X-Request-ID": f"probe-{marker}"})
        assert response.status in (200, 503)
    proxy.request("GET", "/openapi.json", headers={"X-Request-ID": f"api-{marker}"})

    assert proxy.log_entry(f"api-{marker}")["path"] == "/openapi.json"
    assert f"probe-{marker}" not in proxy.access_log.read_text()


def test_body_over_the_limit_is_refused_by_nginx(proxy: Proxy, proxy_auth: dict[str, str]) -> None:
    request_id = f"too-large-{uuid.uuid4().hex}"
    headers = {**proxy_auth, "Content-Type": "application/json", "X-Request-ID": request_id}
    too_large = b" " * (MAX_BODY + 1)
    response, body = proxy.request("POST", "/api/v1/items", raw=too_large, headers=headers)

    assert response.status == 413
    assert json.loads(body)["code"] == "payload_too_large"
    assert response.getheader("X-Request-ID") == request_id
    # nginx answered itself: the request never reached the app.
    assert proxy.log_entry(request_id)["upstream_time"] in ("", "-")


def test_body_at_the_limit_reaches_the_app(proxy: Proxy, proxy_auth: dict[str, str]) -> None:
    # Exactly 1 MiB: nginx lets it through and the app's MAX_CONTENT_LENGTH accepts its size.
    title = "x" * (MAX_BODY - len(json.dumps({"title": ""})))
    raw = json.dumps({"title": title}).encode()
    assert len(raw) == MAX_BODY
    request_id = f"at-limit-{uuid.uuid4().hex}"
    headers = {**proxy_auth, "Content-Type": "application/json", "X-Request-ID": request_id}
    response, body = proxy.request("POST", "/api/v1/items", raw=raw, headers=headers)

    assert response.status not in (413, 502, 503), body
    assert response.getheader("X-Request-ID") == request_id
    assert proxy.log_entry(request_id)["upstream_time"] not in ("", "-")
{%- if cookiecutter.ai_provider != "none" %}


def test_stream_arrives_chunk_by_chunk(
    proxy: Proxy, proxy_auth: dict[str, str], slow_upstream: Upstream
) -> None:
    chunks = ["one", " two", " three", " four", " five"]
    delay = 0.15
    slow_upstream.reset()
    slow_upstream.queue(Text("".join(chunks), chunks=chunks, chunk_delay=delay))
    # The first AI call of a fresh worker also imports the SDK: allow for a slow machine.
    connection = proxy.connection(timeout=120)
    try:
        connection.request(
            "POST",
            "/api/v1/ai/stream",
            body=json.dumps({"messages": [{"role": "user", "content": "Count to five"}]}),
            headers={
                **proxy_auth,
                "Content-Type": "application/json",
                "Accept": "text/event-stream",
            },
        )
        response = connection.getresponse()
        assert response.status == 200, response.read()
        assert response.getheader("Content-Type", "").startswith("text/event-stream")
        assert response.getheader("Content-Encoding") is None
        arrivals: list[float] = []
        event = ""
        while line := response.readline():
            text = line.decode().strip()
            if text.startswith("event:"):
                event = text.removeprefix("event:").strip()
            elif text.startswith("data:") and event == "delta":
                arrivals.append(time.monotonic())
            elif text.startswith("data:") and event in ("done", "error"):
                assert event == "done", text
                break
    finally:
        connection.close()

    assert len(arrivals) == len(chunks)
    # Buffered, every delta would arrive at once; streamed, they are spread over the delays.
    assert arrivals[-1] - arrivals[0] >= delay * (len(chunks) - 1) * 0.6


def test_playground_keeps_its_own_policy(proxy: Proxy) -> None:
    """The server's `default-src 'none'` would stop the page's script: only the app's policy."""
    for path in ("/playground", "/playground/assets/playground.js"):
        response, body = proxy.request("GET", path)

        assert response.status == 200, body
        assert response.headers.get_all("Content-Security-Policy") == [CONTENT_SECURITY_POLICY]
        assert response.getheader("X-Frame-Options") == "DENY"
{%- endif %}


def test_api_rate_limit_answers_429_past_the_burst(proxy: Proxy) -> None:
    # From a client address of its own, whose bucket the other tests have not touched: nginx
    # keys the zone by address. Keep-alive connections make the requests cheap, so they outrun
    # the refill (10 per second) even on a busy machine: 8 x 12 requests leave room for over 7 s
    # of refill before the burst is used.
    def burst(_: int) -> list[tuple[int, str | None, bytes]]:
        connection = proxy.connection(client="127.0.0.2")
        results = []
        try:
            for _ in range(12):
                connection.request("GET", "/api/v1/items")
                response = connection.getresponse()
                body = response.read()
                results.append((response.status, response.getheader("Retry-After"), body))
        finally:
            connection.close()
        return results

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = [result for batch in pool.map(burst, range(8)) for result in batch]

    limited = [result for result in results if result[0] == 429]
    assert len(limited) >= 1
    assert len(results) - len(limited) >= BURST
    _, retry_after, body = limited[0]
    assert json.loads(body)["code"] == "rate_limited"
    assert retry_after is not None
