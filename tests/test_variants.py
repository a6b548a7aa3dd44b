"""Each runtime variant, installed from scratch, passes its own lint, type check and test suite
against the real PostgreSQL and Redis (`nox -s variants`)."""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import pytest
from helpers import RUNTIME_OPTIONS, TEMPLATE_DIR, combinations, left_running, option_id

pytestmark = pytest.mark.variants


def expected_cost(combo: dict[str, Any]) -> tuple[bool, ...]:
    """Suites with a real worker, nginx, an AI provider or auth take longer, in that order."""
    return (
        combo["use_celery"],
        combo["use_nginx"],
        combo["ai_provider"] != "none",
        combo["use_auth"],
    )


# Longest first: the last variants to start are then the short ones, and the cores stay busy to
# the end instead of waiting on one long suite.
VARIANTS = sorted(combinations(RUNTIME_OPTIONS), key=expected_cost, reverse=True)
ADMIN_DATABASE_URL = os.environ.get(
    "VARIANTS_ADMIN_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("VARIANTS_REDIS_URL", "redis://127.0.0.1:6379")


def redis_databases(spec: str) -> range:
    """`VARIANTS_REDIS_DBS` as "FIRST-LAST": one database per xdist worker, so parallel suites
    never share keys; two variants runs on one machine each take their own range."""
    first, _, last = spec.partition("-")
    return range(int(first), int(last or first) + 1)


REDIS_DBS = redis_databases(os.environ.get("VARIANTS_REDIS_DBS", "1-8"))
# Two runs on one machine (VARIANTS_NAMESPACE=a, =b) get databases of their own names.
NAMESPACE = os.environ.get("VARIANTS_NAMESPACE", "")
SCREENSHOTS_DIR = TEMPLATE_DIR / ".nox" / "screenshots"  # git-ignored
TAIL_LINES = 60
STEP_TIMEOUT = 600


# Python builds that may load SQLite extensions (sqlite-vec, the RAG variants' embedded vector
# store); pyenv's and python.org's builds often cannot. VARIANTS_SQLITE_PYTHON names one.
SQLITE_PYTHON_CANDIDATES = ("/usr/bin/python3.11", "/usr/bin/python3", "/usr/local/bin/python3")
LOADS_EXTENSIONS = (
    "import sqlite3, sys; sqlite3.connect(':memory:').enable_load_extension(True); "
    "sys.exit(sys.version_info < (3, 11))"
)


def loads_sqlite_extensions(python: str) -> bool:
    try:
        result = subprocess.run([python, "-c", LOADS_EXTENSIONS], capture_output=True, timeout=30)
    except OSError:
        return False
    return result.returncode == 0


def variant_python(combo: dict[str, Any]) -> str:
    """The interpreter of a variant's venv: the one running these tests (the oldest supported),
    or for RAG variants, whose tests use sqlite-vec, one that can load SQLite extensions."""
    if not combo.get("use_rag") or loads_sqlite_extensions(sys.executable):
        return sys.executable
    named = os.environ.get("VARIANTS_SQLITE_PYTHON")
    for python in ([named] if named else []) + list(SQLITE_PYTHON_CANDIDATES):
        if loads_sqlite_extensions(python):
            return python
    pytest.fail(
        f"{sys.executable} cannot load SQLite extensions (sqlite-vec) and neither can "
        f"{', '.join(SQLITE_PYTHON_CANDIDATES)}: set VARIANTS_SQLITE_PYTHON to a Python >= 3.11 "
        "built with loadable SQLite extensions",
        pytrace=False,
    )


def tail(text: str, lines: int = TAIL_LINES) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def failed_tests(output: str) -> list[str]:
    return re.findall(r"^(?:FAILED|ERROR) (\S+)", output, re.MULTILINE)


@pytest.fixture(scope="session")
def cookiecutter_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Keep cookiecutter's replay files out of the home directory."""
    base = tmp_path_factory.mktemp("cookiecutter")
    config = base / "config.yaml"
    config.write_text(
        f'cookiecutters_dir: "{base / "templates"}"\nreplay_dir: "{base / "replay"}"\n',
        encoding="utf-8",
    )
    return config


@pytest.fixture(scope="session")
def worker_index(worker_id: str) -> int:
    """0 for the controller or gw0, 1 for gw1, ..."""
    digits = re.sub(r"\D", "", worker_id)
    return int(digits) if digits else 0


@pytest.fixture(scope="session")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This worker's directory: every variant it runs is baked at the same path in it (emptied
    first), so the bytecode its dependencies compiled to, kept in `pycache/` beside it, stays
    valid for the next variant: uv links the same files (same size and mtime) from its cache."""
    return tmp_path_factory.mktemp("variant", numbered=False)


def shared_by_workers(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    """A directory of this run that every worker uses: in the parent of their temporary ones."""
    root = tmp_path_factory.getbasetemp().parent / name
    root.mkdir(exist_ok=True)
    return root


@pytest.fixture(scope="session")
def mypy_caches(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the mypy caches live."""
    return shared_by_workers(tmp_path_factory, "mypy-caches")


