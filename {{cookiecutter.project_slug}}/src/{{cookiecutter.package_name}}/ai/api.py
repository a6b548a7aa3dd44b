"""`/api/v1/ai`: completions, streaming, tools, conversations and usage; `/api/v1/recipes`.

Usage, budgets, rate limits and conversations belong to the caller (`core/identity.py`). A
read-only caller may ask the model and let it use tools (tools only read) but cannot create
conversations or add messages to them, which store data.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flask import Response, stream_with_context

from ..core.blueprint import api_blueprint
from ..core.identity import Caller, current_caller
from ..core.responses import Envelope, ErrorEnvelope, envelope
from . import conversations
from .base import Message
from .completion import chat_request, complete, toolbox
from .models import (
    CompletionOut,
    CompletionRequest,
    ConversationCreate,
    ConversationDetail,
    ConversationList,
    ConversationOut,
    ConversationPath,
    ConversationReply,
    MessageCreate,
    RecipeOut,
    RecipeRequest,
    ToolOut,
    UsageSummary,
)
from .recipes import generate_recipe
from .streaming import open_stream
from .tools import registered
from .usage import enforce_rate_limit, usage_summary, write_after_response

ai_bp = api_blueprint("ai", __name__, writes=True)
recipes_bp = api_blueprint("recipes", __name__)
# The calls' usage is written once their responses are out.
ai_bp.after_request(write_after_response)
recipes_bp.after_request(write_after_response)

AI_ERRORS: dict[str | int, Any] = {502: ErrorEnvelope, 503: ErrorEnvelope, 504: ErrorEnvelope}
SSE_DOC = {
    "description": "Server-sent events: `delta` {content} ..., with tools `tool_call` {id, tool, "
    "arguments} and `tool_result` {id, tool, result | error} between the model's turns, then "
    "`done` {finish_reason, usage, steps?, warnings} or `error` {code, message}.",
    # On OpenAPI 3.0/3.1 the schema of text/event-stream describes one event (as parsed by
    # clients and checkers such as schemathesis), not the whole body.
    "content": {
        "text/event-stream": {
            "schema": {
                "type": "object",
                "required": ["event", "data"],
                "properties": {
                    "event": {
                        "type": "string",
                        "enum": ["delta", "tool_call", "tool_result", "done", "error"],
                    },
                    "data": {"type": "string"},
                },
            }
        }
    },
}


def owner(*, writes: bool = False) -> str:
    """The caller's owner key (403 for a read-only caller when `writes`)."""
    return current_caller(writes=writes).key


def caller(*, writes: bool = False) -> Caller:
    """A caller about to use the model, after the AI rate limit (counted once per request,
    however many model calls its tool loop makes)."""
    who = current_caller(writes=writes)
    enforce_rate_limit(who.key)
    return who


def event_stream(events: Iterator[str]) -> Response:
    return Response(
        stream_with_context(events),
        mimetype="text/event-stream",
        # Proxies must pass each event on at once (nginx buffers unless told not to).
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@ai_bp.post("/complete", responses={200: Envelope[CompletionOut], **AI_ERRORS})
def create_completion(body: CompletionRequest) -> Response:
    """One completion; with a response schema, the validated reply.

    With `response_schema` the reply is validated and returned as `parsed`."""
    result = complete(body, caller())
    return envelope(result.data, warnings=result.warnings)


@ai_bp.post("/stream", responses={200: SSE_DOC, **AI_ERRORS})
def stream_completion(body: CompletionRequest) -> Response:
    """The completion as server-sent events, each flushed as the provider sends it."""
    who = caller()
    chat = chat_request(
        [Message(m.role, m.content) for m in body.messages],
        temperature=body.temperature,
        max_tokens=body.max_tokens,
    )
    tools = toolbox(body.tools, who, body.max_steps)
    return event_stream(open_stream(chat, who.key, schema=body.response_schema, tools=tools))


@ai_bp.get("/tools", responses={200: Envelope[list[ToolOut]]})
def list_tools() -> Response:
    """The tools a request may offer the model, with the JSON Schema of their arguments.

    Name them in a request's `tools: [name, ...]`."""
    owner()  # signed in, like every AI route
    tools = [
        ToolOut(name=tool.name, description=tool.description, parameters=tool.spec.parameters)
        for tool in registered()
    ]
    return envelope([tool.model_dump() for tool in tools])


@ai_bp.get("/usage", responses={200: Envelope[UsageSummary]})
def get_usage() -> Response:
    """The caller's AI usage and what is left of today's token budget."""
    return envelope(usage_summary(owner()))


@ai_bp.post("/conversations", responses={201: Envelope[ConversationOut]})
def create_conversation(body: ConversationCreate) -> Response:
    """Start a conversation (optionally with its own system prompt)."""
    conversation = conversations.create_conversation(body, owner(writes=True))
    return envelope(
        ConversationOut.model_validate(conversation), message="Conversation created.", status=201
    )


@ai_bp.get("/conversations", responses={200: Envelope[ConversationList]})
def list_conversations() -> Response:
    """The caller's conversations, most recent first."""
    return envelope(conversations.list_conversations(owner()))


@ai_bp.get(
    "/conversations/<int:conversation_id>",
    responses={200: Envelope[ConversationDetail], 404: ErrorEnvelope},
)
def get_conversation(path: ConversationPath) -> Response:
    """A conversation with its whole history."""
    return envelope(conversations.conversation_detail(path.conversation_id, owner()))


@ai_bp.post(
    "/conversations/<int:conversation_id>/messages",
    responses={200: Envelope[ConversationReply], 404: ErrorEnvelope, **AI_ERRORS},
)
def add_message(path: ConversationPath, body: MessageCreate) -> Response:
    """Add a message to a conversation and get the reply.

    Streamed as server-sent events with `stream: true`.

    The whole history is sent to the model; the turn is stored once the reply is complete.
    """
    who = caller(writes=True)
    if body.stream:
        return event_stream(conversations.stream_message(path.conversation_id, body, who))
    reply, warnings = conversations.send_message(path.conversation_id, body, who)
    return envelope(reply, warnings=warnings)


@recipes_bp.post("/generate", responses={200: Envelope[RecipeOut], **AI_ERRORS})
def create_recipe(body: RecipeRequest) -> Response:
    """A recipe from the ingredients; the model's reply is validated, and re-asked on failure."""
    recipe, warnings = generate_recipe(body, caller().key)
    return envelope(recipe, warnings=warnings)
