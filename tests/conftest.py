"""Fixtures shared by the template's tests."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import TEMPLATE_DIR, full_context


def pytest_configure(config: pytest.Config) -> None:
    # pytest-cookies bakes `--template` (default "."); make it this template wherever pytest runs.
    if config.option.template == ".":
        config.option.template = str(TEMPLATE_DIR)


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