@pytest.fixture(scope="session")
def resolved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Markers of the dependency sets this run has installed from the package index."""
    return shared_by_workers(tmp_path_factory, "resolved")


def install_args(project: Path, python: str, resolved: Path) -> tuple[list[str], Path]:
    """`uv pip install` of the project and its dev group, and the marker of its dependency set
    (the baked pyproject.toml and the interpreter).

    An install asks the index about every package again whenever its cached answers are stale,
    and an index that marks none fresh makes that every time: 5-7 s of waiting for a 0.5 s
    install. The first variant of a dependency set in a run installs online; the next ones with
    `--offline`, from the answers that install has just cached (the same versions), falling
    back to online if anything is missing.
    """
    digest = hashlib.sha256((project / "pyproject.toml").read_bytes() + python.encode())
    args = ["pip", "install", "-q", "--python", ".venv/bin/python", "-e", ".", "--group", "dev"]
    return args, resolved / digest.hexdigest()[:16]


@contextmanager
def mypy_cache(root: Path) -> Iterator[Path]:
    """The one mypy cache of every variant, held under a file lock while mypy runs.

    The third-party modules (the slow part, about 15 s of CPU) are checked once for the whole
    matrix instead of once per dependency set: mypy validates each cached module against its
    source file's hash and its dependencies' interfaces, so a package that another variant has
    and this one lacks, or another worker's project path, only means a module re-checked, as
    when packages come and go in one virtualenv. Two mypy processes must not write one cache
    at once, hence the lock.
    """
    with (root / "mypy.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield root / "cache"


@pytest.fixture
def database(combo: dict[str, Any]) -> Iterator[str]:
    """A PostgreSQL database of the variant's own, dropped afterwards."""
    import psycopg

    name = "v_" + hashlib.sha1((NAMESPACE + option_id(combo)).encode()).hexdigest()[:12]  # noqa: S324 - a name
    try:
        admin = psycopg.connect(ADMIN_DATABASE_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {ADMIN_DATABASE_URL}: {exc}", pytrace=False)
    with admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            # The plain postgresql:// form users write; the project maps it to psycopg 3.
            yield f"{ADMIN_DATABASE_URL.rsplit('/', 1)[0]}/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def redis_url(worker_index: int) -> str:
    """This worker's Redis database, emptied first."""
    import redis

    url = f"{REDIS_URL}/{REDIS_DBS[worker_index % len(REDIS_DBS)]}"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=5).flushdb()
    except redis.RedisError as exc:
        pytest.fail(f"Redis is not reachable at {url}: {exc}", pytrace=False)
    return url


def bake(combo: dict[str, Any], output_dir: Path, config: Path) -> Path:
    from cookiecutter.main import cookiecutter

    return Path(
        cookiecutter(
            str(TEMPLATE_DIR),
            no_input=True,
            extra_context=combo,
            output_dir=str(output_dir),
            config_file=str(config),
        )
    )


# This session's interpreter settings, none of the variant's business. PYTHONDONTWRITEBYTECODE
# too: once bytecode is written (see `workdir`), every later process (the next step, a Celery
# worker, gunicorn, the next variant) imports the project and its dependencies in a third of
# the time.
CALLER_ONLY_ENV = frozenset(
    {
        "VIRTUAL_ENV",
        "PYTHONPATH",
        "PYTHONHOME",
        "PYTHONDONTWRITEBYTECODE",
        "UV_PYTHON",
        "UV_SYSTEM_PYTHON",
    }
)


