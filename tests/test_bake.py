"""Every feature combination bakes into a clean, consistent project (static checks only)."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from checks import (
    FEATURE_WORDS,
    check_data_files,
    check_env,
    check_feature_config,
    check_feature_words,
    check_leftovers,
    check_manifest,
    check_ruff,
    check_whitespace,
    env_values,
    keeps_jinja,
    text_files,
)
from helpers import (
    COOKIECUTTER_JSON,
    RUNTIME_OPTIONS,
    TEMPLATE_DIR,
    choices,
    combinations,
    feature_matrix,
    load_hook,
    option_id,
)

MATRIX = feature_matrix()
PROJECT_TEMPLATE = TEMPLATE_DIR / "{{cookiecutter.project_slug}}"
JINJA_SYNTAX = re.compile(rb"\{\{|\{%|\{#")


def features(context: dict[str, Any]) -> tuple[set[str], set[str]]:
    """(enabled, all) features of a context: the MANIFEST's plus the provider name itself."""
    hook = load_hook("post_gen_project", context)
    enabled = set(hook.enabled_features(context))
    every = set(hook.MANIFEST) | set(FEATURE_WORDS)
    if context["ai_provider"] == "ollama":
        enabled.add("ollama")
    return enabled, every


def bake(cookies: Any, **extra: Any) -> tuple[Path, dict[str, Any]]:
    result = cookies.bake(extra_context=extra)
    assert result.exception is None, f"bake failed: {result.exception!r}"
    assert result.exit_code == 0
    return Path(result.project_path), result.context


def test_matrix_covers_every_value() -> None:
    assert len(MATRIX) == 432
    for option in ("python_version", "license", "use_kubernetes"):
        assert {combo[option] for combo in MATRIX} == set(choices(option))
    # Kubernetes manifests only with Docker, and for every runtime combination both ways.
    assert not any(combo["use_kubernetes"] and not combo["use_docker"] for combo in MATRIX)
    for runtime in combinations(RUNTIME_OPTIONS):
        baked = {
            combo["use_kubernetes"]
            for combo in MATRIX
            if combo["use_docker"] and all(combo[key] == runtime[key] for key in runtime)
        }
        assert baked == {True, False}, runtime


def test_copy_without_render_lists_exactly_the_files_without_jinja() -> None:
    """cookiecutter renders every file it is not told to copy: a Jinja compile per file and bake,
    two fifths of a bake's time for the files that hold no Jinja. `_copy_without_render` lists
    those, and the prompt templates, which stay Jinja; nothing else."""
    patterns = COOKIECUTTER_JSON["_copy_without_render"]
    problems, matched = [], set()
    for path in sorted(PROJECT_TEMPLATE.rglob("*")):
        if not path.is_file() or "__pycache__" in path.parts:
            continue
        rel = path.relative_to(PROJECT_TEMPLATE).as_posix()
        copied = {pattern for pattern in patterns if fnmatch.fnmatch(rel, pattern)}
        matched |= copied
        has_jinja = JINJA_SYNTAX.search(path.read_bytes()) is not None
        if has_jinja and copied and not keeps_jinja(rel):
            problems.append(f"{rel} holds Jinja but {sorted(copied)} copies it unrendered")
        elif not has_jinja and not copied:
            problems.append(f"{rel} holds no Jinja: add it to _copy_without_render")
    problems += [f"{pattern} matches no file" for pattern in patterns if pattern not in matched]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("combo", MATRIX, ids=option_id)
def test_bake(cookies: Any, combo: dict[str, Any]) -> None:
    root, context = bake(cookies, **combo)
    enabled, every = features(context)
    files = text_files(root)
    problems = [
        *check_leftovers(root, files),
        *check_whitespace(files),
        *check_manifest(root, context),
        *check_feature_config(root, files, enabled, every),
        *check_feature_words(files, enabled, every),
        *check_data_files(files),
        *check_env(root, use_auth=context["use_auth"]),
        *check_ruff(root),
    ]
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def test_default_bake(cookies: Any) -> None:
    """`cookiecutter --no-input .` writes the default project with every default option."""
    root, context = bake(cookies)
    assert root.name == "llm-service"
    assert (root / "src" / "llm_service" / "__init__.py").is_file()
    assert context["ai_provider"] == "openai"
    assert context["use_auth"] is True


def test_python_version_reaches_tooling(cookies: Any) -> None:
    for version in choices("python_version"):
        root, _ = bake(
            cookies, python_version=version, project_slug=f"py{version.replace('.', '')}"
        )
        pyproject = (root / "pyproject.toml").read_text(encoding="utf-8")
        assert f'target-version = "py{version.replace(".", "")}"' in pyproject
        assert 'requires-python = ">=3.11"' in pyproject


def test_secrets_differ_between_bakes(cookies: Any) -> None:
    first, _ = bake(cookies, project_slug="first-app")
    second, _ = bake(cookies, project_slug="second-app")
    one, two = env_values(first / ".env"), env_values(second / ".env")
    for name in ("SECRET_KEY", "JWT_SECRET_KEY"):
        assert one[name] != two[name], f"{name} is the same in two bakes"
        assert one[name] not in (first / ".env.example").read_text(encoding="utf-8")


LICENSE_MARKERS = {
    "MIT": "Permission is hereby granted, free of charge",
    "Apache-2.0": "Apache License",
    "BSD-3-Clause": "Redistribution and use in source and binary forms",
}


@pytest.mark.parametrize("license_name", choices("license"))
def test_license(cookies: Any, license_name: str) -> None:
    root, context = bake(cookies, license=license_name)
    pyproject = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    if license_name == "Proprietary":
        assert not (root / "LICENSE").exists()
        assert "license" not in pyproject["project"]
        return
    text = (root / "LICENSE").read_text(encoding="utf-8")
    assert LICENSE_MARKERS[license_name] in text
    assert context["author_name"] in text
    assert pyproject["project"]["license"] == license_name
