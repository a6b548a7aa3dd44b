"""Reject answers that would produce a broken project, before anything is written.

Cookiecutter renders this file with Jinja; the answers arrive once, as JSON inside a raw
string, so quotes, backslashes or newlines in a value cannot change the code.
"""

from __future__ import annotations

import json
import keyword
import re
import sys

CONTEXT_JSON = r"""{{ cookiecutter | tojson }}"""

SLUG_RE = re.compile(r"^[a-z][a-z0-9-]*[a-z0-9]$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
VERSION_RE = re.compile(r"^\d+(\.\d+)*([abc]|rc|\.dev|\.post)?\d*$")

# Top-level import names of every distribution the project can install: each option on, every
# provider's SDK, the dev tools, and all their runtime dependencies (flask brings werkzeug, jinja2,
# click, ...; flask-jwt-extended brings jwt; pydantic-settings brings dotenv). A package with one
# of these names would shadow the real module. tests/test_hooks.py resolves the dependencies of
# the all-options projects and fails when an import name is missing here: add it then.
DEPENDENCY_MODULES = frozenset(
    {
        "alembic",
        "amqp",
        "annotated_types",
        "anthropic",
        "anyio",
        "argon2",
        "argon2_cffi_bindings",
        "ast_serialize",
        "async_timeout",
        "attr",
        "attrs",
        "backports",
        "billiard",
        "blinker",
        "celery",
        "certifi",
        "cffi",
        "charset_normalizer",
        "click",
        "click_didyoumean",
        "click_plugins",
        "click_repl",
        "colorama",
        "cryptography",
        "dateutil",
        "deprecated",
        "distro",
        "docstring_parser",
        "dotenv",
        "exceptiongroup",
        "flask",
        "flask_cors",
        "flask_jwt_extended",
        "flask_limiter",
        "flask_openapi3",
        "flask_openapi3_swagger",
        "google",
        "greenlet",
        "gunicorn",
        "h11",
        "hatchling",
        "httpcore",
        "httpcore2",
        "httpx",
        "httpx2",
        "idna",
        "importlib_metadata",
        "iniconfig",
        "itsdangerous",
        "jinja2",
        "jiter",
        "jsonschema",
        "jsonschema_specifications",
        "jwt",
        "kombu",
        "librt",
        "limits",
        "mako",
        "markdown_it",
        "markupsafe",
        "mdurl",
        "mypy",
        "mypy_extensions",
        "mypyc",
        "openai",
        "opentelemetry",
        "ordered_set",
        "outcome",
        "packaging",
        "pathspec",
        "pluggy",
        "prometheus_client",
        "prompt_toolkit",
        "psycopg",
        "psycopg_binary",
        "py",
        "pycparser",
        "pydantic",
        "pydantic_core",
        "pydantic_settings",
        "pygments",
        "pypdf",
        "pytest",
        "redis",
        "referencing",
        "requests",
        "rich",
        "rpds",
        "ruff",
        "selenium",
        "six",
        "sniffio",
        "socks",
        "sockshandler",
        "sortedcontainers",
        "sqlite_vec",
        "sqlalchemy",
        "sqlmodel",
        "tomli",
        "tqdm",
        "trio",
        "trio_websocket",
        "truststore",
        "typing_extensions",
        "typing_inspection",
        "tzlocal",
        "urllib3",
        "vine",
        "wcwidth",
        "websocket",
        "werkzeug",
        "wrapt",
        "wsproto",
        "zipp",
    }
)
# Names the project's own layout and tools already use.
PROJECT_MODULES = frozenset({"conftest", "migrations", "src", "test", "tests"})


class InvalidAnswerError(ValueError):
    """An answer that breaks a rule; the message names the variable and the rule."""


def check_slug(slug: str) -> None:
    if not SLUG_RE.match(slug) or "--" in slug:
        raise InvalidAnswerError(
            f"project_slug {slug!r} is invalid: use lowercase letters, digits and single "
            "hyphens, starting with a letter and not ending with a hyphen "
            "(e.g. 'llm-service')."
        )


def check_package_name(name: str) -> None:
    if not name.isidentifier() or not name.isascii():
        raise InvalidAnswerError(
            f"package_name {name!r} is invalid: it must be a Python identifier."
        )
    if name != name.lower():
        raise InvalidAnswerError(f"package_name {name!r} is invalid: use lowercase letters only.")
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        raise InvalidAnswerError(f"package_name {name!r} is invalid: it is a Python keyword.")
    if name in sys.stdlib_module_names:
        raise InvalidAnswerError(
            f"package_name {name!r} is invalid: it would shadow the standard library module "
            "of the same name."
        )
    if name in DEPENDENCY_MODULES:
        raise InvalidAnswerError(
            f"package_name {name!r} is invalid: it would shadow the module of the same name "
            "that a dependency of the project installs."
        )
    if name in PROJECT_MODULES:
        raise InvalidAnswerError(
            f"package_name {name!r} is invalid: the project's own layout or tools already use "
            "that name."
        )


def check_email(email: str) -> None:
    if not EMAIL_RE.match(email):
        raise InvalidAnswerError(
            f"author_email {email!r} is invalid: it must look like name@example.com."
        )


def check_version(version: str) -> None:
    if not VERSION_RE.match(version):
        raise InvalidAnswerError(
            f"version {version!r} is invalid: use a PEP 440 version such as 0.1.0."
        )


# The name lands in docstrings, comments and code (`Info(title=...)`): keep it plain and short.
NAME_FORBIDDEN = frozenset('"\\<>`')
NAME_MAX_LENGTH = 40


def check_project_name(name: str) -> None:
    if len(name) > NAME_MAX_LENGTH or NAME_FORBIDDEN.intersection(name):
        raise InvalidAnswerError(
            f"project_name {name!r} is invalid: use at most {NAME_MAX_LENGTH} characters and no "
            "quotes, backslashes, backticks or angle brackets."
        )


def check_single_line(context: dict[str, object]) -> None:
    for key in ("project_name", "description", "author_name"):
        value = str(context[key])
        if not value.strip() or "\n" in value or "\r" in value:
            raise InvalidAnswerError(f"{key} is invalid: it must be one non-empty line.")


def check_choices(context: dict[str, object]) -> None:
    for key in ("use_auth", "use_celery", "use_nginx", "use_docker", "use_rag", "use_kubernetes"):
        if not isinstance(context[key], bool):
            raise InvalidAnswerError(f"{key} {context[key]!r} is invalid: answer yes or no.")


def check_compatible(context: dict[str, object]) -> None:
    if context["use_rag"] is True and context["ai_provider"] == "none":
        raise InvalidAnswerError(
            "use_rag needs an ai_provider: embeddings and grounded answers go through the AI "
            "provider; pick an ai_provider other than none or answer no to use_rag."
        )
    if context["use_kubernetes"] is True and context["use_docker"] is not True:
        raise InvalidAnswerError(
            "use_kubernetes needs use_docker: the manifests run the image built from the "
            "Dockerfile; answer yes to use_docker or no to use_kubernetes."
        )


def validate(context: dict[str, object]) -> None:
    check_single_line(context)
    check_project_name(str(context["project_name"]))
    check_slug(str(context["project_slug"]))
    check_package_name(str(context["package_name"]))
    check_email(str(context["author_email"]))
    check_version(str(context["version"]))
    check_choices(context)
    check_compatible(context)


def main() -> int:
    context = json.loads(CONTEXT_JSON)
    try:
        validate(context)
    except InvalidAnswerError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
