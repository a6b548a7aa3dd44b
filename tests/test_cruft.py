"""A project made with cruft takes in a later template change, and keeps its `.env`.

The template is copied into a temporary git repository, so the test needs no network: cruft
clones it like any remote template.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import TEMPLATE_DIR

MARKER = "Template change applied by cruft update."
NOT_COPIED = shutil.ignore_patterns(
    ".git", ".nox", ".venv", "__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache"
)
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Template Tests",
    "GIT_AUTHOR_EMAIL": "tests@example.com",
    "GIT_COMMITTER_NAME": "Template Tests",
    "GIT_COMMITTER_EMAIL": "tests@example.com",
}


def run(*args: str, cwd: Path) -> str:
    env = {**os.environ, **GIT_IDENTITY}
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout}{result.stderr}"
    return result.stdout


def cruft(*args: str, cwd: Path) -> str:
    return run(sys.executable, "-m", "cruft", *args, cwd=cwd)


def commit_all(repo: Path, message: str) -> str:
    run("git", "add", "-A", cwd=repo)
    run("git", "commit", "-q", "-m", message, cwd=repo)
    return run("git", "rev-parse", "HEAD", cwd=repo).strip()


@pytest.fixture
def template_repo(tmp_path: Path) -> Path:
    if shutil.which("git") is None:
        pytest.skip("git is not on PATH")
    pytest.importorskip("cruft", reason="cruft is not installed (pip install cruft)")
    repo = tmp_path / "template"
    shutil.copytree(TEMPLATE_DIR, repo, ignore=NOT_COPIED)
    run("git", "-c", "init.defaultBranch=main", "init", "-q", cwd=repo)
    commit_all(repo, "template v1")
    return repo


def test_cruft_update_applies_a_template_change_and_keeps_env(
    template_repo: Path, tmp_path: Path
) -> None:
    out = tmp_path / "projects"
    out.mkdir()
    cruft("create", str(template_repo), "--no-input", "--output-dir", str(out), cwd=tmp_path)
    project = out / "llm-service"
    env_before = (project / ".env").read_bytes()
    assert b"SECRET_KEY=" in env_before
    run("git", "-c", "init.defaultBranch=main", "init", "-q", cwd=project)
    commit_all(project, "generated")

    # A new template release: a changed file, a new file, and a new setting in .env.example.
    template_project = template_repo / "{{cookiecutter.project_slug}}"
    readme = template_project / "README.md"
    readme.write_text(readme.read_text(encoding="utf-8") + f"\n{MARKER}\n", encoding="utf-8")
    (template_project / "CHANGES.md").write_text("# Changes\n\n- v2\n", encoding="utf-8")
    example = template_project / ".env.example"
    if example.exists():
        example.write_text(
            example.read_text(encoding="utf-8") + "NEW_SETTING=1\n", encoding="utf-8"
        )
    new_commit = commit_all(template_repo, "template v2")

    cruft("update", "-y", cwd=project)

    assert MARKER in (project / "README.md").read_text(encoding="utf-8")
    assert (project / "CHANGES.md").read_text(encoding="utf-8") == "# Changes\n\n- v2\n"
    if example.exists():
        assert "NEW_SETTING=1" in (project / ".env.example").read_text(encoding="utf-8")
    # .env is the project's own: same bytes, same secrets, no new setting written into it.
    assert (project / ".env").read_bytes() == env_before
    assert not list(project.rglob("*.rej"))
    state = json.loads((project / ".cruft.json").read_text(encoding="utf-8"))
    assert state["commit"] == new_commit
    cruft("check", cwd=project)
