"""Finish a freshly generated project.

1. Remove the files of every disabled feature, as listed in MANIFEST (the one place that says
   which files belong to which feature; the template's tests read it too).
2. Write `.env` from `.env.example` with fresh random secrets (never into a tracked file).
3. Print the next steps.

Standard library only, no network, and safe to run again on an existing project.
"""

from __future__ import annotations

import json
import secrets
import shutil
import sys
from pathlib import Path

CONTEXT_JSON = r"""{{ cookiecutter | tojson }}"""

# feature -> paths (relative to the project root) that exist only when the feature is on.
# "{package}" stands for the package directory name.
MANIFEST: dict[str, list[str]] = {
    "auth": [
        "src/{package}/auth",
        "tests/auth_fixtures.py",
        "tests/test_auth.py",
        "tests/test_auth_faults.py",
        "tests/test_items_auth.py",
        "tests/test_auth_state.py",
        "tests/test_users.py",
        "tests/test_account.py",
        "tests/test_auth_rate_limits.py",
    ],
    "ai": [
        "src/{package}/ai",
        "migrations/versions/0002_ai_tool_calls.py",
        "migrations/versions/0003_ai_reservation_lease.py",
        "tests/upstream.py",
        "tests/test_ai.py",
        "tests/test_ai_warm_up.py",
        "tests/test_ai_errors.py",
        "tests/test_ai_faults.py",
        "tests/test_recipes.py",
        "tests/test_conversations.py",
        "tests/test_ai_operations.py",
        "tests/test_tools.py",
        "tests/test_ai_budget.py",
    ],
    "ai_auth": [
        "tests/test_ai_auth.py",
        "tests/test_tools_auth.py",
    ],
    "playground": [
        "src/{package}/playground",
        "tests/playground_browser.py",
        "tests/test_playground.py",
        "tests/test_playground_browser.py",
    ],
    "playground_auth": [
        "src/{package}/playground/static/signin.js",
        "src/{package}/playground/static/signin.css",
        "tests/test_playground_auth.py",
    ],
    "openai_sdk": [
        "src/{package}/ai/providers/openai.py",
    ],
    "azure_openai": [
        "src/{package}/ai/providers/azure_openai.py",
    ],
    "anthropic": [
        "src/{package}/ai/providers/anthropic.py",
    ],
    "celery": [
        "src/{package}/jobs",
        "src/{package}/tasks.py",
        "tests/celery_worker.py",
        "tests/test_tasks.py",
        "tests/test_worker.py",
        "tests/worker_hooks.py",
    ],
    "celery_auth": [
        "tests/test_tasks_auth.py",
    ],
    "ai_jobs": [
        "src/{package}/ai/jobs.py",
        "tests/test_ai_jobs.py",
        "tests/test_ai_worker.py",
        "tests/test_ai_job_budget.py",
    ],
    "nginx": [
        "nginx",
        "tests/nginx_proxy.py",
        "tests/test_nginx.py",
    ],
    "nginx_ai": [
        "tests/test_nginx_ai.py",
    ],
    "docker": [
        "Dockerfile",
        "docker-compose.yml",
        ".dockerignore",
    ],
    "kubernetes": [
        "deploy",
    ],
    "kubernetes_worker": [
        "deploy/kubernetes/worker-deployment.yaml",
    ],
    "github": [
        ".github",
    ],
    "gitlab": [
        ".gitlab-ci.yml",
    ],
    "license": [
        "LICENSE",
    ],
    "rag": [
        "src/{package}/rag",
        "src/{package}/ai/prompts/ask.txt",
        "src/{package}/ai/providers/fake_grounded.py",
        "migrations/versions/0004_rag_documents.py",
        "migrations/versions/0005_rag_chunk_bits.py",
        "tests/rag_fixtures.py",
        "tests/rag_stub.py",
        "tests/test_rag_documents.py",
        "tests/test_rag_search.py",
        "tests/test_rag_ask.py",
        "tests/test_rag_errors.py",
        "tests/test_rag_stores.py",
        "tests/test_rag_operations.py",
    ],
    "rag_auth": [
        "tests/test_rag_auth.py",
    ],
    "rag_celery": [
        "src/{package}/rag/tasks.py",
        "tests/test_rag_worker.py",
    ],
    "rag_inline": [
        "src/{package}/rag/inline.py",
        "tests/test_rag_inline.py",
    ],
}


