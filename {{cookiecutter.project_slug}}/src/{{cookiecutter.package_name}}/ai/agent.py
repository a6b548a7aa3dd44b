"""The tool loop: offer tools, run the calls the model asks for, send the results back, and call
the model again, until it answers without tool calls or `max_steps` model calls were made.

A call's failures are data, never exceptions: a tool that is not offered, arguments that are not
JSON or fail validation, a tool that raises or outlives `AI_TOOL_TIMEOUT` each become an error
result the model reads (and can recover from). Only the provider failing ends the loop early.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextvars import copy_context
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from flask import Flask, current_app
from pydantic import BaseModel, ValidationError

from ..core.identity import Caller
from ..core.responses import EnvelopeWarning
from .base import ChatRequest, ChatResponse, Message, Provider, ToolCall, Usage
from .metrics import observe_tool
from .retry import RetryPolicy, call_with_retries
from .settings import ai_settings
from .tools import Tool

logger = logging.getLogger(__name__)

MAX_ERROR_LENGTH = 500


@dataclass(frozen=True)
class Toolbox:
    """The tools one request offers, who they run for, and how many model calls it may make."""

    tools: tuple[Tool, ...]
    caller: Caller
    max_steps: int

    def offer(self, request: ChatRequest) -> ChatRequest:
        return replace(request, tools=tuple(tool.spec for tool in self.tools))


@dataclass
class Step:
    """One tool call and how it ended: `result`, or `error` (what the model was told)."""

    id: str
    tool: str
    arguments: Any  # the parsed object, or the model's text when it was not JSON
    result: Any = None
    error: str | None = None
    duration_ms: float = 0.0
    # For the metrics: ok, invalid_arguments, unknown_tool, error or timeout.
    outcome: str = "ok"

    def fail(self, outcome: str, error: str) -> None:
        self.outcome, self.error = outcome, error[:MAX_ERROR_LENGTH]

    def message(self) -> Message:
        """The result as the model gets it."""
        content = self.result if self.error is None else {"error": self.error}
        return Message(
            "tool", json.dumps(content), tool_call_id=self.id, is_error=self.error is not None
        )

    def result_event(self) -> dict[str, Any]:
        event: dict[str, Any] = {"id": self.id, "tool": self.tool}
        if self.error is None:
            event["result"] = self.result
        else:
            event["error"] = self.error
        return event

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "tool": self.tool,
            "arguments": self.arguments,
            "result": self.result,
            "error": self.error,
            "duration_ms": round(self.duration_ms, 2),
        }


@dataclass
class AgentRun:
    """The tool loop of one request. Its usage and steps add up over every model call
    (structured-output re-asks too) and stay readable when the provider fails half-way."""

    provider: Provider
    toolbox: Toolbox
    policy: RetryPolicy
    steps: list[Step] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    max_steps_reached: bool = False
    turns: list[Message] = field(default_factory=list)  # tool calls and results, in order

    def complete(self, request: ChatRequest) -> tuple[ChatResponse, int]:
        """Run the loop; returns the last reply (its usage summed over the loop) and, like one
        retried call would, 1 + the retries it needed (so the loop alone is not a `retried`)."""
        current = self.toolbox.offer(request)
        usage, attempts, made = Usage(), 0, 0
        while made < self.toolbox.max_steps:
            made += 1
            response, calls = call_with_retries(
                partial(self.provider.complete, current), self.policy
            )
            attempts += calls
            usage = usage + response.usage
            self.usage = self.usage + response.usage
            if not response.tool_calls:
                break
            if made == self.toolbox.max_steps:
                self.max_steps_reached = True
                break
            current = self.advance(current, response.content, response.tool_calls)
        return replace(response, usage=usage), attempts - made + 1

    def advance(self, request: ChatRequest, content: str, calls: Sequence[ToolCall]) -> ChatRequest:
        """Run the calls; returns the request that carries them and their results on."""
        steps = run_tools(calls, self.toolbox)
        self.steps += steps
        added = [
            Message("assistant", content, tool_calls=tuple(calls)),
            *(step.message() for step in steps),
        ]
        self.turns += added
        return replace(request, messages=(*request.messages, *added))

    def warnings(self) -> list[EnvelopeWarning]:
        if not self.max_steps_reached:
            return []
        return [
            EnvelopeWarning(
                code="max_steps_reached",
                message=f"The model still asked for tools after {self.toolbox.max_steps} calls; "
                "raise max_steps for a complete answer.",
            )
        ]


def run_tools(calls: Sequence[ToolCall], toolbox: Toolbox) -> list[Step]:
    """Run one turn's calls side by side, each bounded by AI_TOOL_TIMEOUT."""
    offered = {tool.name: tool for tool in toolbox.tools}
    steps: list[Step] = []
    runnable: list[tuple[Step, Tool, BaseModel]] = []
    for call in calls:
        step, arguments = prepare(call, offered)
        steps.append(step)
        if arguments is not None:
            runnable.append((step, offered[call.name], arguments))
    if runnable:
        _execute(runnable, toolbox.caller, ai_settings().ai_tool_timeout)
    for step in steps:
        observe_tool(step.tool if step.tool in offered else "unknown", step)
    return steps


