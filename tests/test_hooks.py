"""The hooks: validation of answers, hostile values, the manifest, `.env`, and re-running."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from checks import check_data_files, check_leftovers, check_ruff, env_values, text_files
from helpers import HOOKS_DIR, TEMPLATE_DIR, choices, full_context, iter_files, load_hook

# ---------------------------------------------------------------------------- hooks as modules


@pytest.mark.parametrize("name", ["pre_gen_project", "post_gen_project"])
def test_hooks_are_stdlib_only_python(name: str) -> None:
    """The hooks parse as Python before rendering and import nothing outside the stdlib."""
    tree = ast.parse((HOOKS_DIR / f"{name}.py").read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert imported - {"__future__"} <= set(sys.stdlib_module_names)


def test_default_answers_are_valid(default_context: dict[str, Any]) -> None:
    load_hook("pre_gen_project", default_context).validate(default_context)


INVALID_ANSWERS = [
    ("project_slug", "LLM-Service"),
    ("project_slug", "1service"),
    ("project_slug", "my--service"),
    ("project_slug", "service-"),
    ("project_slug", "my service"),
    ("project_slug", "my_service"),
    ("project_slug", "../escape"),
    ("package_name", "class"),
    ("package_name", "match"),
    ("package_name", "json"),
    ("package_name", "logging"),
    ("package_name", "flask"),
    ("package_name", "pydantic"),
    ("package_name", "test"),
    ("package_name", "click"),
    ("package_name", "jsonschema"),
    ("package_name", "limits"),
    ("package_name", "jwt"),
    ("package_name", "dotenv"),
    ("package_name", "pydantic_core"),
    ("package_name", "werkzeug"),
    ("package_name", "kombu"),
    ("package_name", "tests"),
    ("package_name", "my-service"),
    ("package_name", "1service"),
    ("package_name", "MyService"),
    ("package_name", "my service"),
    ("author_email", "jane"),
    ("author_email", "jane@"),
    ("author_email", "jane@example"),
    ("author_email", "jane doe@example.com"),
    ("version", "one"),
    ("project_name", "Line one\nLine two"),
    ("description", "Line one\nLine two"),
    ("project_name", "   "),
    ("project_name", 'The "Best" API'),
    ("project_name", "Back\\slash"),
    ("project_name", "x" * 41),
]


def invalid_id(case: tuple[str, str]) -> str:
    return f"{case[0]}:{case[1]!r}"


@pytest.mark.parametrize("case", INVALID_ANSWERS, ids=invalid_id)
def test_pre_gen_rejects_with_one_line_naming_the_variable(
    case: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    variable, value = case
    context = full_context(**{variable: value})
    hook = load_hook("pre_gen_project", context)
    assert hook.main() == 1
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"ERROR: {variable} "), err


@pytest.mark.parametrize("name", ["llm_service", "my_api", "recipes2", "service_v2"])
def test_plain_package_names_are_accepted(name: str) -> None:
    context = full_context(package_name=name)
    load_hook("pre_gen_project", context).check_package_name(name)


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("json", "standard library"),
        ("click", "dependency"),
        ("pydantic_core", "dependency"),
        ("migrations", "layout"),
    ],
)
def test_shadowing_names_say_what_they_shadow(name: str, rule: str) -> None:
    hook = load_hook("pre_gen_project", full_context())
    with pytest.raises(hook.InvalidAnswerError, match=rule) as error:
        hook.check_package_name(name)
    assert str(error.value).startswith(f"package_name {name!r} is invalid: ")
    assert "\n" not in str(error.value)


def test_pre_gen_refuses_kubernetes_without_docker(capsys: pytest.CaptureFixture[str]) -> None:
    context = full_context(use_kubernetes=True, use_docker=False)
    assert load_hook("pre_gen_project", context).main() == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("ERROR: use_kubernetes "), lines
    assert "use_docker" in lines[0], lines
    for docker in (True, False):
        context = full_context(use_kubernetes=False, use_docker=docker)
        assert load_hook("pre_gen_project", context).main() == 0
    assert load_hook("pre_gen_project", full_context(use_kubernetes=True)).main() == 0


def test_pre_gen_refuses_rag_without_ai_provider(capsys: pytest.CaptureFixture[str]) -> None:
    context = full_context(use_rag=True, ai_provider="none")
    assert load_hook("pre_gen_project", context).main() == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("ERROR: use_rag "), lines
    assert "ai_provider" in lines[0], lines
    assert load_hook("pre_gen_project", full_context(use_rag=False, ai_provider="none")).main() == 0
    assert load_hook("pre_gen_project", full_context(use_rag=True)).main() == 0


def test_kubernetes_without_docker_leaves_no_directory(cookies: Any, tmp_path: Path) -> None:
    result = cookies.bake(extra_context={"use_kubernetes": True, "use_docker": False})
    assert result.exit_code != 0
    assert type(result.exception).__name__ == "FailedHookException"
    assert written(tmp_path) == []


@pytest.mark.parametrize(
    "case",
    [("project_slug", "My Service"), ("package_name", "json"), ("author_email", "nobody")],
    ids=invalid_id,
)
def test_invalid_answer_leaves_no_directory(
    cookies: Any, tmp_path: Path, case: tuple[str, str]
) -> None:
    variable, value = case
    result = cookies.bake(extra_context={variable: value})
    assert result.exit_code != 0
    assert type(result.exception).__name__ == "FailedHookException"
    assert written(tmp_path) == []


def written(tmp_path: Path) -> list[Path]:
    """What the `cookies` fixture's bakes left in their output directories."""
    return [path for bake_dir in (tmp_path / "cookies").iterdir() for path in bake_dir.iterdir()]