def enabled_features(context: dict[str, object]) -> set[str]:
    """The MANIFEST features that the answers switch on (booleans compared as booleans)."""
    provider = context["ai_provider"]
    flags = {
        "auth": context["use_auth"] is True,
        "ai": provider != "none",
        "ai_auth": provider != "none" and context["use_auth"] is True,
        "playground": provider != "none",
        "playground_auth": provider != "none" and context["use_auth"] is True,
        "openai_sdk": provider in ("openai", "azure_openai", "ollama"),
        "azure_openai": provider == "azure_openai",
        "anthropic": provider == "anthropic",
        "celery": context["use_celery"] is True,
        "celery_auth": context["use_celery"] is True and context["use_auth"] is True,
        "ai_jobs": provider != "none" and context["use_celery"] is True,
        "nginx": context["use_nginx"] is True,
        "nginx_ai": context["use_nginx"] is True and provider != "none",
        "docker": context["use_docker"] is True,
        "kubernetes": context.get("use_kubernetes") is True,
        "kubernetes_worker": context.get("use_kubernetes") is True
        and context["use_celery"] is True,
        "github": context["ci_provider"] == "github",
        "gitlab": context["ci_provider"] == "gitlab",
        "license": context["license"] != "Proprietary",
        "rag": context.get("use_rag") is True,
        "rag_auth": context.get("use_rag") is True and context["use_auth"] is True,
        "rag_celery": context.get("use_rag") is True and context["use_celery"] is True,
        "rag_inline": context.get("use_rag") is True and context["use_celery"] is not True,
    }
    return {feature for feature, on in flags.items() if on}


def disabled_paths(context: dict[str, object]) -> list[str]:
    """Paths of every disabled feature, with the package name filled in."""
    enabled = enabled_features(context)
    package = str(context["package_name"])
    return sorted(
        path.format(package=package)
        for feature, paths in MANIFEST.items()
        if feature not in enabled
        for path in paths
    )


def remove_disabled(root: Path, context: dict[str, object]) -> None:
    for relative in disabled_paths(context):
        target = root / relative
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()


def write_env(root: Path) -> bool:
    """Create `.env` from `.env.example` with fresh secrets; keep an existing `.env` as it is."""
    env = root / ".env"
    example = root / ".env.example"
    if env.exists() or not example.exists():
        return False
    lines = []
    for line in example.read_text(encoding="utf-8").splitlines():
        key = line.split("=", 1)[0]
        if key in ("SECRET_KEY", "JWT_SECRET_KEY"):
            line = f"{key}={secrets.token_urlsafe(48)}"
        lines.append(line)
    env.write_text("\n".join(lines) + "\n", encoding="utf-8")
    env.chmod(0o600)
    return True


def next_steps(context: dict[str, object]) -> str:
    slug = context["project_slug"]
    package = context["package_name"]
    return "\n".join(
        [
            "",
            f"Created {slug}. Next steps:",
            f"  cd {slug}",
            f"  uv run flask --app {package} run     # http://127.0.0.1:5000/docs",
            "  uv run pytest",
            "Settings live in .env (fresh secrets were generated; it is git-ignored).",
            "",
        ]
    )


def main() -> int:
    context = json.loads(CONTEXT_JSON)
    root = Path.cwd()
    remove_disabled(root, context)
    write_env(root)
    print(next_steps(context))
    return 0


if __name__ == "__main__":
    sys.exit(main())
