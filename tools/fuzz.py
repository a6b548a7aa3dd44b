"""Fuzz every runtime variant of the template against its own OpenAPI document.

For each combination of ai_provider x use_rag x use_auth x use_celery x use_nginx: bake the
project, install its dependencies (one environment per distinct dependency set, shared between
variants), create a PostgreSQL database, start the app under gunicorn (it migrates the
database as it starts) with the offline `fake` AI provider and Redis, register and log in a
user when auth is on, and run schemathesis against `/openapi.json`. Counted per variant: 5xx
responses, responses that violate the documented schema or content type, and undocumented
status codes. Exit 1 on any.

    python tools/fuzz.py [--cases N] [--jobs 2] [--only SUBSTRING ...] [--keep]

Needs cookiecutter, schemathesis and uv (`nox -s fuzz` installs the first two), a PostgreSQL
server (FUZZ_DATABASE_URL, default postgresql://postgres@127.0.0.1:5432/postgres; the role
must be allowed to create databases) and Redis (FUZZ_REDIS_URL, default
redis://127.0.0.1:6379/15). Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import re
import resource
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from harness import (
    DEFAULT_DATABASE_URL,
    STOP,
    TEMPLATE,
    Environments,
    Postgres,
    Server,
    http_json,
    log,
    run,
    spawn,
    stop_children,
    untrack,
)

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "response_schema_conformance",
    "content_type_conformance",
)
# schemathesis failure codes -> the three things this harness counts
CATEGORIES = {
    "ST101": "server_errors",
    "ST102": "server_errors",
    "ST103": "undocumented_status",
    "ST104": "schema_violations",
    "ST105": "schema_violations",
    "ST106": "schema_violations",
    "ST108": "schema_violations",
    "ST109": "schema_violations",
    "ST110": "schema_violations",
}
# One variant's schemathesis run may take this long at most (it stops by itself well before).
SCHEMATHESIS_TIMEOUT = 900.0
# Generous limits so the fuzzer measures behaviour, not the rate limiter.
UNTHROTTLED = "1000000 per minute"
PASSWORD = "fuzz-" + secrets.token_urlsafe(12)

HOOKS = '''\
"""schemathesis hooks: log in as the harness's accounts; keep those accounts usable."""

import json
import os
import re
import urllib.request

import schemathesis

BASE = os.environ["FUZZ_BASE_URL"]
PROTECTED = {v for v in os.environ.get("FUZZ_PROTECTED_USER_IDS", "").split(",") if v}
SPARE = int(os.environ.get("FUZZ_SPARE_USER_ID") or 0)
ADMIN_ONLY = re.compile(r"^/api/v1/users(/\\{[^}]+\\})?$")


def _role(path):
    if path == "/api/v1/auth/refresh":
        return "REFRESH"  # takes the refresh token, not the access token
    return "ADMIN" if ADMIN_ONLY.match(path) else "USER"


def _login(role):
    kind = "refresh_token" if role == "REFRESH" else "access_token"
    role = "USER" if role == "REFRESH" else role
    body = json.dumps(
        {"email": os.environ[f"FUZZ_{role}_EMAIL"], "password": os.environ["FUZZ_PASSWORD"]}
    ).encode()
    request = urllib.request.Request(
        BASE + "/api/v1/auth/login", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)["data"][kind]


@schemathesis.auth(cache_by_key=lambda case, ctx: _role(ctx.operation.path), refresh_interval=600)
class Login:
    """A fresh token per role; schemathesis logs in again after a 401 (logout, rotation)."""

    def get(self, case, ctx):
        return _login(_role(ctx.operation.path))

    def set(self, case, data, ctx):
        case.headers = dict(case.headers or {})
        case.headers["Authorization"] = f"Bearer {data}"


def _spare_the_protected(path, path_parameters):
    """Admin routes may deactivate or demote any account; aim them at a spare one, not at
    the accounts the rest of the run logs in with."""
    if SPARE and ADMIN_ONLY.match(path):
        for name, value in list((path_parameters or {}).items()):
            if str(value) in PROTECTED:  # an int when generated, maybe a str from a link
                path_parameters[name] = SPARE
    return path_parameters