def test_cli_reports_the_rule_on_stderr(tmp_path: Path) -> None:
    """Through the command line: exit 1, the hook's line names the variable, nothing written."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cookiecutter",
            "--no-input",
            "-o",
            str(tmp_path),
            str(TEMPLATE_DIR),
            "package_name=json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    hook_lines = [line for line in result.stderr.splitlines() if line.startswith("ERROR:")]
    assert len(hook_lines) == 1, result.stderr
    assert "package_name 'json'" in hook_lines[0]
    assert "standard library" in hook_lines[0]
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------ names the dependencies import

# Prints {import name: [distributions]} for the environment of the python that runs it.
IMPORT_NAMES_SCRIPT = (
    "import importlib.metadata as m, json; print(json.dumps(m.packages_distributions()))"
)
AI_PROVIDERS = [provider for provider in choices("ai_provider") if provider != "none"]


def uv_binary() -> str:
    uv = shutil.which("uv")
    if uv is None:
        if os.environ.get("CI") == "true":
            pytest.fail("uv is not on PATH", pytrace=False)
        pytest.skip("uv is not on PATH: cannot resolve the project's dependencies")
    return uv


def run_uv(args: list[str], cwd: Path) -> str:
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    env.pop("VIRTUAL_ENV", None)
    result = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=600
    )
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stderr[-3000:]}"
    return result.stdout


def installed_import_names(root: Path, workdir: Path) -> dict[str, list[str]]:
    """Resolve every dependency the project declares (all groups and extras), install the pinned
    set without the project into a throwaway venv, and read the import names it provides."""
    uv = uv_binary()
    pyproject = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    groups = [arg for group in pyproject.get("dependency-groups", {}) for arg in ("--group", group)]
    pinned = workdir / "requirements.txt"
    run_uv(
        [uv, "pip", "compile", "-q", "--python", sys.executable, "pyproject.toml",
         "--all-extras", *groups, "-o", str(pinned)],
        cwd=root,
    )  # fmt: skip
    venv = workdir / "venv"
    run_uv([uv, "venv", "-q", "--python", sys.executable, str(venv)], cwd=workdir)
    python = venv / "bin" / "python"
    run_uv(
        [uv, "pip", "install", "-q", "--python", str(python), "--no-deps", "-r", str(pinned)],
        cwd=workdir,
    )
    result = subprocess.run(
        [str(python), "-c", IMPORT_NAMES_SCRIPT], capture_output=True, text=True, check=True
    )
    names: dict[str, list[str]] = json.loads(result.stdout)
    return names


@pytest.mark.parametrize("ai_provider", AI_PROVIDERS)
def test_every_import_name_of_the_dependencies_is_refused(
    cookies: Any, tmp_path: Path, ai_provider: str
) -> None:
    """A dependency added to the template without its import names in the hook fails here."""
    result = cookies.bake(
        extra_context={
            "ai_provider": ai_provider,
            "use_auth": True,
            "use_celery": True,
            "use_nginx": True,
            "use_docker": True,
            "use_rag": True,
            "project_slug": f"deps-{ai_provider.replace('_', '-')}",
        }
    )
    assert result.exit_code == 0, result.exception
    root = Path(result.project_path)
    names = installed_import_names(root, tmp_path)
    assert {"flask", "pydantic", "pytest"} <= set(names), sorted(names)
    hook = load_hook("pre_gen_project", result.context)
    own = result.context["package_name"]
    missing = sorted(
        f"{name} (from {', '.join(sorted(set(dists)))})"
        for name, dists in names.items()
        if name.isidentifier()
        and name == name.lower()
        and not name.startswith("_")
        and name != own
        and name not in sys.stdlib_module_names
        and name not in hook.DEPENDENCY_MODULES
    )
    assert not missing, (
        "import names missing from DEPENDENCY_MODULES in hooks/pre_gen_project.py: "
        + ", ".join(missing)
    )


# ------------------------------------------------------------------------------ hostile values

HOSTILE = [
    'Bob\'s "Great" API',
    'Ends with a quote"',
    "\"\"\"Triple quotes\"\"\" and '''more'''",
    "Back\\slash and \\n and \\",
    "Unicode: café ☕ 日本語",
    "<script>alert(1)</script> & friends",
    "{{ 7 * 7 }} items",
    "Bob's API & Co. (beta)",
    '"); import os; os.system("false"); ("',
    "Semicolons; and # hashes",
]


def static_problems(root: Path) -> list[str]:
    files = text_files(root)
    problems = [*check_leftovers(root, files), *check_data_files(files), *check_ruff(root)]
    for rel, text in files.items():
        if rel.endswith(".py"):
            try:
                compile(text, rel, "exec")
            except SyntaxError as exc:
                problems.append(f"{rel} does not compile: {exc}")
    return problems


@pytest.fixture(scope="session")
def plain_problems(cookies_session: Any) -> set[str]:
    """The static problems of the project that the hostile tests bake, with plain values."""
    result = cookies_session.bake(
        extra_context={"project_slug": "hostile-app", "package_name": "hostile_app"}
    )
    assert result.exit_code == 0, result.exception
    return set(static_problems(Path(result.project_path)))


@pytest.mark.parametrize("field", ["project_name", "description"])
@pytest.mark.parametrize("value", HOSTILE, ids=repr)
def test_hostile_text_bakes_safely(
    cookies: Any, tmp_path: Path, plain_problems: set[str], field: str, value: str
) -> None:
    """Quotes, backslashes and markup in free text reach the project as data, or are refused."""
    result = cookies.bake(
        extra_context={field: value, "project_slug": "hostile-app", "package_name": "hostile_app"}
    )
    if result.exit_code != 0:
        # Refusing is fine, as long as it is clean: the hook said why and nothing was written.
        assert type(result.exception).__name__ == "FailedHookException"
        assert written(tmp_path) == []
        return
    # Only problems that the plain project does not have count (other tests judge those).
    new = sorted(set(static_problems(Path(result.project_path))) - plain_problems)
    assert not new, "\n".join(new)
    root = Path(result.project_path)
    files = text_files(root)
    if field == "description" and "{{" not in value:
        pyproject = tomllib.loads(files["pyproject.toml"])
        assert pyproject["project"]["description"] == value
    assert (root / ".env").is_file(), "the post-gen hook did not run to the end"


@pytest.mark.parametrize("value", ["{{ }}", "{% if %}", "{{ cookiecutter.nope.deeper }}"])
def test_broken_jinja_is_rejected_cleanly(cookies: Any, tmp_path: Path, value: str) -> None:
    result = cookies.bake(extra_context={"project_name": value, "project_slug": "jinja-app"})
    assert result.exit_code != 0
    assert written(tmp_path) == []


@pytest.mark.parametrize("value", ['Back\\slash "quoted"\nnewline', '{{ \'}}\' }}"""'])
def test_context_reaches_hooks_as_data(value: str) -> None:
    """The rendered hooks hold the answers as one JSON string literal, whatever they contain."""
    context = full_context(description="x")
    context["description"] = value
    for name in ("pre_gen_project", "post_gen_project"):
        module = load_hook(name, context)
        assert json.loads(module.CONTEXT_JSON)["description"] == value


