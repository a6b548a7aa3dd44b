"""Tools the model may call: the registry, and the built-in tools registered on import."""

from __future__ import annotations

from . import builtin
from .registry import REGISTRY, Tool, ToolArguments, get_tools, registered, tool, unknown_tools

__all__ = [
    "REGISTRY",
    "Tool",
    "ToolArguments",
    "builtin",
    "get_tools",
    "registered",
    "tool",
    "unknown_tools",
]
