"""Checks of one baked project. Each returns a list of problems (empty when the check passes), so
one test can report every broken rule of a variant at once."""

from __future__ import annotations

import fnmatch
import json
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import yaml
from helpers import STAYS_JINJA, iter_files, load_hook
from ruff.__main__ import find_ruff_bin

LEFTOVER_RE = re.compile(r"\{\{|\{%|\{#|cookiecutter", re.IGNORECASE)
MAY_BE_EMPTY = {"__init__.py", "py.typed", ".gitkeep"}

# Distribution names that only a feature may bring in. An entry allows the name for every
# variant with the feature, so provider SDKs belong to their provider, not to "ai".
FEATURE_DEPENDENCIES: dict[str, set[str]] = {
    "auth": {"flask-jwt-extended", "argon2-cffi", "pyjwt"},
    "anthropic": {"anthropic"},
    "openai_sdk": {"openai"},
    "celery": {"celery", "kombu", "flower", "opentelemetry-instrumentation-celery"},
    "playground": {"selenium"},
    "rag": {"openai", "pypdf", "sqlite-vec"},
}
# Settings (environment names) that only a feature may define.
FEATURE_SETTINGS: dict[str, set[str]] = {
    "auth": {"JWT_SECRET_KEY", "RATE_LIMIT_AUTH"},
    "ai": {
        "AI_PROVIDER",
        "AI_API_KEY",
        "AI_MODEL",
        "AI_BASE_URL",
        "AI_TIMEOUT",
        "AI_MAX_RETRIES",
        "AI_TOKEN_BUDGET_DAILY",
        "RATE_LIMIT_AI",
    },
    "azure_openai": {"AI_API_VERSION"},
    "celery": {"CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"},
    "playground": {"PLAYGROUND_ENABLED"},
    "rag": {
        "EMBEDDINGS_MODEL",
        "EMBEDDINGS_DIMENSIONS",
        "EMBEDDINGS_BASE_URL",
        "EMBEDDINGS_API_KEY",
        "RAG_CHUNK_SIZE",
        "RAG_CHUNK_OVERLAP",
    },
}
# Settings every project documents in .env.example when the feature is on ("base": always).
REQUIRED_SETTINGS: dict[str, set[str]] = {
    "base": {"APP_ENV", "SECRET_KEY", "DATABASE_URL", "REDIS_URL"},
    "auth": {"JWT_SECRET_KEY"},
    "ai": {"AI_PROVIDER", "AI_API_KEY", "AI_MODEL"},
    "playground": {"PLAYGROUND_ENABLED"},
    "rag": {"EMBEDDINGS_MODEL", "EMBEDDINGS_DIMENSIONS", "RAG_CHUNK_SIZE", "RAG_CHUNK_OVERLAP"},
}
# Words that must not appear anywhere in a project without the feature (case-insensitive).
# Setting names, route prefixes, error codes and SDK names of each feature, in every file.
FEATURE_WORDS: dict[str, list[str]] = {
    "auth": [
        r"jwt",
        r"argon2",
        r"/auth/",
        r"/users\b",
        r"\binvalid_credentials\b",
        r"\btoken_expired\b",
        r"\btoken_revoked\b",
        r"\bRATE_LIMIT_AUTH\b",
    ],
    "ai": [
        r"\bAI_(PROVIDER|API_KEY|MODEL|BASE_URL|API_VERSION|TIMEOUT|MAX_RETRIES|TOKEN_BUDGET_DAILY|CACHE_TTL|RETRY_BACKOFF|TOOL_TIMEOUT)\b",
        r"\bRATE_LIMIT_AI\b",
        r"/ai/",
        r"/recipes\b",
        r"\bai_provider_error\b",
        r"\bai_unavailable\b",
        r"\bai_timeout\b",
        r"\bbudget_exceeded\b",
        r"\bgen_ai\.",
    ],
    "openai_sdk": [r"openai"],
    "azure_openai": [r"openai", r"azure"],
    "anthropic": [r"anthropic", r"claude"],
    "ollama": [r"ollama"],
    "celery": [r"celery", r"/tasks/", r"\bjob_timeout\b"],
    "playground": [r"playground", r"selenium", r"chromium"],
    # The embeddings of every RAG variant go through the OpenAI SDK (anthropic's too).
    "rag": [
        r"pgvector",
        r"sqlite.vec",
        r"pypdf",
        r"embeddings?_",
        r"\bRAG_",
        r"/ai/ask\b",
        r"\bno_context\b",
        r"openai",
    ],
    "nginx": [r"nginx"],
    "docker": [r"docker"],
    "kubernetes": [r"kubernetes", r"kubectl"],
    # Links to github.com (e.g. pre-commit hooks) are fine; GitHub Actions config is not.
    "github": [r"\.github/", r"github actions", r"\bgithub_[a-z]"],
    "gitlab": [r"gitlab"],
}
# Files where a feature's word may appear without the feature: code may explain headers that any
# nginx in front needs (X-Accel-Buffering), whether or not the bundled config is there.
# The test stub upstream speaks every provider's wire protocol from one handler (the path
# tells which), so it names the others; nothing outside tests/ may.
# The Kubernetes Ingress is written for the ingress-nginx controller, which has nothing to do with
# the bundled nginx config; its annotations name it whether or not use_nginx is on.
FEATURE_WORDS_EXEMPT: dict[str, tuple[str, ...]] = {
    "nginx": ("*.py", "deploy/kubernetes/*"),
    "anthropic": ("tests/upstream.py",),
    "openai_sdk": ("tests/upstream.py",),
    "azure_openai": ("tests/upstream.py",),
}


def relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def read_text(path: Path) -> str | None:
    """The file's text, or None for a binary file."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def keeps_jinja(rel: str) -> bool:
    return any(fnmatch.fnmatch(rel, pattern) for pattern in STAYS_JINJA)


def text_files(root: Path) -> dict[str, str]:
    """Relative path -> text of every text file, except the generated `.env`."""
    files = {}
    for path in iter_files(root):
        rel = relative(path, root)
        if rel == ".env":
            continue
        text = read_text(path)
        if text is not None:
            files[rel] = text
    return files


def check_leftovers(root: Path, files: dict[str, str]) -> list[str]:
    """No Jinja or cookiecutter left in names or contents (except files meant to stay Jinja)."""
    problems = []
    for path in iter_files(root):
        rel = relative(path, root)
        if LEFTOVER_RE.search(rel):
            problems.append(f"leftover template syntax in the file name {rel}")
    for rel, text in files.items():
        if keeps_jinja(rel):
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if LEFTOVER_RE.search(line):
                problems.append(f"leftover template syntax at {rel}:{number}: {line.strip()}")
    return problems


def check_whitespace(files: dict[str, str]) -> list[str]:
    """Rendering leaves no trailing spaces, runs of blank lines, or empty files."""
    problems = []
    for rel, text in files.items():
        name = Path(rel).name
        if not text.strip():
            if name not in MAY_BE_EMPTY:
                problems.append(f"{rel} is empty")
            continue
        if not text.endswith("\n") or text.endswith("\n\n"):
            problems.append(f"{rel} must end with exactly one newline")
        if rel.endswith(".py") or keeps_jinja(rel):
            continue  # ruff format owns Python layout
        lines = text.splitlines()
        for number, line in enumerate(lines, 1):
            if line != line.rstrip():
                problems.append(f"trailing whitespace at {rel}:{number}")
        blank_run = 0
        for number, line in enumerate(lines, 1):
            blank_run = blank_run + 1 if not line.strip() else 0
            if blank_run == 3:
                problems.append(f"three blank lines in a row at {rel}:{number}")
    return problems


def check_manifest(root: Path, context: dict[str, Any]) -> list[str]:
    """Each MANIFEST path of a disabled feature is gone; each of an enabled feature is there."""
    hook = load_hook("post_gen_project", context)
    package = str(context["package_name"])
    enabled = hook.enabled_features(context)
    problems = []
    for feature, paths in hook.MANIFEST.items():
        for template_path in paths:
            rel = template_path.format(package=package)
            exists = (root / rel).exists()
            if feature in enabled and not exists:
                problems.append(f"{rel} (feature {feature}, enabled) is missing")
            elif feature not in enabled and exists:
                problems.append(f"{rel} (feature {feature}, disabled) is present")
    return problems


def requirement_name(requirement: str) -> str:
    name = re.split(r"[\s\[<>=!~;@(]", requirement.strip(), maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def declared_dependencies(pyproject: dict[str, Any]) -> set[str]:
    project = pyproject.get("project", {})
    requirements = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        requirements.extend(extra)
    for group in pyproject.get("dependency-groups", {}).values():
        requirements.extend(item for item in group if isinstance(item, str))
    return {requirement_name(requirement) for requirement in requirements}


def env_keys(text: str) -> set[str]:
    """Names set or shown (commented out) in a dotenv file."""
    return set(re.findall(r"^\s*#?\s*([A-Z][A-Z0-9_]*)\s*=", text, re.MULTILINE))


def check_feature_config(
    root: Path, files: dict[str, str], enabled: set[str], all_features: set[str]
) -> list[str]:
    """No dependency or setting of a disabled feature; the settings of enabled ones documented."""
    problems = []
    try:
        pyproject = tomllib.loads(files.get("pyproject.toml", ""))
    except tomllib.TOMLDecodeError as exc:
        return [f"pyproject.toml does not parse: {exc}"]
    dependencies = declared_dependencies(pyproject)
    allowed = set().union(*(FEATURE_DEPENDENCIES.get(f, set()) for f in enabled))
    for feature in all_features - enabled:
        for name in sorted((FEATURE_DEPENDENCIES.get(feature, set()) & dependencies) - allowed):
            problems.append(f"pyproject.toml depends on {name} though {feature} is off")

    example = files.get(".env.example")
    if example is None:
        problems.append(".env.example is missing")
        example = ""
    code = "\n".join(text for rel, text in files.items() if rel.startswith("src/"))
    declared = env_keys(example)
    allowed_settings = set().union(*(FEATURE_SETTINGS.get(f, set()) for f in enabled))
    for feature in sorted(all_features - enabled):
        for name in sorted(FEATURE_SETTINGS.get(feature, set()) - allowed_settings):
            if name in declared:
                problems.append(f".env.example sets {name} though {feature} is off")
            if re.search(rf"\b{name}\b", code, re.IGNORECASE):
                problems.append(f"the package names {name.lower()} though {feature} is off")
    for feature in ["base", *sorted(enabled)]:
        for name in sorted(REQUIRED_SETTINGS.get(feature, set()) - declared):
            problems.append(f".env.example does not document {name}")
    return problems


def check_feature_words(
    files: dict[str, str], enabled: set[str], all_features: set[str]
) -> list[str]:
    """No mention of a disabled feature in code, config or docs."""
    # Words an enabled feature may use, then each word already searched for.
    skip = {word for feature in enabled for word in FEATURE_WORDS.get(feature, [])}
    wanted: list[tuple[str, str]] = []  # (feature, word), each word under its first feature
    for feature in sorted(all_features - enabled):
        for word in FEATURE_WORDS.get(feature, []):
            if word not in skip:
                skip.add(word)
                wanted.append((feature, word))
    if not wanted:
        return []
    # One search of each file for all the words at once: most files mention none, and none of
    # the words can match across a line break. Only the files that do are searched word by
    # word, then walked line by line for the report.
    anything = re.compile("|".join(f"(?:{word})" for _, word in wanted), re.IGNORECASE)
    mentioning = {rel: text for rel, text in files.items() if anything.search(text)}
    problems = []
    for feature, word in wanted:
        pattern = re.compile(word, re.IGNORECASE)
        exempt = FEATURE_WORDS_EXEMPT.get(feature, ())
        for rel, text in mentioning.items():
            if not pattern.search(text) or any(fnmatch.fnmatch(rel, g) for g in exempt):
                continue
            for number, line in enumerate(text.splitlines(), 1):
                if pattern.search(line):
                    problems.append(
                        f"{rel}:{number} mentions {word!r} though {feature} is off: "
                        f"{line.strip()[:120]}"
                    )
    return problems


class _AnyTagLoader(yaml.SafeLoader):
    """Safe YAML loading that also accepts CI-specific tags such as GitLab's `!reference`."""


