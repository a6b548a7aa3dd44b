"""Conversations: history persisted per owner and replayed to the provider in order.

A turn with tools stores the user's message, each model call's tool calls and their results,
and the final reply, so that a later request replays them in the provider's own format. A
request without tools replays only the text of the history.
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import func
from sqlmodel import col, select

from ..core.errors import NotFound
from ..core.extensions import db
from ..core.identity import Caller
from ..core.models import utcnow
from ..core.responses import EnvelopeWarning
from .base import ChatResponse, Message, ToolCall
from .completion import chat_request, run, toolbox
from .models import (
    Conversation,
    ConversationCreate,
    ConversationDetail,
    ConversationList,
    ConversationMessage,
    ConversationOut,
    ConversationReply,
    MessageCreate,
    MessageOut,
)
from .streaming import open_stream
from .structured import prompt

MAX_HISTORY = 200  # messages replayed to the provider; older ones are left out
TITLE_LENGTH = 60


def create_conversation(data: ConversationCreate, owner: str) -> Conversation:
    conversation = Conversation(
        owner=owner, title=data.title or "New conversation", system_prompt=data.system_prompt
    )
    db.session.add(conversation)
    db.session.commit()
    return conversation


def list_conversations(owner: str) -> ConversationList:
    rows = db.session.exec(
        select(Conversation)
        .where(Conversation.owner == owner)
        .order_by(col(Conversation.updated_at).desc(), col(Conversation.id).desc())
    ).all()
    total = db.session.exec(
        select(func.count()).select_from(Conversation).where(Conversation.owner == owner)
    ).one()
    return ConversationList(items=[ConversationOut.model_validate(r) for r in rows], total=total)


def get_conversation(conversation_id: int, owner: str) -> Conversation:
    conversation = db.session.get(Conversation, conversation_id)
    if conversation is None or conversation.owner != owner:
        raise NotFound(f"Conversation {conversation_id} not found.")
    return conversation


def conversation_detail(conversation_id: int, owner: str) -> ConversationDetail:
    conversation = get_conversation(conversation_id, owner)
    messages = _history(conversation)
    return ConversationDetail(
        **ConversationOut.model_validate(conversation).model_dump(),
        messages=[MessageOut.model_validate(m) for m in messages],
    )


def _history(conversation: Conversation) -> list[ConversationMessage]:
    return list(
        db.session.exec(
            select(ConversationMessage)
            .where(ConversationMessage.conversation_id == conversation.id)
            .order_by(col(ConversationMessage.id).asc())
        ).all()
    )


def _request_messages(conversation: Conversation, content: str, *, tools: bool) -> list[Message]:
    # Empty replies (a turn that ended at max_steps) are left out: providers refuse them.
    history = [m for m in _history(conversation)[-MAX_HISTORY:] if m.content or m.tool_calls]
    messages = [Message("system", conversation.system_prompt or prompt("system"))]
    if tools:
        while history and history[0].role == "tool":  # cut off from its call by the limit
            history.pop(0)
        messages += [_message(m) for m in history]
    else:
        messages += [
            Message(m.role, m.content)  # type: ignore[arg-type]
            for m in history
            if m.role in ("user", "assistant") and m.content
        ]
    messages.append(Message("user", content))
    return messages


def _message(row: ConversationMessage) -> Message:
    calls = tuple(
        ToolCall(call["id"], call["tool"], call["arguments"]) for call in row.tool_calls or []
    )
    return Message(
        row.role,  # type: ignore[arg-type]
        row.content,
        tool_calls=calls,
        tool_call_id=row.tool_call_id,
        is_error=row.is_error,
    )


def _row(conversation_id: int, message: Message) -> ConversationMessage:
    calls = [{"id": c.id, "tool": c.name, "arguments": c.arguments} for c in message.tool_calls]
    return ConversationMessage(
        conversation_id=conversation_id,
        role=message.role,
        content=message.content,
        tool_calls=calls or None,
        tool_call_id=message.tool_call_id,
        is_error=message.is_error,
    )


def _save_turn(
    conversation: Conversation, content: str, reply: str, turns: list[Message]
) -> ConversationMessage:
    """Store the user's message, the tool calls and results, and the reply together: a failed
    call leaves no half turn."""
    assert conversation.id is not None
    rows = [_row(conversation.id, message) for message in (Message("user", content), *turns)]
    assistant = _row(conversation.id, Message("assistant", reply))
    if conversation.title == "New conversation":
        conversation.title = content[:TITLE_LENGTH]
    conversation.updated_at = utcnow()
    db.session.add_all([*rows, assistant, conversation])
    db.session.commit()
    return assistant


def send_message(
    conversation_id: int, data: MessageCreate, caller: Caller
) -> tuple[ConversationReply, list[EnvelopeWarning]]:
    conversation = get_conversation(conversation_id, caller.key)
    request = chat_request(
        _request_messages(conversation, data.content, tools=bool(data.tools)),
        temperature=data.temperature,
        max_tokens=data.max_tokens,
    )
    tools = toolbox(data.tools, caller, data.max_steps)
    result = run(request, caller.key, endpoint="conversation", tools=tools)
    assistant = _save_turn(conversation, data.content, result.data.content, result.turns)
    reply = ConversationReply(
        conversation_id=conversation_id,
        message=MessageOut.model_validate(assistant),
        finish_reason=result.data.finish_reason,
        model=result.data.model,
        usage=result.data.usage,
        steps=result.data.steps,
    )
    return reply, result.warnings


def stream_message(conversation_id: int, data: MessageCreate, caller: Caller) -> Iterator[str]:
    conversation = get_conversation(conversation_id, caller.key)
    request = chat_request(
        _request_messages(conversation, data.content, tools=bool(data.tools)),
        temperature=data.temperature,
        max_tokens=data.max_tokens,
    )

    def save(response: ChatResponse, turns: list[Message]) -> None:
        _save_turn(conversation, data.content, response.content, turns)

    tools = toolbox(data.tools, caller, data.max_steps)
    return open_stream(request, caller.key, endpoint="conversation", on_done=save, tools=tools)
