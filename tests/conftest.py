"""Fixtures shared by the template's tests."""

from __future__ import annotations

import functools
from typing import Any

import jinja2
import pytest
from cookiecutter import generate
from helpers import TEMPLATE_DIR, full_context


def pytest_configure(config: pytest.Config) -> None:
    # pytest-cookies bakes `--template` (default "."); make it this template wherever pytest runs.
    if config.option.template == ".":
        config.option.template = str(TEMPLATE_DIR)
    cache_compiled_templates()
    cache_binary_checks()


def cache_binary_checks() -> None:
    """Decide once per process whether a template file is binary (copied as is) or text: the
    files do not change during a run, and the check reads and scores each one on every bake."""
    generate.is_binary = functools.cache(generate.is_binary)


def cache_compiled_templates() -> None:
    """Compile each Jinja template once per process instead of once per bake.

    cookiecutter builds a fresh Jinja environment for every bake, which compiles the same few
    hundred templates (files, names, hooks) again: about four fifths of a bake's time. The
    compiled code depends only on the source and on the environment's syntax settings, which
    are the key here; rendering still runs for every bake with its own context.
    """
    compile_source = jinja2.Environment.compile
    compiled: dict[tuple[Any, ...], Any] = {}

    def compile_once(
        self: jinja2.Environment,
        source: Any,
        name: str | None = None,
        filename: str | None = None,
        raw: bool = False,
        defer_init: bool = False,
    ) -> Any:
        if not isinstance(source, str):  # an already parsed template
            return compile_source(self, source, name, filename, raw, defer_init)
        key = (
            source,
            name,
            filename,
            raw,
            defer_init,
            type(self),
            tuple(sorted(self.extensions)),
            self.block_start_string,
            self.block_end_string,
            self.variable_start_string,
            self.variable_end_string,
            self.comment_start_string,
            self.comment_end_string,
            self.line_statement_prefix,
            self.line_comment_prefix,
            self.trim_blocks,
            self.lstrip_blocks,
            self.newline_sequence,
            self.keep_trailing_newline,
            self.optimized,
            self.autoescape if isinstance(self.autoescape, bool) else id(self.autoescape),
            self.finalize is not None,
        )
        if key not in compiled:
            compiled[key] = compile_source(self, source, name, filename, raw, defer_init)
        return compiled[key]

    jinja2.Environment.compile = compile_once  # type: ignore[method-assign,assignment]


@pytest.fixture
def default_context() -> dict[str, Any]:
    return full_context()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """List each variant's step timings (recorded by tests/test_variants.py)."""
    rows = [
        (report.nodeid.split("[", 1)[-1].rstrip("]"), report.outcome, value)
        for outcome in ("passed", "failed")
        for report in terminalreporter.stats.get(outcome, [])
        if report.when == "call"
        for name, value in report.user_properties
        if name == "timings"
    ]
    if rows:
        terminalreporter.section("variant timings")
        for variant, outcome, timings in sorted(rows):
            terminalreporter.write_line(f"{outcome:6} {variant}: {timings}")
