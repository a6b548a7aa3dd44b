"""Structured output: ask for JSON, validate it against a JSON Schema or a pydantic model, and
re-ask with the validation errors until it passes or the attempts run out."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema.validators import validator_for
from pydantic import BaseModel, ValidationError

from .base import ChatRequest, ChatResponse, Message, Usage

_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)
MAX_REPORTED_ERRORS = 10
PROMPTS_DIR = Path(__file__).with_name("prompts")


@cache
def prompt(name: str) -> str:
    """A prompt template from `ai/prompts/` (kept out of the project generator's rendering)."""
    return (PROMPTS_DIR / f"{name}.txt").read_text(encoding="utf-8")


class InvalidOutputError(Exception):
    """The reply is not valid; `errors` lists {path, message} for the re-ask and the client."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{e['path']}: {e['message']}" for e in errors))
        self.errors = errors


class StructuredOutputError(Exception):
    """Still invalid after every attempt. Carries the usage of all attempts."""

    def __init__(self, errors: list[dict[str, str]], usage: Usage, attempts: int) -> None:
        super().__init__("The model's reply did not match the schema.")
        self.errors = errors
        self.usage = usage
        self.attempts = attempts


@dataclass(frozen=True)
class StructuredResult:
    response: ChatResponse  # the last reply, with usage summed over every attempt
    parsed: Any
    attempts: int


def check_schema(schema: dict[str, Any]) -> None:
    """Raise `jsonschema.SchemaError` when `schema` is not a valid JSON Schema."""
    validator_for(schema).check_schema(schema)


def parse_reply(content: str, schema: dict[str, Any], model: type[BaseModel] | None = None) -> Any:
    """The reply as JSON, validated against `schema` (and `model`, when given)."""
    match = _FENCE.match(content)
    text = match.group(1) if match else content.strip()
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InvalidOutputError([{"path": "$", "message": f"not valid JSON: {exc}"}]) from exc
    validator = validator_for(schema)(schema)
    errors = [
        {"path": _path(error.absolute_path), "message": error.message}
        for error in sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    ]
    if errors:
        raise InvalidOutputError(errors[:MAX_REPORTED_ERRORS])
    if model is None:
        return data
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidOutputError(
            [
                {"path": _path(error["loc"]), "message": error["msg"]}
                for error in exc.errors(include_url=False)
            ][:MAX_REPORTED_ERRORS]
        ) from exc


def structured_request(request: ChatRequest, schema: dict[str, Any]) -> ChatRequest:
    """A copy of `request` whose first message tells the model the schema to follow."""
    instruction = prompt("structured").format(schema=json.dumps(schema, indent=2))
    messages = list(request.messages)
    if messages and messages[0].role == "system":
        messages[0] = Message("system", f"{messages[0].content}\n\n{instruction}")
    else:
        messages.insert(0, Message("system", instruction))
    return replace(request, messages=tuple(messages), json_output=True, json_schema=schema)


def complete_structured(
    call: Callable[[ChatRequest], tuple[ChatResponse, int]],
    request: ChatRequest,
    schema: dict[str, Any],
    *,
    max_reasks: int,
    model: type[BaseModel] | None = None,
) -> StructuredResult:
    """Call, validate, and re-ask with the errors up to `max_reasks` times.

    `call` returns a reply and the number of upstream calls it made (its own retries).
    The caller's `request` is never changed: each attempt gets a new message tuple.
    """
    current = structured_request(request, schema)
    usage = Usage()
    attempts = 0
    errors: list[dict[str, str]] = []
    for _ in range(max_reasks + 1):
        response, calls = call(current)
        attempts += calls
        usage = usage + response.usage
        try:
            parsed = parse_reply(response.content, schema, model)
        except InvalidOutputError as exc:
            errors = exc.errors
            reask = prompt("reask").format(
                errors="\n".join(f"- {e['path']}: {e['message']}" for e in errors)
            )
            current = replace(
                current,
                messages=(
                    *current.messages,
                    Message("assistant", response.content),
                    Message("user", reask),
                ),
            )
            continue
        return StructuredResult(replace(response, usage=usage), parsed, attempts)
    raise StructuredOutputError(errors, usage, attempts)


def _path(parts: Any) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)
