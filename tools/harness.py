"""What tools/fuzz.py and tools/bench.py share: running commands, one virtualenv per dependency
set, a PostgreSQL database per run, and gunicorn on a free loopback port."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time
import tomllib
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

TEMPLATE = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def log(message: str) -> None:
    print(message, flush=True)


# Interrupted (Ctrl-C, a CI timeout): stop every child at once, so that each variant's own
# cleanup (stop the server, drop the database) runs and nothing is left listening.
STOP = threading.Event()
_CHILDREN: set[subprocess.Popen[str]] = set()


def spawn(cmd: list[str], **options: Any) -> subprocess.Popen[str]:
    """Start a child in its own session (so it and its children can be signalled as a group)
    and track it until `untrack`, so that an interruption stops it."""
    process = subprocess.Popen(cmd, start_new_session=True, **options)  # noqa: S603
    _CHILDREN.add(process)
    return process


def untrack(process: subprocess.Popen[str]) -> None:
    _CHILDREN.discard(process)


def stop_children(signum: int, _frame: object) -> None:
    STOP.set()
    for process in list(_CHILDREN):
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except OSError:
                process.kill()
    log(f"interrupted by signal {signum}: stopping")


def run(
    cmd: list[str],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 600,
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(  # noqa: S603 - our own argv, no shell
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        tail = (result.stdout + result.stderr).strip().splitlines()[-15:]
        raise RuntimeError(f"{' '.join(cmd[:4])} failed ({result.returncode}):\n" + "\n".join(tail))
    return result


def _project_ports() -> ModuleType:
    """The generated tests' port picker (`tests/ports.py`, which holds no Jinja: the template's
    file is the project's as it stands), for the servers the tools start too."""
    path = TEMPLATE / "{{cookiecutter.project_slug}}" / "tests" / "ports.py"
    spec = importlib.util.spec_from_file_location("project_ports", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    # No tests/__pycache__/ in the template: cookiecutter would copy it into every bake.
    writes_bytecode, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = writes_bytecode
    return module


# A loopback port that nothing listens on and no outgoing connection will be given.
spare_port: Callable[[], int] = _project_ports().spare_port


def new_venv(venv: Path, python: str, *install: str) -> Path:
    """A fresh virtualenv at `venv` with `uv pip install <install>` done in it."""
    run(["uv", "venv", "-q", "--python", python, str(venv)])
    run(["uv", "pip", "install", "-q", "--python", str(venv / "bin" / "python"), *install])
    return venv


class Environments:
    """One virtualenv per distinct dependency list; variants that agree share it."""

    def __init__(self, root: Path, python: str) -> None:
        self.root = root
        self.python = python
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, project: Path) -> Path:
        pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
        dependencies = sorted(pyproject["project"]["dependencies"])
        key = hashlib.sha256("\n".join(dependencies).encode()).hexdigest()[:12]
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        venv = self.root / key
        with lock:
            if not (venv / "ready").exists():
                self.root.mkdir(parents=True, exist_ok=True)
                requirements = self.root / f"{key}.requirements.txt"
                requirements.write_text("\n".join(dependencies) + "\n", encoding="utf-8")
                new_venv(venv, self.python, "-r", str(requirements))
                (venv / "ready").touch()
        return venv


class Postgres:
    def __init__(self, admin_url: str, python: Path) -> None:
        self.admin_url = admin_url
        self.python = python

    def _execute(self, sql: str) -> None:
        script = (
            "import sys, psycopg\n"
            "with psycopg.connect(sys.argv[1], autocommit=True) as c: c.execute(sys.argv[2])\n"
        )
        run([str(self.python), "-c", script, self.admin_url, sql], timeout=60)

    def url(self, name: str) -> str:
        parts = urllib.parse.urlsplit(self.admin_url)
        return urllib.parse.urlunsplit(
            ("postgresql+psycopg", parts.netloc, f"/{name}", parts.query, "")
        )

    def create(self, name: str) -> str:
        self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self._execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop(self, name: str) -> None:
        try:
            self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            log(f"warning: could not drop database {name}: {exc}")


def http_json(
    method: str, url: str, body: object | None = None, token: str | None = None
) -> tuple[int, dict[str, object]]:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"} if data is not None else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        payload = exc.read()
        try:
            return exc.code, json.loads(payload or b"{}")
        except ValueError:
            return exc.code, {"raw": payload.decode(errors="replace")[:500]}


class Server:
    """gunicorn with the project's own gunicorn.conf.py, on a free loopback port."""

    def __init__(
        self,
        project: Path,
        venv: Path,
        app: str,
        env: dict[str, str],
        log_path: Path,
        options: list[str] | None = None,
    ) -> None:
        self.port = spare_port()
        self.base = f"http://127.0.0.1:{self.port}"
        cmd = [str(venv / "bin" / "python"), "-m", "gunicorn"]
        if (project / "gunicorn.conf.py").exists():
            cmd += ["-c", str(project / "gunicorn.conf.py")]
        cmd += ["--bind", f"127.0.0.1:{self.port}", *(options or [])]
        if gunicorn_has_control_socket(venv):
            cmd.append("--no-control-socket")  # two servers at once must not share one socket
        cmd.append(app)
        self.log_path = log_path
        self._log = log_path.open("w", encoding="utf-8")
        self.process = spawn(cmd, cwd=project, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 60, path: str = "/health/ready") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("gunicorn exited at start-up:\n" + self.tail())
            try:
                status, _ = http_json("GET", self.base + path)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError("gunicorn did not become ready:\n" + self.tail())

    def tail(self, lines: int = 20) -> str:
        self._log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=15)
        # Whatever of the group is left: a worker outlives a master that died or was slow to go.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=5)
        self._log.close()


_CONTROL_SOCKET: dict[Path, bool] = {}


def gunicorn_has_control_socket(venv: Path) -> bool:
    if venv not in _CONTROL_SOCKET:
        result = subprocess.run(  # noqa: S603
            [str(venv / "bin" / "python"), "-m", "gunicorn", "--help"],
            capture_output=True,
            text=True,
            check=False,
        )
        _CONTROL_SOCKET[venv] = "--no-control-socket" in result.stdout
    return _CONTROL_SOCKET[venv]
