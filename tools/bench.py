"""Benchmark the default project on loopback, in one bounded run (a few minutes), side by side
with a bare Flask view (the ceiling) and a seed-style reference stack (tools/seed_stack.py).

Bakes the default project, runs it under gunicorn (the project's gunicorn.conf.py, gthread)
with real PostgreSQL and Redis, an OpenAI-compatible upstream stub served by this script, and
the project's nginx config in front when nginx is installed. Load comes from separate
processes (wrk when installed, else a keep-alive http.client generator). Measured:

- requests per second: bare Flask `/health/live`, the app's `/health/live`, authenticated
  `GET /api/v1/items` (a page of 20 of 1000 rows) on the app and on the seed-style stack;
- the first /ai/complete calls on fresh workers (what a deploy or restart costs its first users);
- `POST /api/v1/ai/complete` against calling the upstream directly: added latency p50/p95/p99;
- SSE time to first token: direct, through the app, through nginx;
- a tool step (the default project's tool loop: a tool's run and the model call after it, over
  that call) and RAG search over 10,000 chunks on pgvector and sqlite-vec (a second project
  baked with use_rag);
- one worker's resident memory after warm-up.

    python tools/bench.py [--duration 5] [--connections 16] [--samples 300] [--report FILE]
    python tools/bench.py --quick    # CI's shorter run (about two minutes)

A report, not a gate: figures swing by a third between runs on a shared machine. Targets are
listed in TARGETS; `--fail` exits 1 when one is missed.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import random
import re
import secrets
import shutil
import socket
import ssl
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import (
    DEFAULT_DATABASE_URL,
    TEMPLATE,
    Environments,
    Postgres,
    Server,
    http_json,
    log,
    new_venv,
    run,
    spare_port,
)

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"
UNTHROTTLED = "100000000 per minute"
PASSWORD = "bench-" + secrets.token_urlsafe(12)
# name: (comparison, target). A target whose figure is missing is "not measured", never met.
TARGETS: dict[str, tuple[str, float]] = {
    "items_vs_seed_stack": (">=", 1.5),
    "health_live_vs_bare": (">=", 0.8),
    "ai_added_p50_ms": ("<=", 2.0),
    "ai_added_p99_ms": ("<=", 10.0),
    "sse_first_token_overhead_app_ms": ("<=", 5.0),
    "sse_first_token_overhead_nginx_ms": ("<=", 5.0),
    "tool_step_added_ms": ("<=", 2.0),
    "rag_search_p50_ms": ("<=", 20.0),
}
SEED_STACK = Path(__file__).resolve().parent / "seed_stack.py"
SEED_STACK_PACKAGES = [
    "flask",
    "flask-sqlalchemy",
    "marshmallow",
    "flask-jwt-extended",
    "psycopg[binary]",
    "gunicorn",
]
BARE_APP = '''\
"""The ceiling: the smallest Flask JSON endpoint, served with the same gunicorn settings."""

from flask import Flask, jsonify


def create_app():
    app = Flask(__name__)

    @app.get("/health/live")
    def live():
        return jsonify({"status": "ok"})

    return app
'''


# --- the upstream stub ----------------------------------------------------------------------


class Upstream(BaseHTTPRequestHandler):
    """Just enough of OpenAI's chat completions: a JSON reply, or an SSE stream of chunks."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: with Nagle's algorithm on, the body would wait
    # for the client's delayed ACK (40 ms on Linux) and the stub would measure the kernel.
    disable_nagle_algorithm = True
    chunk_delay = 0.002

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def reply_json(self, payload: dict[str, Any]) -> None:
        reply = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    @staticmethod
    def tool_call(body: dict[str, Any], model: str, created: int) -> dict[str, Any]:
        """The model's first turn when tools are offered: call the first one, no arguments."""
        name = body["tools"][0]["function"]["name"]
        call = {
            "id": "call_bench",
            "type": "function",
            "function": {"name": name, "arguments": "{}"},
        }
        return {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": None, "tool_calls": [call]},
                    "finish_reason": "tool_calls",
                }
            ],
            "usage": {"prompt_tokens": 9, "completion_tokens": 5, "total_tokens": 14},
        }

    @staticmethod
    def embeddings(body: dict[str, Any]) -> dict[str, Any]:
        """OpenAI's `POST /embeddings`: a dense pseudo-random vector per text (the same text,
        the same vector), as real embeddings are dense; as JSON numbers or base64."""
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        dimensions = int(body.get("dimensions") or 1536)
        data = []
        for index, text in enumerate(texts):
            rng = random.Random(str(text))  # noqa: S311 - test data, not secrets
            vector: list[float] | str = [value - 127.5 for value in rng.randbytes(dimensions)]
            if body.get("encoding_format") == "base64":  # the SDK's default: float32, base64
                vector = base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode()
            data.append({"object": "embedding", "index": index, "embedding": vector})
        tokens = sum(max(1, len(str(text)) // 4) for text in texts)
        return {
            "object": "list",
            "data": data,
            "model": body.get("model", "stub"),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        if self.path.endswith("/embeddings"):
            self.reply_json(self.embeddings(body))
            return
        model = body.get("model", "stub")
        created = int(time.time())
        messages = body.get("messages") or [{}]
        if body.get("tools") and not body.get("stream") and messages[-1].get("role") != "tool":
            self.reply_json(self.tool_call(body, model, created))
            return
        if not body.get("stream"):
            reply = json.dumps(
                {
                    "id": "chatcmpl-bench",
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": "Hello from the stub."},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {"prompt_tokens": 9, "completion_tokens": 5, "total_tokens": 14},
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def event(payload: dict[str, Any] | str) -> None:
            data = payload if isinstance(payload, str) else json.dumps(payload)
            raw = f"data: {data}\n\n".encode()
            self.wfile.write(f"{len(raw):x}\r\n".encode() + raw + b"\r\n")
            self.wfile.flush()

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {
                "id": "chatcmpl-bench",
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }

        event(chunk({"role": "assistant", "content": "Hello"}))
        for word in (" from", " the", " stub", "."):
            time.sleep(self.chunk_delay)
            event(chunk({"content": word}))
        event(chunk({}, "stop"))
        usage = {"prompt_tokens": 9, "completion_tokens": 5, "total_tokens": 14}
        event({**chunk({}), "choices": [], "usage": usage})
        event("[DONE]")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class UpstreamServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that closed its keep-alive connection (a stream cut short, a worker gone)
        is no error of the stub's; anything else is printed as http.server does."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def serve_upstream(port: int) -> None:
    UpstreamServer(("127.0.0.1", port), Upstream).serve_forever()


# --- load: throughput and latency -----------------------------------------------------------


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def connect(base: str) -> http.client.HTTPConnection:
    scheme, _, rest = base.partition("://")
    host, _, port = rest.partition(":")
    if scheme == "https":
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # our own self-signed loopback certificate
        return http.client.HTTPSConnection(host, int(port), timeout=30, context=context)
    return http.client.HTTPConnection(host, int(port), timeout=30)


def python_load(
    url: str, headers: dict[str, str], duration: float, connections: int
) -> dict[str, Any]:
    """Keep-alive GETs from `connections` threads for `duration` seconds (the wrk fallback)."""
    parts = urllib.parse.urlsplit(url)
    base, path = f"{parts.scheme}://{parts.netloc}", f"{parts.path}?{parts.query}".rstrip("?")
    latencies: list[list[float]] = [[] for _ in range(connections)]
    errors = [0] * connections
    stop = time.perf_counter() + duration

    def worker(index: int) -> None:
        conn = connect(base)
        while time.perf_counter() < stop:
            started = time.perf_counter()
            try:
                conn.request("GET", path, headers=headers)
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    errors[index] += 1
            except (OSError, http.client.HTTPException):
                errors[index] += 1
                conn.close()
                conn = connect(base)
                continue
            latencies[index].append(time.perf_counter() - started)
        conn.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    flat = [value * 1000 for per in latencies for value in per]
    return {
        "tool": "python",
        "requests": len(flat),
        "errors": sum(errors),
        "rps": round(len(flat) / elapsed, 1),
        "p50_ms": round(percentile(flat, 50), 3),
        "p99_ms": round(percentile(flat, 99), 3),
    }


def wrk_load(
    url: str, headers: dict[str, str], duration: float, connections: int
) -> dict[str, Any]:
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{max(1, round(duration))}s", "--latency"]
    for name, value in headers.items():
        cmd += ["-H", f"{name}: {value}"]
    output = run([*cmd, url], timeout=duration + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )

    def ms(label: str) -> float:
        match = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
        if not match:
            return float("nan")
        value, unit = float(match.group(1)), match.group(2)
        return round(value / 1000 if unit == "us" else value * 1000 if unit == "s" else value, 3)

    return {
        "tool": "wrk",
        "requests": total,
        "errors": (int(bad.group(1)) if bad else 0)
        + (sum(int(g) for g in socket_errors.groups()) if socket_errors else 0),
        "rps": rps,
        "p50_ms": ms("50"),
        "p99_ms": ms("99"),
        **({"output": output[-800:]} if total == 0 else {}),
    }


def throughput(url: str, headers: dict[str, str], args: argparse.Namespace) -> dict[str, Any]:
    """Load from a separate process: wrk, or this script in its --load mode."""
    if shutil.which("wrk") and not args.python_load:
        result = wrk_load(url, headers, args.duration, args.connections)
        if result["requests"]:
            return result
        log(f"wrk completed no request against {url}; measuring again with the Python generator")
    spec = json.dumps(
        {"url": url, "headers": headers, "duration": args.duration, "connections": args.connections}
    )
    output = run([sys.executable, __file__, "--load", spec], timeout=args.duration + 60).stdout
    return json.loads(output)


def interleaved_throughput(
    targets: dict[str, tuple[str, dict[str, str]]], args: argparse.Namespace
) -> dict[str, Any]:
    """Each target in turn, `args.rounds` times over, so that a change in the machine's load
    hits every side alike; the figures are the medians over the rounds, and each ratio is the
    median of the ratios measured within one round (side by side, seconds apart)."""
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in targets}
    for _ in range(args.rounds):
        for name, (url, headers) in targets.items():
            rounds[name].append(throughput(url, headers, args))
    result: dict[str, Any] = {}
    for name, runs in rounds.items():
        result[name] = {
            key: statistics.median(run[key] for run in runs) for key in ("rps", "p50_ms", "p99_ms")
        }
        result[name]["errors"] = sum(run["errors"] for run in runs)
        result[name]["rps_per_round"] = [run["rps"] for run in runs]
    result["ratios"] = {
        "health_live_vs_bare": ratio_median(rounds["health_live"], rounds["bare_flask"]),
        "items_vs_seed_stack": ratio_median(rounds["items_page"], rounds["seed_items_page"]),
    }
    return result


def ratio_median(ours: list[dict[str, Any]], theirs: list[dict[str, Any]]) -> float:
    return round(
        statistics.median(a["rps"] / b["rps"] for a, b in zip(ours, theirs, strict=True)), 3
    )


def timed_post(
    conn: http.client.HTTPConnection, path: str, body: dict[str, Any], headers: dict[str, str]
) -> tuple[float, int]:
    payload = json.dumps(body).encode()
    started = time.perf_counter()
    conn.request(
        "POST", path, body=payload, headers={**headers, "Content-Type": "application/json"}
    )
    response = conn.getresponse()
    response.read()
    return (time.perf_counter() - started) * 1000, response.status


def first_token(
    conn: http.client.HTTPConnection,
    path: str,
    body: dict[str, Any],
    headers: dict[str, str],
    openai_format: bool,
) -> tuple[float, int]:
    """Milliseconds from sending the request to the first content chunk of an SSE stream."""
    payload = json.dumps(body).encode()
    started = time.perf_counter()
    conn.request(
        "POST",
        path,
        body=payload,
        headers={**headers, "Content-Type": "application/json", "Accept": "text/event-stream"},
    )
    response = conn.getresponse()
    if response.status != 200:
        response.read()
        return float("nan"), response.status
    elapsed = float("nan")
    event = ""
    while True:
        line = response.readline()
        if not line:
            break
        text = line.decode().strip()
        if text.startswith("event:"):
            event = text[6:].strip()
        elif text.startswith("data:") and elapsed != elapsed:  # still NaN: no token yet
            data = text[5:].strip()
            if openai_format and data != "[DONE]" and json.loads(data)["choices"]:
                if json.loads(data)["choices"][0]["delta"].get("content"):
                    elapsed = (time.perf_counter() - started) * 1000
            elif not openai_format and event == "delta":
                elapsed = (time.perf_counter() - started) * 1000
    response.read()
    return elapsed, 200


def summary(values: list[float]) -> dict[str, float]:
    clean = [v for v in values if v == v]
    return {
        "n": len(clean),
        "p50_ms": round(percentile(clean, 50), 3),
        "p95_ms": round(percentile(clean, 95), 3),
        "p99_ms": round(percentile(clean, 99), 3),
        "mean_ms": round(statistics.fmean(clean), 3) if clean else float("nan"),
    }


def latency_run(spec: dict[str, Any]) -> dict[str, Any]:
    """Interleaved samples (app, direct, ...) so drift hits both sides alike."""
    results: dict[str, list[float]] = {name: [] for name in spec["targets"]}
    statuses: dict[str, dict[str, int]] = {name: {} for name in spec["targets"]}
    conns = {name: connect(target["base"]) for name, target in spec["targets"].items()}
    for index in range(spec["warmup"] + spec["samples"]):
        for name, target in spec["targets"].items():
            body = json.loads(json.dumps(target["body"]).replace("{n}", str(index)))
            try:
                if spec["kind"] == "sse":
                    value, status = first_token(
                        conns[name], target["path"], body, target["headers"], target["openai"]
                    )
                else:
                    value, status = timed_post(conns[name], target["path"], body, target["headers"])
            except (OSError, http.client.HTTPException) as exc:
                value, status = float("nan"), 0
                conns[name].close()
                conns[name] = connect(target["base"])
                statuses[name][type(exc).__name__] = statuses[name].get(type(exc).__name__, 0) + 1
            statuses[name][str(status)] = statuses[name].get(str(status), 0) + 1
            if index >= spec["warmup"] and status == 200:
                results[name].append(value)
        if spec.get("pace"):
            time.sleep(spec["pace"])
    return {
        name: {**summary(values), "statuses": statuses[name]} for name, values in results.items()
    }


def latency(spec: dict[str, Any]) -> dict[str, Any]:
    output = run([sys.executable, __file__, "--latency", json.dumps(spec)], timeout=600).stdout
    return json.loads(output)


# --- nginx ----------------------------------------------------------------------------------


class Nginx:
    """The project's own nginx config, pointed at the loopback app, on free loopback ports."""

    def __init__(self, project: Path, workdir: Path, app_port: int) -> None:
        self.root = workdir / "nginx"
        shutil.copytree(project / "nginx", self.root)
        self.http_port, self.https_port = spare_port(), spare_port()
        for conf in (self.root / "conf.d").glob("*.conf"):
            text = conf.read_text(encoding="utf-8")
            text = re.sub(r"server\s+api:8000;", f"server 127.0.0.1:{app_port};", text)
            text = re.sub(r"listen\s+80[^;]*;", f"listen 127.0.0.1:{self.http_port};", text)
            text = re.sub(
                r"listen\s+443\s+ssl[^;]*;", f"listen 127.0.0.1:{self.https_port} ssl;", text
            )
            conf.write_text(text, encoding="utf-8")
        certs = self.root / "certs"
        certs.mkdir(exist_ok=True)
        run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=localhost",
                "-keyout",
                str(certs / "privkey.pem"),
                "-out",
                str(certs / "fullchain.pem"),
            ]
        )
        self.log = (workdir / "nginx.log").open("w")
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        self.process = subprocess.Popen(  # noqa: S603
            [
                binary,
                "-p",
                f"{self.root}/",
                "-c",
                str(self.root / "nginx.conf"),
                "-e",
                "stderr",
                "-g",
                f"daemon off; pid {self.root / 'nginx.pid'};",
            ],
            stdout=subprocess.DEVNULL,
            stderr=self.log,
            start_new_session=True,
        )
        self.base = f"https://127.0.0.1:{self.https_port}"
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.https_port), timeout=1):
                    return
            except OSError:
                if self.process.poll() is not None:
                    break
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("nginx did not start: " + (workdir / "nginx.log").read_text()[-1000:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.log.close()


def nginx_available() -> bool:
    return bool(shutil.which("nginx") or Path("/usr/sbin/nginx").exists()) and bool(
        shutil.which("openssl")
    )


# --- the run --------------------------------------------------------------------------------


def register(base: str, prefix: str) -> tuple[str, str]:
    """A new user of the app at `base`: its email and access token."""
    email = f"{prefix}-{secrets.token_hex(4)}@example.com"
    status, body = http_json(
        "POST",
        base + "/api/v1/auth/register",
        {"email": email, "password": PASSWORD, "full_name": "Bench"},
    )
    if status != 201:
        raise RuntimeError(f"register at {base} answered {status}: {body}")
    return email, str(body["data"]["access_token"])  # type: ignore[index]


def seed_items(
    project: Path, venv: Path, package: str, env: dict[str, str], email: str, count: int
) -> None:
    script = f"""
from {package} import create_app
from {package}.auth.models import User
from {package}.core.extensions import db
from {package}.items.models import Item
from sqlmodel import select

app = create_app()
with app.app_context(), db.new_session() as session:
    user = session.exec(select(User).where(User.email == {email!r})).one()
    statuses = ("draft", "published", "archived")
    session.add_all(
        Item(title=f"Item {{i}}", description="Seeded for the benchmark.", status=statuses[i % 3],
             price=float(i), properties={{"n": i}}, owner_id=user.id)
        for i in range({count})
    )
    session.commit()
"""
    run([str(venv / "bin" / "python"), "-c", script], cwd=project, env=env)


def profile_hint(
    project: Path, venv: Path, package: str, env: dict[str, str], token: str, what: str
) -> str:
    """cProfile of the app in-process (test client, same settings): the top of the hot path."""
    requests = {
        "ai": 'client.post("/api/v1/ai/complete", json={"messages": [{"role": "user", '
        '"content": f"profile {i}"}]}, headers=headers)',
        "live": 'client.get("/health/live")',
        "items": 'client.get("/api/v1/items?size=20&page=3", headers=headers)',
        "stream": 'client.post("/api/v1/ai/stream", json={"messages": [{"role": "user", '
        '"content": f"profile {i}"}]}, headers=headers).get_data()',
    }[what]
    script = f"""
import cProfile, pstats, io
from {package} import create_app
app = create_app()
client = app.test_client()
headers = {{"Authorization": "Bearer {token}"}}
for i in range(20):
    {requests}
profiler = cProfile.Profile()
profiler.enable()
for i in range(200):
    {requests}
profiler.disable()
out = io.StringIO()
stats = pstats.Stats(profiler, stream=out).sort_stats("tottime")
stats.print_stats(15)
print(out.getvalue())
"""
    try:
        output = run(
            [str(venv / "bin" / "python"), "-c", script], cwd=project, env=env, timeout=300
        ).stdout
    except Exception as exc:  # a hint, not a result
        return f"(profile failed: {exc})"
    lines = [line for line in output.splitlines() if line.strip()]
    start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
    return "\n".join(lines[start : start + 16])


def seed_stack_env(root: Path, python: str) -> Path:
    """A virtualenv with the reference stack's own dependencies."""
    return new_venv(root / "seed-env", python, *SEED_STACK_PACKAGES)


def worker_rss_mb(server: Server) -> float:
    """Resident memory of one gunicorn worker (the master's first child), in MiB."""
    children = Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children")
    try:
        pid = children.read_text().split()[0]
        status = Path(f"/proc/{pid}/status").read_text()
    except (OSError, IndexError):
        return float("nan")
    kb = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
    return round(kb / 1024, 1)


def first_calls(base: str, auth: dict[str, str], count: int) -> dict[str, Any]:
    """`count` concurrent /ai/complete calls on workers that have served no AI call yet: what
    the first users after a deploy or a restart wait."""
    results: list[tuple[float, int]] = []

    def call(index: int) -> None:
        conn = connect(base)
        body = {"messages": [{"role": "user", "content": f"First call {index}."}]}
        try:
            results.append(timed_post(conn, "/api/v1/ai/complete", body, auth))
        except (OSError, http.client.HTTPException):
            results.append((float("nan"), 0))
        finally:
            conn.close()

    threads = [threading.Thread(target=call, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    values = [value for value, status in results if status == 200]
    return {
        "n": len(values),
        "max_ms": round(max(values), 3) if values else float("nan"),
        "p50_ms": round(percentile(values, 50), 3),
        "statuses": sorted(status for _, status in results),
    }


def bench_tool_step(base: str, auth: dict[str, str], upstream: str, samples: int) -> dict[str, Any]:
    """The tool loop: one /ai/complete that makes one tool call (the stub asks for the first
    tool offered, then answers), the same call without tools, and the two upstream calls.

    A tool step is what the loop adds to a request: running the tool and the next model call.
    Its cost is the tool call's request less the same request without tools, less the step's
    own upstream call (`added_p50_ms`). What the whole request adds over both upstream calls,
    the AI path's overhead included, is `request_added_p50_ms`."""
    status, _ = http_json("GET", base + "/api/v1/ai/tools", token=auth["Authorization"][7:])
    if status == 404:
        return {"measured": False, "note": "not measured: feature not present"}
    message = [{"role": "user", "content": "What time is it? {n}"}]
    tool = {"type": "function", "function": {"name": "current_time", "parameters": {}}}
    result = latency(
        {
            "kind": "post",
            "warmup": 10,
            "samples": samples,
            "targets": {
                "direct_first": {
                    "base": upstream,
                    "path": "/v1/chat/completions",
                    "headers": {"Authorization": "Bearer sk-bench"},
                    "body": {"model": "gpt-4o-mini", "messages": message, "tools": [tool]},
                },
                "direct_second": {
                    "base": upstream,
                    "path": "/v1/chat/completions",
                    "headers": {"Authorization": "Bearer sk-bench"},
                    "body": {"model": "gpt-4o-mini", "messages": [*message, {"role": "tool"}]},
                },
                "app": {
                    "base": base,
                    "path": "/api/v1/ai/complete",
                    "headers": auth,
                    "body": {"messages": message, "tools": ["current_time"], "max_steps": 2},
                },
                "app_without_tools": {
                    "base": base,
                    "path": "/api/v1/ai/complete",
                    "headers": auth,
                    "body": {"messages": message},
                },
            },
        }
    )
    app, plain = result["app"]["p50_ms"], result["app_without_tools"]["p50_ms"]
    first, second = result["direct_first"]["p50_ms"], result["direct_second"]["p50_ms"]
    return {
        "measured": True,
        **result,
        "added_p50_ms": round(app - plain - second, 3),
        "request_added_p50_ms": round(app - first - second, 3),
    }


RAG_DOCUMENTS, RAG_CHUNKS_PER_DOCUMENT = 100, 100  # 10,000 chunks per store
RAG_SEED = """
import random
import sys

from sqlmodel import select

from {package} import create_app
from {package}.auth.models import User
from {package}.core.extensions import db
from {package}.rag.models import Document, DocumentChunk
from {package}.rag.service import get_store
from {package}.rag.settings import rag_settings
from {package}.rag.store import ChunkVector

documents, per_document = int(sys.argv[2]), int(sys.argv[3])
filler = " ".join(["Policies, procedures and the facts a support team looks up."] * 14)
rng = random.Random(7)
app = create_app()
with app.app_context():
    dimensions = rag_settings().embeddings_dimensions
    store = get_store()
    # A bulk load builds pgvector's HNSW index once, after the rows (as pgvector advises):
    # the same index the migration makes, from the model's own definition.
    indexes = DocumentChunk.__table__.indexes
    hnsw = next(index for index in indexes if index.name == "ix_document_chunks_embedding")
    if store.name == "pgvector":
        hnsw.drop(db.engine)
    user = db.session.exec(select(User).where(User.email == sys.argv[1])).one()
    for number in range(documents):
        document = Document(
            title=f"Handbook part {{number}}", text=filler, status="ready", chunks=per_document,
            characters=len(filler) * per_document, owner_id=user.id, owner_key=f"user:{{user.id}}",
        )
        db.session.add(document)
        db.session.commit()
        chunks = [
            ChunkVector(index, f"Part {{number}}, section {{index}}. {{filler}}",
                        [value - 127.5 for value in rng.randbytes(dimensions)])
            for index in range(per_document)
        ]
        with db.engine.begin() as connection:
            store.replace_chunks(connection, document.id, chunks)
    if store.name == "pgvector":
        with db.engine.begin() as connection:
            connection.exec_driver_sql("SET maintenance_work_mem = '512MB'")
            hnsw.create(connection)
            connection.exec_driver_sql("ANALYZE")
"""


def extension_python(candidates: list[str]) -> str | None:
    """The first Python whose sqlite3 loads extensions (sqlite-vec, the SQLite store, needs
    it; pyenv builds often leave it out)."""
    check = "import sqlite3; sqlite3.connect(':memory:').enable_load_extension(True)"
    for python in dict.fromkeys(candidates):
        path = shutil.which(python) or python
        if not Path(path).exists():
            continue
        probe = subprocess.run(  # noqa: S603 - a Python of this machine
            [path, "-c", check], capture_output=True, check=False
        )
        if probe.returncode == 0:
            return path
    return None


def bench_rag_search(
    args: argparse.Namespace,
    root: Path,
    env: dict[str, str],
    postgres: Postgres,
    upstream: str,
) -> dict[str, Any]:
    """`POST /api/v1/documents/search` (k=5) over 10,000 chunks of 1536-dimension vectors, on
    each store the project has: PostgreSQL with pgvector's HNSW index, and SQLite with
    sqlite-vec. A RAG project of its own (the default has none), the same gunicorn settings;
    each search embeds its query through the upstream stub (no cache), as in production."""
    project = bake(args.template, root / "rag-project", ["use_rag=yes"])
    package = project.name.replace("-", "_")
    stores: dict[str, tuple[Path, str]] = {}
    notes: list[str] = []
    stores["pgvector"] = (Environments(root / "envs", args.python).get(project), "")
    sqlite_python = extension_python([args.python, "/usr/bin/python3", "python3"])
    if sqlite_python is None:
        notes.append("sqlite-vec not measured: no Python on this machine loads SQLite extensions")
    else:
        venv = Environments(root / "envs-sqlite", sqlite_python).get(project)
        stores["sqlite_vec"] = (venv, f"sqlite:///{root / 'rag-bench.db'}")
    database = f"{args.db_prefix}_rag_{os.getpid()}"
    servers: list[Server] = []
    targets: dict[str, Any] = {
        "embedding_direct": {
            "base": upstream,
            "path": "/v1/embeddings",
            "headers": {"Authorization": "Bearer sk-bench"},
            "body": {"model": "text-embedding-3-small", "input": ["refund policy {n}"]},
        }
    }
    seeding: dict[str, float] = {}
    try:
        for name, (venv, database_url) in stores.items():
            store_env = {
                **env,
                "PYTHONPATH": str(project / "src"),
                "DATABASE_URL": database_url or postgres.create(database),
            }
            flask = [str(venv / "bin" / "python"), "-m", "flask", "--app", package]
            run([*flask, "db", "upgrade"], cwd=project, env=store_env)
            server = Server(
                project, venv, f"{package}:create_app()", store_env, root / f"{name}.log"
            )
            servers.append(server)
            server.wait_ready()
            email, token = register(server.base, "rag")
            started = time.monotonic()
            run(
                [
                    str(venv / "bin" / "python"),
                    "-c",
                    RAG_SEED.format(package=package),
                    email,
                    str(RAG_DOCUMENTS),
                    str(RAG_CHUNKS_PER_DOCUMENT),
                ],
                cwd=project,
                env=store_env,
                timeout=600,
            )
            seeding[name] = round(time.monotonic() - started, 1)
            auth = {"Authorization": f"Bearer {token}"}
            status, found = http_json(
                "POST", server.base + "/api/v1/documents/search", {"query": "probe"}, token=token
            )
            hits = found.get("data", {}).get("results") if status == 200 else None  # type: ignore[union-attr]
            if not hits or len(hits) != 5:
                raise RuntimeError(f"{name}: search answered {status}: {str(found)[:300]}")
            targets[name] = {
                "base": server.base,
                "path": "/api/v1/documents/search",
                "headers": auth,
                "body": {"query": "What is the refund policy for order {n}?", "k": 5},
            }
        result = latency(
            {"kind": "post", "warmup": 10, "samples": args.samples // 3, "targets": targets}
        )
    finally:
        for server in servers:
            server.stop()
        if "pgvector" in stores:
            postgres.drop(database)
    stores_measured = [name for name in stores if result.get(name, {}).get("n")]
    if not stores_measured:
        notes.append("not measured: no store answered")
    return {
        "measured": bool(stores_measured),
        "chunks": RAG_DOCUMENTS * RAG_CHUNKS_PER_DOCUMENT,
        "seconds_to_store": seeding,
        **result,
        # The target holds for every store: the slower one is the figure.
        "p50_ms": max(result[name]["p50_ms"] for name in stores_measured)
        if stores_measured
        else None,
        "note": "; ".join(notes),
    }


def bench(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    report: dict[str, Any] = {"settings": {}, "throughput": {}, "notes": []}
    project = bake(args.template, root / "project")
    package = project.name.replace("-", "_")
    envs = Environments(root / "envs", args.python)
    venv = envs.get(project)
    seed_venv = seed_stack_env(root, args.python)
    postgres = Postgres(args.database_url, venv / "bin" / "python")
    database = f"{args.db_prefix}_{os.getpid()}"
    upstream_port = spare_port()
    upstream_base = f"http://127.0.0.1:{upstream_port}"
    upstream = subprocess.Popen(  # noqa: S603 - this script, serving the stub
        [sys.executable, __file__, "--upstream", str(upstream_port)], start_new_session=True
    )
    servers: list[Server] = []
    nginx: Nginx | None = None
    try:
        gunicorn_env = {"WEB_CONCURRENCY": str(args.workers), "GUNICORN_THREADS": str(args.threads)}
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))},
            **gunicorn_env,
            "PYTHONPATH": str(project / "src"),
            "APP_ENV": "production",
            "SECRET_KEY": secrets.token_urlsafe(48),
            "JWT_SECRET_KEY": secrets.token_urlsafe(48),
            "DATABASE_URL": postgres.create(database),
            "REDIS_URL": args.redis_url,
            "AI_PROVIDER": "openai",
            "AI_API_KEY": "sk-bench",
            "AI_BASE_URL": f"{upstream_base}/v1",
            "AI_CACHE_TTL": "0",
            "AI_TOKEN_BUDGET_DAILY": str(10**9),
            "RATE_LIMIT_DEFAULT": UNTHROTTLED,
            "RATE_LIMIT_AUTH": UNTHROTTLED,
            "RATE_LIMIT_AI": UNTHROTTLED,
            "LOG_LEVEL": "INFO",
            "LOG_FORMAT": "json",
        }
        report["settings"] = {
            "workers": args.workers,
            "threads": args.threads,
            "connections": args.connections,
            "duration_s": args.duration,
            "rounds": args.rounds,
            "samples": args.samples,
            "cpus": os.cpu_count(),
            "load_tool": "wrk" if shutil.which("wrk") and not args.python_load else "python",
            # Other work on the machine skews every figure: compare runs at a similar load.
            "load_average_at_start": round(os.getloadavg()[0], 2),
        }
        run(
            [str(venv / "bin" / "python"), "-m", "flask", "--app", package, "db", "upgrade"],
            cwd=project,
            env=env,
        )

        (root / "bare").mkdir(exist_ok=True)
        (root / "bare" / "bare_app.py").write_text(BARE_APP, encoding="utf-8")
        bare_env = {**env, "PYTHONPATH": str(root / "bare")}
        bare = Server(project, venv, "bare_app:create_app()", bare_env, root / "bare.log")
        servers.append(bare)
        seed_env = {**env, "PYTHONPATH": str(SEED_STACK.parent)}
        seed_token = run(
            [str(seed_venv / "bin" / "python"), str(SEED_STACK), "seed", "1000"], env=seed_env
        ).stdout.strip()
        seed = Server(project, seed_venv, "seed_stack:create_app()", seed_env, root / "seed.log")
        servers.append(seed)
        app = Server(project, venv, f"{package}:create_app()", env, root / "app.log")
        servers.append(app)
        bare.wait_ready(path="/health/live")
        app.wait_ready()

        email, token = register(app.base, "bench")
        auth = {"Authorization": f"Bearer {token}"}

        log("first AI calls on fresh workers ...")
        report["ai_first_calls"] = first_calls(app.base, auth, 8)

        seed_items(project, venv, package, env, email, 1000)
        status, page = http_json("GET", app.base + "/api/v1/items?size=20", token=token)
        if status != 200 or page["data"]["total"] != 1000:  # type: ignore[index]
            raise RuntimeError(f"items page answered {status}: {str(page)[:300]}")
        seed.wait_ready(path="/health/live")
        seed_auth = {"Authorization": f"Bearer {seed_token}"}
        status, page = http_json("GET", seed.base + "/api/v1/items?per_page=20", token=seed_token)
        if status != 200 or page["data"]["total"] != 1000:  # type: ignore[index]
            raise RuntimeError(f"seed-style items page answered {status}: {str(page)[:300]}")

        if nginx_available() and not args.no_nginx and (project / "nginx").is_dir():
            nginx = Nginx(project, root, app.port)
        else:
            report["notes"].append("nginx not measured (not installed, or --no-nginx)")

        log("throughput (requests/s, interleaved rounds) ...")
        targets = {
            "bare_flask": (bare.base + "/health/live", {}),
            "health_live": (app.base + "/health/live", {}),
            "seed_items_page": (seed.base + "/api/v1/items?per_page=20&page=3", seed_auth),
            "items_page": (app.base + "/api/v1/items?size=20&page=3", auth),
        }
        report["throughput"] = interleaved_throughput(targets, args)

        log("AI completion latency (sequential, interleaved) ...")
        message = {"messages": [{"role": "user", "content": "Say hello, request {n}."}]}
        report["ai_complete"] = latency(
            {
                "kind": "post",
                "warmup": 20,
                "samples": args.samples,
                "targets": {
                    "direct": {
                        "base": upstream_base,
                        "path": "/v1/chat/completions",
                        "headers": {"Authorization": "Bearer sk-bench"},
                        "body": {"model": "gpt-4o-mini", **message},
                    },
                    "app": {
                        "base": app.base,
                        "path": "/api/v1/ai/complete",
                        "headers": auth,
                        "body": message,
                    },
                },
            }
        )
        direct, through = report["ai_complete"]["direct"], report["ai_complete"]["app"]
        report["ai_complete"]["added_ms"] = {
            key: round(through[key] - direct[key], 3) for key in ("p50_ms", "p95_ms", "p99_ms")
        }

        log("SSE time to first token ...")
        sse_targets: dict[str, Any] = {
            "direct": {
                "base": upstream_base,
                "path": "/v1/chat/completions",
                "headers": {"Authorization": "Bearer sk-bench"},
                "openai": True,
                "body": {"model": "gpt-4o-mini", "stream": True, **message},
            },
            "app": {
                "base": app.base,
                "path": "/api/v1/ai/stream",
                "headers": auth,
                "openai": False,
                "body": message,
            },
        }
        if nginx is not None:
            sse_targets["nginx"] = {**sse_targets["app"], "base": nginx.base}
        # nginx limits /api/ to 10 requests/s per client: stay under it, for every path alike.
        report["sse_first_token"] = latency(
            {
                "kind": "sse",
                "warmup": 10,
                "samples": args.sse_samples,
                "pace": 0.12,
                "targets": sse_targets,
            }
        )
        sse = report["sse_first_token"]
        report["sse_first_token"]["overhead_ms"] = {
            name: {
                key: round(sse[name][key] - sse["direct"][key], 3) for key in ("p50_ms", "p95_ms")
            }
            for name in sse_targets
            if name != "direct"
        }

        log("tool step and RAG search ...")
        report["tool_step"] = bench_tool_step(app.base, auth, upstream_base, args.samples // 3)
        log("RAG search over 10,000 chunks (pgvector, sqlite-vec) ...")
        report["rag_search"] = bench_rag_search(args, root, env, postgres, upstream_base)
        report["worker_rss_mb"] = {
            "bare_flask": worker_rss_mb(bare),
            "seed_stack": worker_rss_mb(seed),
            "app": worker_rss_mb(app),
        }

        t = report["throughput"]
        overhead = report["sse_first_token"]["overhead_ms"]
        measured: dict[str, float | None] = {
            "items_vs_seed_stack": t["ratios"]["items_vs_seed_stack"],
            "health_live_vs_bare": t["ratios"]["health_live_vs_bare"],
            "ai_added_p50_ms": report["ai_complete"]["added_ms"]["p50_ms"],
            "ai_added_p99_ms": report["ai_complete"]["added_ms"]["p99_ms"],
            "sse_first_token_overhead_app_ms": overhead["app"]["p50_ms"],
            "sse_first_token_overhead_nginx_ms": overhead.get("nginx", {}).get("p50_ms"),
            "tool_step_added_ms": report["tool_step"].get("added_p50_ms"),
            "rag_search_p50_ms": report["rag_search"].get("p50_ms"),
        }
        report["targets"] = {}
        for name, (comparison, target) in TARGETS.items():
            value = measured[name]
            met = None
            if value is not None:
                met = value >= target if comparison == ">=" else value <= target
            report["targets"][name] = {
                "target": f"{comparison} {target}",
                "measured": value,
                "met": met,
            }

        if not args.no_profile:
            hints = {}
            if (
                report["targets"]["ai_added_p50_ms"]["met"] is False
                or report["targets"]["ai_added_p99_ms"]["met"] is False
            ):
                hints["ai_complete"] = profile_hint(project, venv, package, env, token, "ai")
            if report["targets"]["health_live_vs_bare"]["met"] is False:
                hints["health_live"] = profile_hint(project, venv, package, env, token, "live")
            if report["targets"]["items_vs_seed_stack"]["met"] is False:
                hints["items"] = profile_hint(project, venv, package, env, token, "items")
            if report["targets"]["sse_first_token_overhead_app_ms"]["met"] is False:
                hints["sse"] = profile_hint(project, venv, package, env, token, "stream")
            report["profile_hints"] = hints
        report["app_log_errors"] = sum(
            1
            for line in (root / "app.log").read_text(errors="replace").splitlines()
            if '"level": "ERROR"' in line
        )
    finally:
        if nginx is not None:
            nginx.stop()
        for server in servers:
            server.stop()
        upstream.terminate()
        upstream.wait(timeout=10)
        postgres.drop(database)
    return report


def bake(template: Path, output: Path, options: list[str] | None = None) -> Path:
    """The project `cookiecutter --no-input [options]` writes: the default one without options."""
    output.mkdir(parents=True, exist_ok=True)
    run(
        [
            sys.executable,
            "-m",
            "cookiecutter",
            "--no-input",
            "-f",
            "-o",
            str(output),
            str(template),
            *(options or []),
        ],
        timeout=120,
    )
    (project,) = (path for path in output.iterdir() if path.is_dir())
    return project


def print_report(report: dict[str, Any]) -> None:
    """One table: every figure of the run, then the targets."""
    t = report["throughput"]
    log("")
    log(f"settings: {report['settings']}")
    log(f"{'what':52} {'figure':>30}")
    rows: list[tuple[str, str]] = []
    for name, label in (
        ("bare_flask", "bare Flask /health/live (ceiling)"),
        ("health_live", "app /health/live"),
        ("seed_items_page", "seed-style stack GET items (20 of 1000, JWT)"),
        ("items_page", "app GET /api/v1/items (20 of 1000, JWT)"),
    ):
        r = t[name]
        rows.append(
            (label, f"{r['rps']:8.1f} rps  p50 {r['p50_ms']:6.2f}  p99 {r['p99_ms']:6.2f} ms")
        )
    for name, value in t["ratios"].items():
        rows.append((f"{name} (median of per-round ratios)", f"{value:.3f}x"))
    first = report["ai_first_calls"]
    rows.append(
        (
            f"first {len(first['statuses'])} /ai/complete on fresh workers",
            f"p50 {first['p50_ms']:7.2f}  max {first['max_ms']:7.2f} ms",
        )
    )
    ai = report["ai_complete"]
    for name in ("direct", "app"):
        rows.append(
            (
                f"/ai/complete {name} (n={ai[name]['n']})",
                f"p50 {ai[name]['p50_ms']:6.2f}  p95 {ai[name]['p95_ms']:6.2f}  "
                f"p99 {ai[name]['p99_ms']:6.2f}",
            )
        )
    added = ai["added_ms"]
    rows.append(
        (
            "/ai/complete added by the app",
            f"p50 {added['p50_ms']:6.2f}  p95 {added['p95_ms']:6.2f}  p99 {added['p99_ms']:6.2f}",
        )
    )
    sse = report["sse_first_token"]
    for name, values in sse.items():
        if name == "overhead_ms":
            continue
        extra = ""
        if name in sse["overhead_ms"]:
            extra = f"  (+{sse['overhead_ms'][name]['p50_ms']:.2f})"
        rows.append(
            (
                f"/ai/stream first token, {name} (n={values['n']})",
                f"p50 {values['p50_ms']:6.2f}  p95 {values['p95_ms']:6.2f}{extra}",
            )
        )
    for key, label in (("tool_step", "tool step"), ("rag_search", "RAG search")):
        part = report[key]
        if not part["measured"]:
            rows.append((label, part["note"]))
        elif key == "tool_step":
            rows.append(
                (
                    label,
                    f"+{part['added_p50_ms']:.2f} ms over its model call (app p50 "
                    f"{part['app']['p50_ms']:.2f}, without tools "
                    f"{part['app_without_tools']['p50_ms']:.2f}; the whole request "
                    f"+{part['request_added_p50_ms']:.2f} over both model calls)",
                )
            )
        else:
            for name in ("embedding_direct", "pgvector", "sqlite_vec"):
                if name in part:
                    figures = part[name]
                    rows.append(
                        (
                            f"{label} {name} ({part['chunks']} chunks, n={figures['n']})",
                            f"p50 {figures['p50_ms']:6.2f}  p95 {figures['p95_ms']:6.2f}",
                        )
                    )
            if part["note"]:
                rows.append((label, part["note"]))
    rss = report["worker_rss_mb"]
    rows.append(
        (
            "one worker's RSS after warm-up (MiB)",
            f"bare {rss['bare_flask']}  seed {rss['seed_stack']}  app {rss['app']}",
        )
    )
    for label, figure in rows:
        log(f"{label:52} {figure}")
    log("targets:")
    for name, target in report["targets"].items():
        state = {True: "met ", False: "MISS", None: "n/a "}[target["met"]]
        log(f"  {state} {name}: {target['measured']} (target {target['target']})")
    for name, hint in report.get("profile_hints", {}).items():
        log(f"profile hint for {name} (top functions by own time, 200 in-process requests):")
        log(hint)
    for note in report["notes"]:
        log(f"note: {note}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per throughput run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved throughput rounds")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--samples", type=int, default=300, help="AI completion samples per side")
    parser.add_argument("--sse-samples", type=int, default=60, help="SSE samples per path")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (both servers)")
    parser.add_argument("--threads", type=int, default=8, help="gunicorn threads per worker")
    parser.add_argument("--python-load", action="store_true", help="use the Python load generator")
    parser.add_argument("--no-nginx", action="store_true")
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--fail", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="CI's report: 2 rounds of 2 s, 150 AI and 30 SSE samples, no profiles",
    )
    parser.add_argument("--template", type=Path, default=TEMPLATE)
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument(
        "--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    )
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL))
    parser.add_argument("--db-prefix", default=os.environ.get("BENCH_DB_PREFIX", "bench"))
    parser.add_argument("--report", type=Path, help="JSON report (default: in the work dir)")
    # internal modes: the stub upstream and the load generators run as separate processes
    parser.add_argument("--upstream", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--load", help=argparse.SUPPRESS)
    parser.add_argument("--latency", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.rounds, args.samples, args.sse_samples = 2.0, 2, 150, 30
        args.no_profile = True

    if args.upstream:
        serve_upstream(args.upstream)
        return 0
    if args.load:
        spec = json.loads(args.load)
        print(
            json.dumps(
                python_load(spec["url"], spec["headers"], spec["duration"], spec["connections"])
            )
        )
        return 0
    if args.latency:
        print(json.dumps(latency_run(json.loads(args.latency))))
        return 0

    root = args.workdir or Path(tempfile.mkdtemp(prefix="bench-"))
    root.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    report = bench(args, root)
    report["seconds"] = round(time.monotonic() - started, 1)
    report["settings"]["load_average_at_end"] = round(os.getloadavg()[0], 2)
    print_report(report)
    path = args.report or root / "bench-report.json"
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    log(f"report: {path} ({report['seconds']} s)")
    missed = [name for name, target in report["targets"].items() if target["met"] is False]
    if not args.workdir:
        for sub in ("project", "envs", "bare", "seed-env"):
            shutil.rmtree(root / sub, ignore_errors=True)
    return 1 if missed and args.fail else 0


if __name__ == "__main__":
    sys.exit(main())
