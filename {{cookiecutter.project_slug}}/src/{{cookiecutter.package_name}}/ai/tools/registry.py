"""The tool registry. A tool is one function: a pydantic model of its arguments as the first
parameter, a docstring the model reads, and a JSON-serialisable result. A `caller` parameter,
when present, receives the `Caller` the tool runs for (tools that read data must scope it).
A tool raises ValueError with a message for the model when it cannot answer; any other
exception is logged, and the model only learns that the tool failed.

    class WeatherArgs(ToolArguments):
        city: str = Field(description="A city name")

    @tool
    def weather(args: WeatherArgs) -> dict[str, str]:
        \"\"\"Today's weather in a city.\"\"\"
        return {"city": args.city, "forecast": "sunny"}

Its JSON Schema is what the model sees and what `GET /api/v1/ai/tools` lists.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar, get_type_hints

from pydantic import BaseModel, ConfigDict

from ...core.identity import Caller
from ..base import ToolSpec

F = TypeVar("F", bound=Callable[..., Any])


class ToolArguments(BaseModel):
    """The base of argument models: arguments the tool does not know are an error."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    arguments: type[BaseModel]
    function: Callable[..., Any]
    wants_caller: bool

    @property
    def spec(self) -> ToolSpec:
        return ToolSpec(self.name, self.description, self.arguments.model_json_schema())

    def run(self, arguments: BaseModel, caller: Caller) -> Any:
        """Call the function; a pydantic result becomes plain JSON data."""
        if self.wants_caller:
            result = self.function(arguments, caller=caller)
        else:
            result = self.function(arguments)
        return result.model_dump(mode="json") if isinstance(result, BaseModel) else result


REGISTRY: dict[str, Tool] = {}


def tool(function: F) -> F:
    """Register `function` as a tool named after it."""
    description = inspect.getdoc(function)
    if not description:
        raise TypeError(f"tool {function.__name__} needs a docstring: the model reads it")
    parameters = list(inspect.signature(function).parameters)
    hints = get_type_hints(function)
    arguments = hints.get(parameters[0]) if parameters else None
    if not (isinstance(arguments, type) and issubclass(arguments, BaseModel)):
        raise TypeError(f"tool {function.__name__} must take a pydantic model first")
    if function.__name__ in REGISTRY:
        raise ValueError(f"a tool named {function.__name__} is already registered")
    REGISTRY[function.__name__] = Tool(
        name=function.__name__,
        description=description,
        arguments=arguments,
        function=function,
        wants_caller="caller" in parameters[1:],
    )
    return function


def registered() -> list[Tool]:
    """Every tool, by name."""
    return [REGISTRY[name] for name in sorted(REGISTRY)]


def unknown_tools(names: Iterable[str]) -> list[str]:
    return [name for name in names if name not in REGISTRY]


def get_tools(names: Iterable[str]) -> tuple[Tool, ...]:
    """The named tools, in the order given, each once (names must be registered)."""
    return tuple(REGISTRY[name] for name in dict.fromkeys(names))