@schemathesis.hook
def map_path_parameters(ctx, path_parameters):
    if ctx.operation is None:
        return path_parameters
    return _spare_the_protected(ctx.operation.path, path_parameters)


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    # The stateful phase fills path parameters from earlier responses (a user listed by
    # GET /users, then PATCHed), which the generation hook above never sees.
    _spare_the_protected(case.operation.path, case.path_parameters)
'''


@dataclass(frozen=True)
class Variant:
    ai_provider: str
    use_rag: bool
    use_auth: bool
    use_celery: bool
    use_nginx: bool

    @property
    def id(self) -> str:
        """The variant's id in tests/helpers.py (`nox -s variants -- --list-json`)."""
        return (
            f"ai_provider:{self.ai_provider}-use_rag:{self.use_rag}-use_auth:{self.use_auth}"
            f"-use_celery:{self.use_celery}-use_nginx:{self.use_nginx}"
        )

    @property
    def short(self) -> str:
        flags = "".join(
            letter if on else "-"
            for letter, on in (
                ("r", self.use_rag),
                ("a", self.use_auth),
                ("c", self.use_celery),
                ("n", self.use_nginx),
            )
        )
        return f"{self.ai_provider[:6]}_{flags}".replace("-", "x")

    def context(self) -> dict[str, object]:
        return {
            "ai_provider": self.ai_provider,
            "use_rag": self.use_rag,
            "use_auth": self.use_auth,
            "use_celery": self.use_celery,
            "use_nginx": self.use_nginx,
            "use_docker": False,
            "ci_provider": "none",
        }


@dataclass
class Result:
    variant: Variant
    cases: int = 0
    operations: int = 0
    server_errors: int = 0
    schema_violations: int = 0
    undocumented_status: int = 0
    other: int = 0
    error: str | None = None
    reduced: bool = False  # the stateful phase alone, the deadline being near
    notes: list[str] = field(default_factory=list)
    failures_text: str = ""
    server_exceptions: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def findings(self) -> int:
        return self.server_errors + self.schema_violations + self.undocumented_status + self.other

    @property
    def ok(self) -> bool:
        return self.error is None and self.findings == 0

    def line(self) -> str:
        status = "ok" if self.ok else ("ERROR" if self.error else "FINDINGS")
        text = (
            f"{status:8} {self.variant.id:70} cases={self.cases:<5} 5xx={self.server_errors} "
            f"schema={self.schema_violations} undocumented={self.undocumented_status} "
            f"other={self.other} {self.seconds:5.0f}s"
        )
        if self.error:
            text += f"  ({self.error})"
        return text


def variants(template: Path) -> list[Variant]:
    """Every runtime variant: RAG (documents, search, ask) with each AI provider."""
    config = json.loads((template / "cookiecutter.json").read_text(encoding="utf-8"))
    return [
        Variant(provider, rag, auth, celery, nginx)
        for provider, rag, auth, celery, nginx in itertools.product(
            config["ai_provider"], (False, True), (True, False), (True, False), (True, False)
        )
        if not (rag and provider == "none")  # the pre-gen hook refuses RAG without a provider
    ]


def bake(variant: Variant, template: Path, output: Path) -> Path:
    # A separate process: cookiecutter changes the working directory while its hooks run.
    output.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "cookiecutter",
        "--no-input",
        "-f",
        "-o",
        str(output),
        str(template),
    ]
    cmd += [f"{key}={value}" for key, value in variant.context().items()]
    run(cmd, timeout=120)
    (project,) = (path for path in output.iterdir() if path.is_dir())
    return project


def setup_accounts(
    server: Server, project: Path, venv: Path, package: str, env: dict[str, str], suffix: str
) -> dict[str, str]:
    """Register a user and a spare user over HTTP, create an admin with the CLI."""
    accounts = {
        "USER": f"fuzz-user-{suffix}@example.com",
        "SPARE": f"fuzz-spare-{suffix}@example.com",
        "ADMIN": f"fuzz-admin-{suffix}@example.com",
    }
    ids: dict[str, int] = {}
    for role in ("USER", "SPARE"):
        status, body = http_json(
            "POST",
            server.base + "/api/v1/auth/register",
            {"email": accounts[role], "password": PASSWORD, "full_name": f"Fuzz {role.title()}"},
        )
        if status != 201:
            raise RuntimeError(f"register {role.lower()} answered {status}: {body}")
        ids[role] = int(body["data"]["user"]["id"])  # type: ignore[index,call-overload]
    run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "flask",
            "--app",
            package,
            "users",
            "create",
            "--email",
            accounts["ADMIN"],
            "--password",
            PASSWORD,
            "--full-name",
            "Fuzz Admin",
            "--role",
            "admin",
        ],
        cwd=project,
        env=env,
    )
    status, body = http_json(
        "POST",
        server.base + "/api/v1/auth/login",
        {"email": accounts["ADMIN"], "password": PASSWORD},
    )
    if status != 200:
        raise RuntimeError(f"admin login answered {status}: {body}")
    ids["ADMIN"] = int(body["data"]["user"]["id"])  # type: ignore[index,call-overload]
    return {
        "FUZZ_USER_EMAIL": accounts["USER"],
        "FUZZ_ADMIN_EMAIL": accounts["ADMIN"],
        "FUZZ_PASSWORD": PASSWORD,
        "FUZZ_PROTECTED_USER_IDS": f"{ids['USER']},{ids['ADMIN']}",
        "FUZZ_SPARE_USER_ID": str(ids["SPARE"]),
    }


def fetch_spec(server: Server, result: Result) -> tuple[str, dict[str, object]]:
    status, spec = http_json("GET", server.base + "/openapi.json")
    if status == 200 and "paths" in spec:
        return server.base + "/openapi.json", spec
    # Report the contract breach, then fuzz the document where flask-openapi3 put it.
    result.other += 1
    result.notes.append(f"GET /openapi.json answered {status}; the contract publishes it there")
    status, spec = http_json("GET", server.base + "/docs/openapi.json")
    if status != 200:
        raise RuntimeError("no OpenAPI document at /openapi.json or /docs/openapi.json")
    return server.base + "/docs/openapi.json", spec


def count_operations(spec: dict[str, object]) -> tuple[int, int]:
    """(all operations, operations that take any input)."""
    total = with_input = 0
    paths = spec.get("paths", {})
    assert isinstance(paths, dict)
    for item in paths.values():
        for method, operation in item.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            total += 1
            if operation.get("parameters") or operation.get("requestBody"):
                with_input += 1
    return total, with_input


def schemathesis_binary() -> str:
    local = Path(sys.executable).parent / "schemathesis"
    return str(local) if local.exists() else (shutil.which("schemathesis") or "schemathesis")


def run_schemathesis(
    server: Server,
    spec_url: str,
    spec: dict[str, object],
    cases: int,
    workdir: Path,
    extra_env: dict[str, str],
    seed: str | None,
    phases: str,
    result: Result,
) -> None:
    total, with_input = count_operations(spec)
    result.operations = total
    # max-examples is per operation and drives the fuzzing phase. The coverage and stateful
    # phases add their own cases: several times as many for a large API (auth or AI routes), far
    # fewer for a small one. Operations without input yield one or two. At least 5 each: with
    # the 72 variants CI stays well inside its hour.
    share = 2 if with_input >= 8 else 1
    per_operation = max(5, math.ceil(cases / (share * max(1, with_input))))
    report = workdir / "schemathesis.json"
    cmd = [
        schemathesis_binary(),
        "run",
        spec_url,
        "--url",
        server.base,
        "--checks",
        ",".join(CHECKS),
        "--max-examples",
        str(per_operation),
        # One worker: generation is CPU-bound anyway, and hypothesis' lambda descriptions are
        # not thread-safe (intermittent "AST constructor recursion depth mismatch" errors).
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--generation-database",
        "none",
        "--suppress-health-check",
        "all",
        "--report",
        "json",
        "--report-json-path",
        str(report),
        "--no-color",
        # Closing the account would end the run's sign-in: the generated tests cover it.
        "--exclude-operation-id",
        "deleteMe",
    ]
    if seed:
        cmd += ["--seed", seed]
    cmd += ["--phases", phases]
    env = dict(os.environ, FUZZ_BASE_URL=server.base, **extra_env)
    if extra_env:
        env["SCHEMATHESIS_HOOKS"] = "fuzz_hooks"
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(workdir), env.get("PYTHONPATH")]))
    process = spawn(
        cmd, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        stdout, _ = process.communicate(timeout=SCHEMATHESIS_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, _ = process.communicate()
        result.notes.append(f"schemathesis was stopped after {SCHEMATHESIS_TIMEOUT:.0f} s")
    finally:
        untrack(process)
    output = subprocess.CompletedProcess(cmd, process.returncode, stdout, "")
    (workdir / "schemathesis.log").write_text(output.stdout, encoding="utf-8")
    if not report.exists():
        raise RuntimeError("schemathesis wrote no report:\n" + output.stdout[-2000:])
    data = json.loads(report.read_text(encoding="utf-8"))
    result.cases = int(data["test_cases"]["generated"])
    for failure in data.get("failures", []):
        category = CATEGORIES.get(failure["code"], "other")
        setattr(result, category, getattr(result, category) + int(failure["count"]))
    if data.get("errors"):
        result.other += len(data["errors"])
    if data["operations"].get("errored"):
        result.notes.append(f"{data['operations']['errored']} operations errored in schemathesis")
    match = re.search(r"^=+ FAILURES =+$(.*?)^=+ SUMMARY =+$", output.stdout, re.S | re.M)
    errors = re.search(r"^=+ ERRORS =+$(.*?)^=+ (FAILURES|SUMMARY) =+$", output.stdout, re.S | re.M)
    result.failures_text = "".join(m.group(1) for m in (errors, match) if m).strip()
    if result.cases < cases:
        result.notes.append(f"only {result.cases} cases generated (asked for {cases})")


_RAISED = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Violation|Warning)\b")


def server_exceptions(log_path: Path) -> list[str]:
    """Distinct unhandled exceptions the app logged: '<message>: <last traceback line>'."""
    seen: dict[str, int] = {}
    for line in log_path.read_text(errors="replace").splitlines():
        if not line.startswith("{"):
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        trace = entry.get("exception")
        if not trace:
            continue
        lines = [part.strip() for part in str(trace).splitlines() if part.strip()]
        raised = [part for part in lines if _RAISED.match(part)] or lines[-1:]
        message = re.sub(r"/\d+", "/{id}", str(entry.get("message")))
        key = f"{message}: {raised[-1][:300]}"
        seen[key] = seen.get(key, 0) + 1
    return [f"{count}x {key}" for key, count in seen.items()]


class Schedule:
    """`--deadline`: every variant is fuzzed; once the time left would not let the variants still
    to come have the phases asked for (at the pace of those done), they get the stateful phase
    alone, and say so. Without a deadline every variant gets every phase asked for."""

    REDUCED = "stateful"

    def __init__(self, deadline: float | None, variants: int, jobs: int) -> None:
        self.deadline = deadline
        self.waiting = variants
        self.jobs = jobs
        self.full_seconds: list[float] = []
        self.pacing = 0  # variants started with every phase before any had finished
        self.lock = threading.Lock()

    def phases(self, asked: str) -> str:
        """The phases for the variant whose server has just started."""
        with self.lock:
            self.waiting -= 1
            if self.deadline is None or asked == self.REDUCED:
                return asked
            if not self.full_seconds:
                # No pace yet: the first variants, one per job, get every phase and set it.
                # (Guessing one cut the first variants short in a CI run with time to spare.)
                if self.pacing < self.jobs:
                    self.pacing += 1
                    return asked
                return self.REDUCED if self.deadline <= time.time() else asked
            # The time a variant with every phase asked for has taken.
            pace = statistics.mean(self.full_seconds)
            share = (self.deadline - time.time()) * self.jobs / (self.waiting + 1)
            return asked if share >= pace else self.REDUCED

    def done(self, seconds: float, phases: str, asked: str) -> None:
        if phases == asked:
            with self.lock:
                self.full_seconds.append(seconds)


def fuzz_variant(
    variant: Variant,
    args: argparse.Namespace,
    root: Path,
    envs: Environments,
    tag: str,
    schedule: Schedule,
) -> Result:
    result = Result(variant)
    if STOP.is_set():
        result.error = "not run: interrupted"
        return result
    started = time.monotonic()
    workdir = root / variant.short
    workdir.mkdir(parents=True, exist_ok=True)
    server: Server | None = None
    postgres: Postgres | None = None
    database = f"{args.db_prefix}_{tag}_{variant.short}".lower()
    try:
        project = bake(variant, args.template, workdir / "project")
        package = project.name.replace("-", "_")
        venv = envs.get(project)
        postgres = Postgres(args.database_url, venv / "bin" / "python")
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))},
            "PYTHONPATH": str(project / "src"),
            "APP_ENV": "development",
            "SECRET_KEY": secrets.token_urlsafe(48),
            "JWT_SECRET_KEY": secrets.token_urlsafe(48),
            "DATABASE_URL": postgres.create(database),
            "REDIS_URL": args.redis_url,
            "AI_PROVIDER": "fake",
            "AI_TOKEN_BUDGET_DAILY": str(10**9),
            "RATE_LIMIT_DEFAULT": UNTHROTTLED,
            "RATE_LIMIT_AUTH": UNTHROTTLED,
            "RATE_LIMIT_AI": UNTHROTTLED,
            "LOG_LEVEL": os.environ.get("FUZZ_LOG_LEVEL", "WARNING"),
            "LOG_FORMAT": "json",
            # The app migrates its database as it starts (one worker): no process of its own
            # to import the app just for that.
            "AUTO_MIGRATE": "true",
        }
        server = Server(
            project,
            venv,
            f"{package}:create_app()",
            env,
            workdir / "server.log",
            ["--workers", "1", "--threads", "4", "--timeout", "60", "--graceful-timeout", "5"],
        )
        server.wait_ready()
        extra_env: dict[str, str] = {}
        if variant.use_auth:
            extra_env = setup_accounts(server, project, venv, package, env, tag)
            (workdir / "fuzz_hooks.py").write_text(HOOKS, encoding="utf-8")
        spec_url, spec = fetch_spec(server, result)
        phases = schedule.phases(args.phases)
        if phases != args.phases:
            result.reduced = True
            result.notes.append(f"phases {phases} only: the deadline was near")
        run_schemathesis(
            server, spec_url, spec, args.cases, workdir, extra_env, args.seed, phases, result
        )
        schedule.done(time.monotonic() - started, phases, args.phases)
    except Exception as exc:  # one broken variant must not stop the others
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        raised = [line for line in lines if re.match(r"^[\w.]+(Error|Exception)\b", line)]
        summary = lines[:1] + (raised[-1:] or lines[-1:])
        result.error = (" | ".join(summary) if lines else type(exc).__name__)[:300]
        result.notes.append(str(exc))
    finally:
        if server is not None:
            server.stop()
            result.server_exceptions = server_exceptions(server.log_path)
        if postgres is not None:
            postgres.drop(database)
        result.seconds = time.monotonic() - started
    log(result.line())
    return result


def print_findings(results: list[Result], limit: int) -> None:
    for result in results:
        if result.ok and not result.notes:
            continue
        log("")
        log(f"--- {result.variant.id}")
        for note in result.notes:
            log(f"note: {note}")
        for exception in result.server_exceptions[:20]:
            log(f"server: {exception}")
        if result.failures_text:
            lines = result.failures_text.splitlines()
            log("\n".join(lines[:limit]))
            if len(lines) > limit:
                log(f"... {len(lines) - limit} more lines in the schemathesis log")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cases",
        type=int,
        # The coverage and stateful phases add their own (about 1,200 for a large variant).
        default=int(os.environ.get("FUZZ_CASES", "100")),
        help="generated cases per variant in the fuzzing phase, at least (env FUZZ_CASES)",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=int(os.environ.get("FUZZ_JOBS", "2")),
        help="variants fuzzed at once",
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        help="fuzz only variants whose id contains this (repeatable; all must match)",
    )
    parser.add_argument(
        "--seed",
        default=os.environ.get("FUZZ_SEED"),
        help="schemathesis seed, for a reproducible run",
    )
    parser.add_argument(
        "--phases",
        default=os.environ.get("FUZZ_PHASES", "examples,coverage,fuzzing,stateful"),
        help="schemathesis' phases (env FUZZ_PHASES; CI runs fuzzing,stateful: the coverage "
        "phase's boundary cases double the time)",
    )
    parser.add_argument(
        "--deadline",
        type=float,
        help="a time (seconds since the epoch) to finish by: variants that would overrun it get "
        "the stateful phase alone, and say so (every variant is still fuzzed)",
    )
    parser.add_argument("--template", type=Path, default=TEMPLATE)
    parser.add_argument("--workdir", type=Path, help="keep everything here (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    parser.add_argument("--python", default=sys.executable, help="interpreter for the projects")
    parser.add_argument(
        "--database-url", default=os.environ.get("FUZZ_DATABASE_URL", DEFAULT_DATABASE_URL)
    )
    parser.add_argument("--redis-url", default=os.environ.get("FUZZ_REDIS_URL", DEFAULT_REDIS_URL))
    parser.add_argument(
        "--db-prefix",
        default=os.environ.get("FUZZ_DB_PREFIX", "fuzz"),
        help="prefix of the databases created (and dropped) per variant",
    )
    parser.add_argument("--report", type=Path, help="write a JSON report here")
    parser.add_argument(
        "--show-lines",
        type=int,
        default=80,
        help="lines of schemathesis failure output shown per variant",
    )
    args = parser.parse_args(argv)

    selected = [v for v in variants(args.template) if all(s in v.id for s in args.only)]
    if not selected:
        parser.error("no variant matches --only")
    root = args.workdir or Path(tempfile.mkdtemp(prefix="fuzz-"))
    root.mkdir(parents=True, exist_ok=True)
    envs = Environments(root / "envs", args.python)
    tag = f"{os.getpid()}"
    log(
        f"fuzzing {len(selected)} variants, >= {args.cases} cases each, {args.jobs} at a time; "
        f"work dir {root}"
    )
    started = time.monotonic()
    schedule = Schedule(args.deadline, len(selected), args.jobs)
    signal.signal(signal.SIGTERM, stop_children)
    signal.signal(signal.SIGINT, stop_children)
    try:
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            results = list(
                pool.map(lambda v: fuzz_variant(v, args, root, envs, tag, schedule), selected)
            )
    finally:
        if not (args.keep or args.workdir):
            shutil.rmtree(root, ignore_errors=True)
    elapsed = time.monotonic() - started
    print_findings(results, args.show_lines)
    log("")
    log("summary:")
    for result in results:
        log(result.line())
    bad = [r for r in results if not r.ok]
    total_cases = sum(r.cases for r in results)
    # CPU seconds of this process and every child (servers, schemathesis, installs): on an
    # otherwise idle machine with N cores the run takes about cpu / N of wall time.
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    cpu = sum(u.ru_utime + u.ru_stime for u in usage)
    log(
        f"cpu: {cpu:.0f} s in all, about {cpu / (os.cpu_count() or 1) / 60:.1f} min of wall time "
        f"on {os.cpu_count()} idle cores; load average now {os.getloadavg()[0]:.1f}"
    )
    log(
        f"fuzz: {len(results)} variants, {len(bad)} with findings or errors, "
        f"{total_cases} cases in {elapsed:.0f}s"
    )
    reduced = sum(result.reduced for result in results)
    if reduced:
        log(f"{reduced} variants had the {Schedule.REDUCED} phase alone (--deadline)")
    if args.report:
        args.report.write_text(
            json.dumps(
                {
                    "seconds": round(elapsed, 1),
                    "cases_per_variant": args.cases,
                    "variants": [
                        {
                            "id": r.variant.id,
                            "cases": r.cases,
                            "operations": r.operations,
                            "server_errors": r.server_errors,
                            "schema_violations": r.schema_violations,
                            "undocumented_status": r.undocumented_status,
                            "other": r.other,
                            "error": r.error,
                            "reduced": r.reduced,
                            "notes": r.notes,
                            "server_exceptions": r.server_exceptions,
                            "failures": r.failures_text,
                            "seconds": round(r.seconds, 1),
                        }
                        for r in results
                    ],
                },
                indent=2,
            )
            + "\n",
            encoding="utf-8",
        )
    if STOP.is_set():
        return 130
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