# -------------------------------------------------------------------------------- the manifest


def test_manifest_shape() -> None:
    hook = load_hook("post_gen_project", full_context())
    assert isinstance(hook.MANIFEST, dict)
    for feature, paths in hook.MANIFEST.items():
        assert isinstance(feature, str)
        assert isinstance(paths, list)
        assert paths, f"{feature} lists no paths"
        for path in paths:
            assert not path.startswith("/"), path
            assert ".." not in Path(path).parts, path
            assert path.replace("{package}", "").count("{") == 0, path


def test_manifest_paths_exist_in_the_template() -> None:
    """A MANIFEST entry that names no template file is stale (a rename the manifest missed)."""
    hook = load_hook("post_gen_project", full_context())
    project = TEMPLATE_DIR / "{{cookiecutter.project_slug}}"
    missing = [
        f"{feature}: {path}"
        for feature, paths in hook.MANIFEST.items()
        for path in paths
        if not (project / path.format(package="{{cookiecutter.package_name}}")).exists()
    ]
    assert not missing, "MANIFEST paths with no file in the template:\n" + "\n".join(missing)


@pytest.mark.parametrize(
    ("answers", "on", "off"),
    [
        (
            {},
            {
                "auth",
                "ai",
                "playground",
                "openai_sdk",
                "celery",
                "nginx",
                "docker",
                "github",
                "license",
            },
            {"anthropic", "azure_openai", "gitlab"},
        ),
        (
            {
                "ai_provider": "none",
                "use_auth": False,
                "use_celery": False,
                "license": "Proprietary",
            },
            {"nginx", "docker", "github"},
            {"ai", "playground", "openai_sdk", "anthropic", "auth", "celery", "license"},
        ),
        ({"ai_provider": "anthropic"}, {"ai", "anthropic"}, {"openai_sdk", "azure_openai"}),
        (
            {"ai_provider": "azure_openai"},
            {"ai", "azure_openai", "openai_sdk"},
            {"anthropic"},
        ),
        ({"ai_provider": "ollama"}, {"ai", "openai_sdk"}, {"anthropic", "azure_openai"}),
        (
            {"use_nginx": False, "use_docker": False, "ci_provider": "gitlab"},
            {"gitlab"},
            {"nginx", "docker", "github", "kubernetes"},
        ),
        ({"use_kubernetes": True}, {"docker", "kubernetes"}, set()),
        ({}, set(), {"rag", "rag_auth", "rag_celery"}),
        (
            {"use_rag": True, "use_auth": False, "use_celery": False},
            {"rag"},
            {"rag_auth", "rag_celery"},
        ),
        ({"use_rag": True}, {"rag", "rag_auth", "rag_celery"}, set()),
    ],
)
def test_enabled_features(answers: dict[str, Any], on: set[str], off: set[str]) -> None:
    context = full_context(**answers)
    enabled = load_hook("post_gen_project", context).enabled_features(context)
    assert on <= enabled
    assert not off & enabled


