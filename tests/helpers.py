"""Shared helpers: the template's options, the feature matrix, the hooks as importable modules."""

from __future__ import annotations

import itertools
import json
import os
import signal
import time
import types
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TEMPLATE_DIR = Path(__file__).resolve().parents[1]
HOOKS_DIR = TEMPLATE_DIR / "hooks"
COOKIECUTTER_JSON: dict[str, Any] = json.loads(
    (TEMPLATE_DIR / "cookiecutter.json").read_text(encoding="utf-8")
)
# The template's files that stay Jinja in the project (the LLM prompt templates, which the app
# renders at run time), relative to the project root. The other files that cookiecutter.json's
# `_copy_without_render` lists are copied as they are because they hold no Jinja at all:
# rendering them would only cost each bake a Jinja compile per file (tests/test_bake.py keeps
# that list exact).
STAYS_JINJA = ("src/*/ai/prompts/*",)

# The options that change what the project contains; every combination is baked.
FEATURE_OPTIONS = (
    "ai_provider",
    "use_rag",
    "use_auth",
    "use_celery",
    "use_nginx",
    "use_docker",
    "ci_provider",
)
# The options that change what the project does at run time; every combination runs its tests.
RUNTIME_OPTIONS = ("ai_provider", "use_rag", "use_auth", "use_celery", "use_nginx")
# Options that only change values inside files; each value is baked at least once.
VALUE_OPTIONS = ("python_version", "license")
# Options that need another one on (the pre-gen hook refuses them without it): they alternate
# over the combinations where it is on, and stay at their default elsewhere.
DEPENDENT_OPTIONS = {"use_kubernetes": "use_docker"}


def choices(option: str) -> list[Any]:
    """The values an option accepts, default first (booleans: True, False)."""
    default = COOKIECUTTER_JSON[option]
    if isinstance(default, bool):
        return [default, not default]
    if isinstance(default, list):
        return list(default)
    return [default]


def option_id(context: dict[str, Any]) -> str:
    """`ai_provider:anthropic-use_auth:False-...`: readable test ids."""
    return "-".join(f"{key}:{value}" for key, value in context.items())


# Answers that may not go together (the pre-gen hook refuses them): no matrix contains a
# combination with both. An option missing from a combination never matches.
INCOMPATIBLE: tuple[tuple[tuple[str, Any], tuple[str, Any]], ...] = (
    (("use_rag", True), ("ai_provider", "none")),
    (("use_kubernetes", True), ("use_docker", False)),
)


def compatible(context: dict[str, Any]) -> bool:
    """False when `context` holds both answers of an INCOMPATIBLE pair."""
    return not any(
        first in context
        and second in context
        and context[first] == first_value
        and context[second] == second_value
        for (first, first_value), (second, second_value) in INCOMPATIBLE
    )


def combinations(
    options: tuple[str, ...], values: Callable[[str], list[Any]] = choices
) -> list[dict[str, Any]]:
    """Every compatible combination of `options`, in cookiecutter.json's order of values."""
    every = (
        dict(zip(options, combo, strict=True))
        for combo in itertools.product(*(values(option) for option in options))
    )
    return [context for context in every if compatible(context)]


# Providers that install the same SDK share one dependency set (see the project's pyproject.toml);
# tests/test_template_ci.py checks that variants with one `deps` key render the same dependencies.
SAME_DEPENDENCIES = {"ai_provider": {"azure_openai": "openai", "ollama": "openai"}}


@dataclass(frozen=True)
class Variant:
    """One runtime variant: `id` is its pytest id, `label` what a person reads in CI."""

    context: tuple[tuple[str, Any], ...]

    @property
    def answers(self) -> dict[str, Any]:
        return dict(self.context)

    @property
    def id(self) -> str:
        return option_id(self.answers)

    @property
    def label(self) -> str:
        """`anthropic · auth · celery · nginx`, `none · no auth · no celery · no nginx`."""
        words = []
        for option, value in self.context:
            if isinstance(value, bool):
                name = option.removeprefix("use_")
                words.append(name if value else f"no {name}")
            else:
                words.append(str(value))
        return " · ".join(words)

    @property
    def deps(self) -> str:
        """The same for every variant that installs the same packages (a CI cache key)."""
        return "-".join(
            f"{option}:{SAME_DEPENDENCIES.get(option, {}).get(value, value)}"
            for option, value in self.context
        )

    def as_json(self) -> dict[str, str]:
        return {"id": self.id, "label": self.label, "deps": self.deps}


