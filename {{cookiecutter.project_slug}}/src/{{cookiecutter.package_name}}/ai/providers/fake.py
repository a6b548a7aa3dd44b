"""The offline provider: deterministic replies, no network. It stands in when no API key is set."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from ..base import (
    ChatRequest,
    ChatResponse,
    Message,
    StreamChunk,
    ToolCall,
    ToolSpec,
    Usage,
    estimate_tokens,
    message_tokens,
)
{%- if cookiecutter.use_rag %}
from .fake_grounded import grounded_reply
{%- endif %}


class FakeProvider:
    """Deterministic replies, by these rules:

    - Tools offered and the last message is the user's: every offered tool named in it (as a
      word) is called, all in one turn, in the order they are named. A tool's arguments are the
      JSON object written right after its name on the same line (`current_time {"timezone":
      "Europe/Paris"}`, passed on as written, even when it is not valid), else the smallest
      document of the tool's schema (required fields only).
    - The last messages are tool results: the reply repeats each result (or error).
    - A JSON schema asked for: the smallest document that the schema accepts.
{%- if cookiecutter.use_rag %}
    - A grounded question (`ask.txt`): the source sentences closest to it, quoted and cited.
{%- endif %}
    - Otherwise: the last user message, echoed.
    """

    name = "fake"

    def complete(self, request: ChatRequest) -> ChatResponse:
        tool_calls = _tool_calls(request)
        content = "" if tool_calls else self._reply(request)
        finish_reason = "tool_calls" if tool_calls else "stop"
        if request.max_tokens is not None and estimate_tokens(content) > request.max_tokens:
            content = content[: request.max_tokens * 4]
            finish_reason = "length"
        usage = Usage(
            prompt_tokens=sum(message_tokens(m) for m in request.messages),
            completion_tokens=message_tokens(Message("assistant", content, tool_calls)),
        )
        return ChatResponse(
            content=content,
            finish_reason=finish_reason,
            model=request.model,
            usage=usage,
            tool_calls=tool_calls,
        )

    def stream(self, request: ChatRequest) -> Iterator[StreamChunk]:
        response = self.complete(request)
        return self._chunks(response)

    @staticmethod
    def _chunks(response: ChatResponse) -> Iterator[StreamChunk]:
        words = response.content.split(" ")
        for index, word in enumerate(words):
            if word or index:
                yield StreamChunk(delta=word if index == 0 else " " + word)
        yield StreamChunk(
            finish_reason=response.finish_reason,
            usage=response.usage,
            model=response.model,
            tool_calls=response.tool_calls,
        )

    @staticmethod
    def _reply(request: ChatRequest) -> str:
        results = _last_results(request.messages)
        if results:
            return "(offline reply) " + "; ".join(results)
        if request.json_schema is not None:
            return json.dumps(example_for(request.json_schema))
        last_user = next((m.content for m in reversed(request.messages) if m.role == "user"), "")
{%- if cookiecutter.use_rag %}
        grounded = grounded_reply(last_user)
        if grounded is not None:
            return grounded
{%- endif %}
        return f"(offline reply) You said: {last_user}"


def _tool_calls(request: ChatRequest) -> tuple[ToolCall, ...]:
    if not request.tools or not request.messages or request.messages[-1].role != "user":
        return ()
    text = request.messages[-1].content
    named: list[tuple[int, ToolSpec, re.Match[str]]] = []
    for spec in request.tools:
        match = re.search(rf"\b{re.escape(spec.name)}\b", text)
        if match:
            named.append((match.start(), spec, match))
    made = sum(len(m.tool_calls) for m in request.messages)  # ids stay unique in a history
    return tuple(
        ToolCall(f"call_{made + index}", spec.name, _arguments(spec, text, match.end()))
        for index, (_, spec, match) in enumerate(sorted(named, key=lambda item: item[0]), 1)
    )


def _arguments(spec: ToolSpec, text: str, after: int) -> str:
    line = text[after:].split("\n", 1)[0].lstrip()
    if line.startswith("{") and "}" in line:
        return line[: line.rindex("}") + 1]
    properties: dict[str, Any] = spec.parameters.get("properties", {})
    required: list[str] = spec.parameters.get("required", [])
    return json.dumps(
        {name: example_for(properties.get(name, {}), spec.parameters) for name in required}
    )


def _last_results(messages: tuple[Message, ...]) -> list[str]:
    """What the trailing tool results say, each with the name of its tool."""
    names = {call.id: call.name for m in messages for call in m.tool_calls}
    results: list[str] = []
    for message in reversed(messages):
        if message.role != "tool":
            break
        name = names.get(message.tool_call_id or "", "a tool")
        verb = "failed" if message.is_error else "returned"
        results.insert(0, f"{name} {verb}: {message.content}")
    return results


def example_for(schema: dict[str, Any], root: dict[str, Any] | None = None) -> Any:
    """The smallest document that a (simple) JSON Schema accepts."""
    root = root or schema
    if "$ref" in schema:
        target: Any = root
        for part in str(schema["$ref"]).removeprefix("#/").split("/"):
            target = target.get(part, {})
        return example_for(target, root)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for keyword in ("anyOf", "oneOf", "allOf"):
        if schema.get(keyword):
            return example_for(schema[keyword][0], root)
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        properties: dict[str, Any] = schema.get("properties", {})
        required = schema.get("required", list(properties))
        return {name: example_for(properties.get(name, {}), root) for name in required}
    if kind == "array":
        return [example_for(schema.get("items", {}), root)] * max(1, schema.get("minItems", 1))
    if kind in ("integer", "number"):
        return schema.get("minimum", 0)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return "example".ljust(schema.get("minLength", 0), "x")
