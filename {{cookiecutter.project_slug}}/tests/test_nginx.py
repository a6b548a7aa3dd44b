"""The shipped nginx config in front of a live gunicorn of the app (tests/nginx_proxy.py):
security headers, redirects, body limits, access log, rate limits."""

from __future__ import annotations

import http.client
import json
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor

from .nginx_proxy import BURST, MAX_BODY, LocalConfig, Proxy, nginx_command

# --- the tests, in the order they run ---------------------------------------------------


def test_nginx_accepts_the_shipped_config(nginx_binary: str, local_config: LocalConfig) -> None:
    result = subprocess.run(  # noqa: S603 - the nginx found on PATH
        nginx_command(nginx_binary, local_config.prefix, "-t"),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def test_json_request_passes_with_security_headers(proxy: Proxy, headers: dict[str, str]) -> None:
    request_id = f"nginx-test-{uuid.uuid4().hex}"
    response, body = proxy.request(
        "POST",
        "/api/v1/items",
        {"title": "Through the proxy"},
        headers={**headers, "X-Request-ID": request_id},
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


def test_body_over_the_limit_is_refused_by_nginx(proxy: Proxy, headers: dict[str, str]) -> None:
    request_id = f"too-large-{uuid.uuid4().hex}"
    headers = {**headers, "Content-Type": "application/json", "X-Request-ID": request_id}
    too_large = b" " * (MAX_BODY + 1)
    response, body = proxy.request("POST", "/api/v1/items", raw=too_large, headers=headers)

    assert response.status == 413
    assert json.loads(body)["code"] == "payload_too_large"
    assert response.getheader("X-Request-ID") == request_id
    # nginx answered itself: the request never reached the app.
    assert proxy.log_entry(request_id)["upstream_time"] in ("", "-")


def test_body_at_the_limit_reaches_the_app(proxy: Proxy, headers: dict[str, str]) -> None:
    # Exactly 1 MiB: nginx lets it through and the app's MAX_CONTENT_LENGTH accepts its size.
    title = "x" * (MAX_BODY - len(json.dumps({"title": ""})))
    raw = json.dumps({"title": title}).encode()
    assert len(raw) == MAX_BODY
    request_id = f"at-limit-{uuid.uuid4().hex}"
    headers = {**headers, "Content-Type": "application/json", "X-Request-ID": request_id}
    response, body = proxy.request("POST", "/api/v1/items", raw=raw, headers=headers)

    assert response.status not in (413, 502, 503), body
    assert response.getheader("X-Request-ID") == request_id
    assert proxy.log_entry(request_id)["upstream_time"] not in ("", "-")


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