def _any_tag(loader: yaml.SafeLoader, _suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_scalar(node)  # type: ignore[arg-type]


_AnyTagLoader.add_multi_constructor("!", _any_tag)


def check_data_files(files: dict[str, str]) -> list[str]:
    """Every TOML, YAML and JSON file parses."""
    problems = []
    for rel, text in files.items():
        try:
            if rel.endswith(".toml"):
                tomllib.loads(text)
            elif rel.endswith((".yml", ".yaml")):
                list(yaml.load_all(text, Loader=_AnyTagLoader))
            elif rel.endswith(".json"):
                json.loads(text)
        except (tomllib.TOMLDecodeError, yaml.YAMLError, json.JSONDecodeError) as exc:
            problems.append(f"{rel} does not parse: {exc}")
    return problems


# The ruff binary itself: `python -m ruff` starts an interpreter only to find it, twice a bake.
RUFF = find_ruff_bin()


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False)


def check_ruff(root: Path) -> list[str]:
    """`ruff check` and `ruff format --check` pass with the project's own configuration."""
    problems = []
    for command in ("check", "format"):
        args = [RUFF, command, "--no-cache", "--output-format=concise", "."]
        if command == "format":
            args.insert(2, "--check")
        result = run(args, root)
        if result.returncode != 0:
            problems.extend(
                f"ruff {command}: {line}"
                for line in (result.stdout + result.stderr).splitlines()
                if re.match(r"\S+:\d+:\d+: ", line)
            )
            if not any(problem.startswith(f"ruff {command}") for problem in problems):
                problems.append(f"ruff {command} failed: {result.stdout}{result.stderr}")
    return problems


