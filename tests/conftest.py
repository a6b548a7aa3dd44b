"""Fixtures shared by the template's tests."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import full_context


@pytest.fixture
def default_context() -> dict[str, Any]:
    return full_context()