def parsed_arguments(call: ToolCall) -> Any:
    """The call's arguments as JSON data, or the model's text as it is when it is not JSON."""
    try:
        return json.loads(call.arguments or "{}")
    except ValueError:
        return call.arguments


def call_event(call: ToolCall) -> dict[str, Any]:
    return {"id": call.id, "tool": call.name, "arguments": parsed_arguments(call)}


def prepare(call: ToolCall, offered: dict[str, Tool]) -> tuple[Step, BaseModel | None]:
    """The call's step, and its validated arguments (None when the call cannot run)."""
    try:
        step = Step(id=call.id, tool=call.name, arguments=json.loads(call.arguments or "{}"))
    except ValueError as exc:
        step = Step(id=call.id, tool=call.name, arguments=call.arguments)
        step.fail("invalid_arguments", f"the arguments are not valid JSON: {exc}")
        return step, None
    tool = offered.get(call.name)
    if tool is None:
        names = ", ".join(offered) or "none"
        step.fail("unknown_tool", f"unknown tool {call.name!r}; the tools offered are: {names}")
        return step, None
    try:
        return step, tool.arguments.model_validate(step.arguments)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or '$'}: {error['msg']}"
            for error in exc.errors(include_url=False)
        )
        step.fail("invalid_arguments", f"invalid arguments: {problems}")
        return step, None


def _execute(runnable: list[tuple[Step, Tool, BaseModel]], caller: Caller, timeout: float) -> None:
    """Run the tools in threads (each in the app's context) and wait for them until the
    deadline. A tool that overruns cannot be stopped: its thread finishes on its own, and its
    late result is dropped."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    executor = ThreadPoolExecutor(max_workers=len(runnable), thread_name_prefix="ai-tool")
    started = time.perf_counter()
    try:
        # Each in a copy of this context: a tool's own work (its SQL) joins the request's trace.
        futures = [
            (step, executor.submit(copy_context().run, _run_one, app, tool, arguments, caller))
            for step, tool, arguments in runnable
        ]
        deadline = time.monotonic() + timeout
        for step, future in futures:
            try:
                step.result, error, step.duration_ms = future.result(
                    timeout=max(0.0, deadline - time.monotonic())
                )
            except FutureTimeout:
                step.fail("timeout", f"the tool did not finish within {timeout:g} seconds")
                step.duration_ms = (time.perf_counter() - started) * 1000
            else:
                if error is not None:
                    step.fail("error", error)
    finally:
        executor.shutdown(wait=False, cancel_futures=True)


def _run_one(
    app: Flask, tool: Tool, arguments: BaseModel, caller: Caller
) -> tuple[Any, str | None, float]:
    started = time.perf_counter()
    result: Any = None
    error: str | None = None
    try:
        with app.app_context():
            result = tool.run(arguments, caller)
        json.dumps(result)  # what the model gets must be JSON
    except (TypeError, ValueError) as exc:  # a refusal meant for the model, or a non-JSON result
        logger.warning("Tool %s failed: %r", tool.name, exc)
        result, error = None, f"the tool failed: {exc}"
    except Exception as exc:
        # Not shown to the model: an unexpected error may carry internals (SQL, paths).
        logger.exception("Tool %s failed", tool.name)
        result, error = None, f"the tool failed unexpectedly ({type(exc).__name__})"
    return result, error, (time.perf_counter() - started) * 1000