def clean_env(project: Path) -> dict[str, str]:
    """The caller's environment minus this session's virtualenv, with the project's venv first."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in CALLER_ONLY_ENV and not key.startswith(("PYTEST_", "UV_PROJECT"))
    }
    venv_bin = project / ".venv" / "bin"
    paths = [
        p
        for p in env.get("PATH", "").split(os.pathsep)
        if p and Path(p) != Path(sys.prefix) / "bin"
    ]
    env["PATH"] = os.pathsep.join([str(venv_bin), *paths])
    env["VIRTUAL_ENV"] = str(project / ".venv")
    env["UV_PYTHON_DOWNLOADS"] = "never"
    return env


def runs_without_services(combo: dict[str, Any]) -> bool:
    """The variants whose suite also runs as on a laptop with no PostgreSQL, Redis or nginx:
    every ai_provider with and without auth (SQLite, in-memory limits, cache and revocation)."""
    return not combo["use_celery"] and not combo["use_nginx"]


def laptop_env(env: dict[str, str]) -> dict[str, str]:
    """No service URLs and no CI flag: service-backed tests skip, saying how to enable them."""
    return {
        key: value
        for key, value in env.items()
        if key not in {"CI", "TEST_DATABASE_URL", "TEST_REDIS_URL"}
    }


def unexplained_skips(output: str) -> list[str]:
    """`-rs` lines whose reason does not say which setting would run the test."""
    skips = re.findall(r"^SKIPPED \[\d+\] (.+)$", output, re.MULTILINE)
    return [line for line in skips if not re.search(r"\bset \w+=?", line)]


def children_cpu() -> float:
    """CPU seconds of every finished child so far (the step's processes and theirs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_step(args: list[str], project: Path, env: dict[str, str]) -> tuple[bool, str]:
    try:
        result = subprocess.run(
            args,
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=STEP_TIMEOUT,
            check=False,
        )
    except OSError as exc:
        return False, f"cannot run {args[0]}: {exc}"
    except subprocess.TimeoutExpired as exc:
        output = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else ""
        return False, f"{output}\n(timed out after {STEP_TIMEOUT} s)"
    return result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("combo", VARIANTS, ids=option_id)
def test_variant(
    combo: dict[str, Any],
    workdir: Path,
    cookiecutter_config: Path,
    database: str,
    redis_url: str,
    mypy_caches: Path,
    resolved: Path,
    record_property: Any,
) -> None:
    uv = shutil.which("uv")
    assert uv, "uv is not on PATH"
    started = time.monotonic()
    output_dir = workdir / "project"
    shutil.rmtree(output_dir, ignore_errors=True)
    project = bake(combo, output_dir, cookiecutter_config)
    env = {**clean_env(project), "PYTHONPYCACHEPREFIX": str(workdir / "pycache")}
    timings = [f"bake {time.monotonic() - started:.1f} s"]
    try:
        python = variant_python(combo)
        started = time.monotonic()
        ok, output = run_step([uv, "venv", "-q", "--python", python, ".venv"], project, env)
        timings.append(f"venv {time.monotonic() - started:.1f} s")
        if not ok:
            pytest.fail(f"uv venv failed:\n{tail(output)}", pytrace=False)
        install, marker = install_args(project, python, resolved)
        started = time.monotonic()
        ok = marker.exists() and run_step([uv, *install, "--offline"], project, env)[0]
        if not ok:
            ok, output = run_step([uv, *install], project, env)
            if not ok:
                pytest.fail(f"uv pip install failed:\n{tail(output)}", pytrace=False)
            marker.touch()
        timings.append(f"pip {time.monotonic() - started:.1f} s")

        test_env = {
            **env,
            "TEST_DATABASE_URL": database,
            "TEST_REDIS_URL": redis_url,
        }
        # The playground's browser tests save a PNG of each state they reach (AI variants).
        shots: dict[str, str] = {}
        if combo["ai_provider"] != "none":
            folder = SCREENSHOTS_DIR / option_id(combo)
            shutil.rmtree(folder, ignore_errors=True)
            shots["PLAYGROUND_SCREENSHOTS"] = str(folder)
        failures: list[str] = []
        bin_dir = project / ".venv" / "bin"
        pytest_args = [str(bin_dir / "pytest"), "-q", "-p", "no:cacheprovider"]
        steps = [
            (
                "ruff check",
                [str(bin_dir / "ruff"), "check", "--no-cache", "--output-format=concise", "."],
                test_env,
            ),
            (
                "ruff format",
                [str(bin_dir / "ruff"), "format", "--check", "--no-cache", "."],
                test_env,
            ),
            ("mypy", [str(bin_dir / "mypy")], test_env),
            ("pytest", pytest_args, {**test_env, **shots}),
        ]
        if runs_without_services(combo):
            steps.append(
                ("pytest without services", [*pytest_args, "-rs"], {**laptop_env(env), **shots})
            )
        for name, args, step_env in steps:
            with mypy_cache(mypy_caches) if name == "mypy" else nullcontext() as cache:
                if cache is not None:
                    step_env = {**step_env, "MYPY_CACHE_DIR": str(cache)}
                started, cpu = time.monotonic(), children_cpu()
                ok, output = run_step(args, project, step_env)
                seconds = time.monotonic() - started
            timings.append(f"{name} {seconds:.1f} s (cpu {children_cpu() - cpu:.1f} s)")
            if ok and name == "pytest without services":
                unexplained = unexplained_skips(output)
                if unexplained:
                    ok = False
                    output = "skips that do not say how to run them:\n" + "\n".join(unexplained)
            if not ok:
                names = failed_tests(output) if name.startswith("pytest") else []
                listed = "".join(f"\n  {test}" for test in names)
                failures.append(f"== {name} failed ({seconds:.1f} s){listed}\n{tail(output)}")
        leftovers = left_running(project)
        if leftovers:
            listed = "".join(f"\n  {line}" for line in leftovers)
            failures.append(f"== processes left running after the suites (killed):{listed}")
        record_property("timings", ", ".join(timings))
        if failures:
            pytest.fail("\n\n".join(failures), pytrace=False)
    finally:
        shutil.rmtree(project / ".venv", ignore_errors=True)