def runtime_variants(
    options: tuple[str, ...] = RUNTIME_OPTIONS, values: Callable[[str], list[Any]] = choices
) -> list[Variant]:
    """The runtime variants: what `nox -s variants` runs, `--list-json` prints, and the GitHub
    and GitLab workflows run one job each for."""
    return [Variant(tuple(context.items())) for context in combinations(options, values)]


def feature_matrix() -> list[dict[str, Any]]:
    """All feature combinations; python_version and license rotate so each value appears.

    A dependent option (use_kubernetes) alternates where its requirement is on. ci_provider
    varies fastest and has three values, so every runtime combination with Docker is baked both
    with and without it."""
    matrix = []
    for index, combo in enumerate(combinations(FEATURE_OPTIONS)):
        for option in VALUE_OPTIONS:
            values = choices(option)
            combo[option] = values[index % len(values)]
        for option, needs in DEPENDENT_OPTIONS.items():
            values = choices(option)
            combo[option] = values[index % len(values)] if combo[needs] else values[0]
        matrix.append(combo)
    return matrix


def hook_source(name: str, context: dict[str, Any]) -> str:
    """The hook as cookiecutter renders it: the only Jinja is the context as JSON."""
    source = (HOOKS_DIR / f"{name}.py").read_text(encoding="utf-8")
    placeholder = "{{ cookiecutter | tojson }}"
    assert source.count(placeholder) == 1, f"{name}: expected one {placeholder!r}"
    return source.replace(placeholder, json.dumps(context))


def load_hook(name: str, context: dict[str, Any]) -> types.ModuleType:
    """Import a hook with `context` as its answers, without writing bytecode next to it."""
    module = types.ModuleType(f"hook_{name}")
    module.__file__ = str(HOOKS_DIR / f"{name}.py")
    exec(compile(hook_source(name, context), module.__file__, "exec"), module.__dict__)  # noqa: S102
    return module


def full_context(**overrides: Any) -> dict[str, Any]:
    """The answers cookiecutter would pass to the hooks for `--no-input` plus `overrides`."""
    from cookiecutter.generate import generate_context
    from cookiecutter.prompt import prompt_for_config

    context = generate_context(
        context_file=str(TEMPLATE_DIR / "cookiecutter.json"), extra_context=overrides
    )
    answers: dict[str, Any] = dict(prompt_for_config(context, no_input=True))
    answers["_template"] = str(TEMPLATE_DIR)
    return answers


def iter_files(root: Path) -> Iterator[Path]:
    """Every file under `root`, skipping VCS and tool caches."""
    skip = {".git", ".venv", ".ruff_cache", ".mypy_cache", ".pytest_cache", "__pycache__"}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not skip.intersection(path.relative_to(root).parts):
            yield path


def left_running(project: Path, grace: float = 10.0) -> list[str]:
    """The processes still at work in `project` (their working directory in it) once its steps
    are done, after `grace` seconds to exit: killed, and listed. A suite stops every server,
    worker and browser it starts; one that does not leaves them running on the CI machine.
    Linux only (/proc): elsewhere, none are found."""
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    project = project.resolve()  # as the kernel names working directories
    deadline = time.monotonic() + grace
    while True:
        found: dict[int, str] = {}
        for entry in proc.iterdir():
            if not entry.name.isdigit():
                continue
            try:  # a process gone meanwhile, or a zombie, has no working directory to read
                cwd = (entry / "cwd").readlink()
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except (OSError, UnicodeDecodeError):
                continue
            if cwd == project or project in cwd.parents:
                found[int(entry.name)] = command.strip()
        if not found or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    for pid in found:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return [f"{pid} {command[:200]}" for pid, command in sorted(found.items())]
