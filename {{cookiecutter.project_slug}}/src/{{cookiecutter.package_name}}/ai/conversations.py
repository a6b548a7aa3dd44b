"""Conversations: history persisted per owner and replayed to the provider in order."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import func
from sqlmodel import col, select

from ..core.errors import NotFound
from ..core.extensions import db
from ..core.models import utcnow
from ..core.responses import EnvelopeWarning
from .base import ChatResponse, Message
from .completion import chat_request, run
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


def _request_messages(conversation: Conversation, content: str) -> list[Message]:
    history = _history(conversation)[-MAX_HISTORY:]
    messages = [Message("system", conversation.system_prompt or prompt("system"))]
    messages += [Message(m.role, m.content) for m in history if m.role in ("user", "assistant")]  # type: ignore[arg-type]
    messages.append(Message("user", content))
    return messages


def _save_turn(conversation: Conversation, content: str, reply: str) -> ConversationMessage:
    """Store the user's message and the reply together: a failed call leaves no half turn."""
    assert conversation.id is not None
    user = ConversationMessage(conversation_id=conversation.id, role="user", content=content)
    assistant = ConversationMessage(
        conversation_id=conversation.id, role="assistant", content=reply
    )
    if conversation.title == "New conversation":
        conversation.title = content[:TITLE_LENGTH]
    conversation.updated_at = utcnow()
    db.session.add_all([user, assistant, conversation])
    db.session.commit()
    return assistant


def send_message(
    conversation_id: int, data: MessageCreate, owner: str
) -> tuple[ConversationReply, list[EnvelopeWarning]]:
    conversation = get_conversation(conversation_id, owner)
    request = chat_request(
        _request_messages(conversation, data.content),
        temperature=data.temperature,
        max_tokens=data.max_tokens,
    )
    result = run(request, owner, endpoint="conversation")
    assistant = _save_turn(conversation, data.content, result.data.content)
    reply = ConversationReply(
        conversation_id=conversation_id,
        message=MessageOut.model_validate(assistant),
        finish_reason=result.data.finish_reason,
        model=result.data.model,
        usage=result.data.usage,
    )
    return reply, result.warnings


def stream_message(conversation_id: int, data: MessageCreate, owner: str) -> Iterator[str]:
    conversation = get_conversation(conversation_id, owner)
    request = chat_request(
        _request_messages(conversation, data.content),
        temperature=data.temperature,
        max_tokens=data.max_tokens,
    )

    def save(response: ChatResponse) -> None:
        _save_turn(conversation, data.content, response.content)

    return open_stream(request, owner, endpoint="conversation", on_done=save)
