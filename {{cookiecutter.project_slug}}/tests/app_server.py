"""The app under gunicorn for the tests that need it in processes of its own, on a loopback
socket bound here and inherited (gunicorn's `fd://` bind): no other process can take its port
between choosing it and listening on it (see ports.py for the servers that bind their own).
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APP = "{{ cookiecutter.package_name }}:create_app()"


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
            )
    return process, port
