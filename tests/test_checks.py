"""The bake checks catch what they claim to: each is shown a small broken project."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from checks import (
    check_data_files,
    check_env,
    check_feature_config,
    check_feature_words,
    check_leftovers,
    check_whitespace,
    text_files,
)
from helpers import left_running

ALL = {"auth", "ai", "openai_sdk", "azure_openai", "anthropic", "ollama", "celery", "nginx"}
OPENAI_NO_CELERY = {"auth", "ai", "openai_sdk", "nginx"}


def write(root: Path, files: dict[str, str]) -> dict[str, str]:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return text_files(root)


PYPROJECT = """[project]
name = "x"
dependencies = ["flask>=3", "openai>=1", "anthropic>=0.3", "celery[redis]>=5"]
"""
ENV_EXAMPLE = """APP_ENV=development
SECRET_KEY=change-me
JWT_SECRET_KEY=change-me
# DATABASE_URL=sqlite:///x
# REDIS_URL=redis://localhost:6379/0
AI_PROVIDER=openai
AI_API_KEY=
AI_MODEL=gpt-4o-mini
CELERY_BROKER_URL=
"""


def test_feature_config_flags_other_providers_and_disabled_features(tmp_path: Path) -> None:
    files = write(
        tmp_path,
        {
            "pyproject.toml": PYPROJECT,
            ".env.example": ENV_EXAMPLE,
            "src/pkg/settings.py": "celery_broker_url: str | None = None\n",
        },
    )
    problems = check_feature_config(tmp_path, files, OPENAI_NO_CELERY, ALL)
    assert "pyproject.toml depends on anthropic though anthropic is off" in problems
    assert "pyproject.toml depends on celery though celery is off" in problems
    assert not any("depends on openai" in problem for problem in problems)
    assert ".env.example sets CELERY_BROKER_URL though celery is off" in problems
    assert "the package names celery_broker_url though celery is off" in problems
    assert not any("does not document" in problem for problem in problems)


def test_feature_config_wants_the_settings_of_enabled_features(tmp_path: Path) -> None:
    files = write(
        tmp_path,
        {"pyproject.toml": "[project]\nname = 'x'\n", ".env.example": "SECRET_KEY=x\n"},
    )
    problems = check_feature_config(tmp_path, files, {"auth"}, ALL)
    assert ".env.example does not document JWT_SECRET_KEY" in problems
    assert ".env.example does not document APP_ENV" in problems


def test_words_of_disabled_features_are_found(tmp_path: Path) -> None:
    files = write(
        tmp_path,
        {
            "README.md": "Run the Celery worker.\nUse OpenAI.\n",
            "src/pkg/api/ai.py": "# nginx buffers unless told not to\n",
        },
    )
    problems = check_feature_words(files, {"ai", "openai_sdk"}, ALL)
    assert any(p.startswith("README.md:1 mentions 'celery'") for p in problems)
    assert not any("openai" in p for p in problems)
    assert not any("nginx" in p for p in problems), "code may explain nginx headers"


def test_leftovers_whitespace_and_parsing(tmp_path: Path) -> None:
    files = write(
        tmp_path,
        {
            "a.toml": 'name = "{{ cookiecutter.project_slug }}"\n',
            "b.yml": "key: [unclosed\n",
            "c.md": "trailing \n\n\n\nend",
            "src/pkg/ai/prompts/p.txt": "{{ kept }}\n",
            "empty.py": "\n",
        },
    )
    (tmp_path / "{{cookiecutter.x}}.txt").write_text("x\n", encoding="utf-8")
    leftovers = check_leftovers(tmp_path, files)
    assert any("a.toml:1" in p for p in leftovers)
    assert any("file name" in p for p in leftovers)
    assert not any("prompts" in p for p in leftovers), "prompts stay Jinja"
    whitespace = check_whitespace(files)
    assert "trailing whitespace at c.md:1" in whitespace
    assert any("three blank lines" in p for p in whitespace)
    assert "c.md must end with exactly one newline" in whitespace
    assert "empty.py is empty" in whitespace
    parsing = check_data_files(files)
    assert [p.split(" ")[0] for p in parsing] == ["b.yml"]


def test_env_check_finds_a_leaked_secret(tmp_path: Path) -> None:
    secret = "s" * 40
    write(
        tmp_path,
        {
            ".env": f"SECRET_KEY={secret}\nJWT_SECRET_KEY={'j' * 40}\n",
            ".gitignore": "*.pyc\n",
            "config.py": f"KEY = '{secret}'\n",
        },
    )
    problems = check_env(tmp_path, use_auth=True)
    assert ".env is not ignored by .gitignore" in problems
    assert "config.py (tracked) contains the value of SECRET_KEY" in problems


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc, which only Linux has")
def test_left_running_finds_and_stops_a_process_left_in_the_project(tmp_path: Path) -> None:
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    (project / "src").mkdir(parents=True)
    elsewhere.mkdir()
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    inside = subprocess.Popen(sleeper, cwd=project / "src")  # a server a suite forgot
    outside = subprocess.Popen(sleeper, cwd=elsewhere)
    try:
        found = left_running(project, grace=0.5)
        assert [line.split()[0] for line in found] == [str(inside.pid)]
        assert inside.wait(timeout=5) < 0  # killed
        assert outside.poll() is None  # not its business
        assert left_running(project, grace=0.5) == []
    finally:
        for process in (inside, outside):
            process.kill()
            process.wait()
