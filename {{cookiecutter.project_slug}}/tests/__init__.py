"""Tests of the service; `uv run pytest` runs them."""
