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