def test_booleans_are_compared_as_booleans() -> None:
    """A string "False" is not a disabled feature: the hook reads JSON booleans only."""
    context = full_context()
    context["use_celery"] = "False"
    hook = load_hook("post_gen_project", context)
    assert "celery" not in hook.enabled_features(context)
    assert load_hook("pre_gen_project", context).main() == 1


def test_disabled_paths_fill_in_the_package() -> None:
    context = full_context(use_celery=False, package_name="my_pkg", project_slug="my-pkg")
    paths = load_hook("post_gen_project", context).disabled_paths(context)
    assert "src/my_pkg/tasks.py" in paths
    assert not any("{package}" in path for path in paths)


def test_remove_disabled_removes_files_and_directories(tmp_path: Path) -> None:
    context = full_context(
        ai_provider="none", use_nginx=False, package_name="pkg", project_slug="pkg"
    )
    hook = load_hook("post_gen_project", context)
    keep = tmp_path / "src/pkg/items/api.py"
    gone = [tmp_path / "src/pkg/ai/providers/fake.py", tmp_path / "nginx/nginx.conf"]
    for path in [keep, *gone]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x\n", encoding="utf-8")
    hook.remove_disabled(tmp_path, context)
    assert keep.exists()
    assert not (tmp_path / "src/pkg/ai").exists()
    assert not (tmp_path / "nginx").exists()
    hook.remove_disabled(tmp_path, context)  # a second run finds nothing to do


# ----------------------------------------------------------------------------- .env and re-runs


def test_write_env_fills_secrets_and_keeps_an_existing_file(tmp_path: Path) -> None:
    hook = load_hook("post_gen_project", full_context())
    (tmp_path / ".env.example").write_text(
        "APP_ENV=development\nSECRET_KEY=change-me\nJWT_SECRET_KEY=change-me\n", encoding="utf-8"
    )
    assert hook.write_env(tmp_path) is True
    first = env_values(tmp_path / ".env")
    assert first["APP_ENV"] == "development"
    assert len(first["SECRET_KEY"]) >= 32
    assert first["SECRET_KEY"] != first["JWT_SECRET_KEY"]
    assert (tmp_path / ".env").stat().st_mode & 0o077 == 0
    assert "change-me" in (tmp_path / ".env.example").read_text(encoding="utf-8")
    assert hook.write_env(tmp_path) is False
    assert env_values(tmp_path / ".env") == first


def snapshot(root: Path) -> dict[str, bytes]:
    return {path.relative_to(root).as_posix(): path.read_bytes() for path in iter_files(root)}


def test_post_gen_twice_changes_nothing(
    cookies: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    result = cookies.bake()
    assert result.exit_code == 0, result.exception
    root = Path(result.project_path)
    before = snapshot(root)
    monkeypatch.chdir(root)
    hook = load_hook("post_gen_project", result.context)
    assert hook.main() == 0
    assert snapshot(root) == before
    assert "Next steps" in capsys.readouterr().out

    # Without .env, a re-run writes a new one with new secrets and touches nothing else.
    old_env = env_values(root / ".env")
    (root / ".env").unlink()
    assert hook.main() == 0
    after = snapshot(root)
    assert {k: v for k, v in after.items() if k != ".env"} == {
        k: v for k, v in before.items() if k != ".env"
    }
    assert env_values(root / ".env")["SECRET_KEY"] != old_env["SECRET_KEY"]