def env_values(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip()
    return values


SECRET_NAMES = ("SECRET_KEY", "JWT_SECRET_KEY")


def check_env(root: Path, use_auth: bool) -> list[str]:
    """`.env` exists with strong secrets, git ignores it, and no file git would track holds them."""
    env = root / ".env"
    if not env.is_file():
        return [".env was not written"]
    problems = []
    values = env_values(env)
    secrets = {}
    for name in SECRET_NAMES:
        if name == "JWT_SECRET_KEY" and not use_auth:
            continue
        value = values.get(name, "")
        if len(value) < 32:
            problems.append(f".env: {name} is missing or shorter than 32 characters")
        else:
            secrets[name] = value
    git = ["git", "-c", "init.defaultBranch=main"]
    init = run([*git, "init", "-q"], root)
    if init.returncode != 0:
        return [*problems, f"git init failed: {init.stderr.strip()}"]
    if run(["git", "check-ignore", "-q", ".env"], root).returncode != 0:
        problems.append(".env is not ignored by .gitignore")
    tracked = run(["git", "ls-files", "--others", "--exclude-standard", "-z"], root).stdout
    for rel in filter(None, tracked.split("\0")):
        text = read_text(root / rel) or ""
        problems.extend(
            f"{rel} (tracked) contains the value of {name}"
            for name, value in secrets.items()
            if value in text
        )
    return problems
