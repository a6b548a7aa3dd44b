"""The shipped nginx config, run for real in front of a live gunicorn of the app: the nginx
feature's fixture module.

A copy of nginx/ is started on loopback ports: only the upstream address and the listen ports
are replaced, and the temp paths point into a temp directory so that nginx runs without root.
The copy also ignores the app's X-Accel-Buffering header, so that streaming is shown to come
from the nginx config itself.
nginx starts once per session, with the first test that asks for `proxy`, in front of the
session's served service (app_server.py).
Needs an `nginx` binary on PATH; without one the tests skip (under CI=true they fail).
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import os
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .app_server import ROOT, Service
from .ports import spare_port

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


def _wait_until_up(
    process: subprocess.Popen[bytes], log: Path, ready: Callable[[], bool], what: str
) -> None:
    # Generous, for a loaded CI machine; nginx itself is normally up at once.
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


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
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


# --- servers, started once for the session --------------------------------------------


@pytest.fixture(scope="session")
def nginx_binary() -> str:
    return _nginx_binary()


@dataclass
class LocalConfig:
    """A copy of nginx/ set up to run here: its directory and the ports it listens on."""

    prefix: Path
    http_port: int
    https_port: int


@pytest.fixture(scope="session")
def local_config(
    nginx_binary: str, tmp_path_factory: pytest.TempPathFactory, service: Service
) -> LocalConfig:
    """A copy of nginx/ on loopback ports, with test certificates and temp paths of its own."""
    prefix = tmp_path_factory.mktemp("nginx") / "nginx"
    shutil.copytree(ROOT / "nginx", prefix)
    http_port, https_port = spare_port(), spare_port()
    site = prefix / SITE_CONF
    text = site.read_text()
    for shipped, local in {
        "server api:8000;": f"server 127.0.0.1:{service.port};",
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


def nginx_command(binary: str, prefix: Path, *extra: str) -> list[str]:
    directives = f"pid {prefix / 'nginx.pid'};"
    if os.geteuid() == 0:
        # Workers would drop to "nobody", who cannot enter pytest's private temp directories.
        directives += " user root;"
    if "-t" not in extra:
        directives += " daemon off;"
    config = str(prefix / "nginx.conf")
    return [binary, "-p", f"{prefix}/", "-c", config, "-e", "stderr", "-g", directives, *extra]


@pytest.fixture(scope="session")
def proxy(nginx_binary: str, local_config: LocalConfig) -> Iterator[Proxy]:
    prefix = local_config.prefix
    access_log = prefix / "access.log"
    error_log = prefix / "error.log"
    with access_log.open("wb") as stdout, error_log.open("wb") as stderr:
        process = subprocess.Popen(  # noqa: S603 - the nginx found on PATH
            nginx_command(nginx_binary, prefix), stdout=stdout, stderr=stderr
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
