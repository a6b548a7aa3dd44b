"""The offline provider: deterministic replies, no network. It stands in when no API key is set."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from ..base import ChatRequest, ChatResponse, StreamChunk, Usage, estimate_tokens


class FakeProvider:
    """Echoes the last user message; with a JSON schema, answers the smallest valid document."""

    name = "fake"

    def complete(self, request: ChatRequest) -> ChatResponse:
        content = self._reply(request)
        finish_reason = "stop"
        if request.max_tokens is not None and estimate_tokens(content) > request.max_tokens:
            content = content[: request.max_tokens * 4]
            finish_reason = "length"
        usage = Usage(
            prompt_tokens=sum(estimate_tokens(m.content) for m in request.messages),
            completion_tokens=estimate_tokens(content),
        )
        return ChatResponse(
            content=content, finish_reason=finish_reason, model=request.model, usage=usage
        )

    def stream(self, request: ChatRequest) -> Iterator[StreamChunk]:
        response = self.complete(request)
        return self._chunks(response)

    @staticmethod
    def _chunks(response: ChatResponse) -> Iterator[StreamChunk]:
        words = response.content.split(" ")
        for index, word in enumerate(words):
            yield StreamChunk(delta=word if index == 0 else " " + word)
        yield StreamChunk(
            finish_reason=response.finish_reason, usage=response.usage, model=response.model
        )

    @staticmethod
    def _reply(request: ChatRequest) -> str:
        if request.json_schema is not None:
            return json.dumps(example_for(request.json_schema))
        last_user = next((m.content for m in reversed(request.messages) if m.role == "user"), "")
        return f"(offline reply) You said: {last_user}"


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
