"""The AI domain: usage accounting, daily budgets, conversations, and the models the AI and recipe
endpoints accept and return."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any, Literal

from jsonschema.exceptions import SchemaError
from pydantic import BaseModel, ConfigDict, field_validator
from sqlalchemy import JSON, BigInteger, Boolean, Column, DateTime, ForeignKey, Integer, Text, false
from sqlmodel import Field, SQLModel

from ..core.models import StrictBody, UTCDateTime, utcnow
from .base import MessageRole, Role
from .structured import check_schema
from .tools import unknown_tools

# -- tables ------------------------------------------------------------------------------------


class AIUsage(SQLModel, table=True):
    """One AI call: who, what it cost, how long it took, how it ended."""

    __tablename__ = "ai_usage"

    id: int | None = Field(default=None, primary_key=True)
    owner: str = Field(max_length=100, index=True)  # "user:<id>" or "client:<address>"
    request_id: str | None = Field(default=None, max_length=100, unique=True, index=True)
    endpoint: str = Field(max_length=50)
    provider: str = Field(max_length=30)
    model: str = Field(max_length=100)
    status: str = Field(max_length=30)  # "ok" or the error code
    cached: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    latency_ms: float = 0.0
    created_at: datetime = Field(
        default_factory=utcnow,
        sa_column=Column(DateTime(timezone=True), nullable=False, index=True),
    )


class AIDailyUsage(SQLModel, table=True):
    """Tokens per owner and UTC day, and the reservations of the calls in flight, so that
    concurrent calls cannot all pass the budget check at once.

    Reservations are kept per lease period (`ai/usage.py`): `reserved` those made in period
    `lease`, `reserved_before` those of the period before. Older ones no longer count, so a
    reservation whose worker died before settling it stops holding the budget."""

    __tablename__ = "ai_daily_usage"

    owner: str = Field(max_length=100, primary_key=True)
    day: date = Field(primary_key=True)
    # 64-bit: a budget may allow more tokens a day than a 32-bit column holds.
    tokens: int = Field(default=0, sa_type=BigInteger)
    reserved: int = Field(default=0, sa_type=BigInteger)
    reserved_before: int = Field(default=0, sa_type=BigInteger)
    lease: int = Field(default=0, sa_type=BigInteger)
    requests: int = 0


class Conversation(SQLModel, table=True):
    __tablename__ = "ai_conversations"

    id: int | None = Field(default=None, primary_key=True)
    owner: str = Field(max_length=100, index=True)
    title: str = Field(max_length=200)
    system_prompt: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )


class ConversationMessage(SQLModel, table=True):
    __tablename__ = "ai_conversation_messages"

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(
        sa_column=Column(
            Integer,
            ForeignKey("ai_conversations.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        )
    )
    role: str = Field(max_length=20)
    content: str = Field(sa_column=Column(Text, nullable=False))
    # An assistant message asking for tools: [{id, tool, arguments (the model's JSON text)}];
    # a "tool" message is the result of the call `tool_call_id` (`is_error` when it failed).
    tool_calls: list[dict[str, str]] | None = Field(
        default=None, sa_column=Column(JSON, nullable=True)
    )
    tool_call_id: str | None = Field(default=None, max_length=100)
    is_error: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default=false())
    )
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )


# -- request bodies ----------------------------------------------------------------------------

DEFAULT_MAX_STEPS = 5  # model calls of one request's tool loop


class ChatMessage(StrictBody):
    role: MessageRole
    content: str = Field(min_length=1, max_length=100_000)


class ToolOptions(StrictBody):
    """The tools a request offers the model, and how many model calls the loop may make."""

    tools: list[str] | None = Field(
        default=None,
        max_length=20,
        description="Names of tools the model may call (`GET /api/v1/ai/tools`).",
    )
    max_steps: int = Field(
        default=DEFAULT_MAX_STEPS,
        ge=1,
        le=10,
        description="The most model calls of the tool loop (with `tools`).",
    )

    @field_validator("tools")
    @classmethod
    def _known_tools(cls, value: list[str] | None) -> list[str] | None:
        unknown = unknown_tools(value or [])
        if unknown:
            raise ValueError(f"unknown tool(s): {', '.join(unknown)}; see GET /api/v1/ai/tools")
        return value


class CompletionRequest(ToolOptions):
    """The body of `/ai/complete`, `/ai/stream` (and of background AI jobs)."""

    messages: list[ChatMessage] = Field(min_length=1, max_length=200)
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1, le=32_000)
    response_schema: dict[str, Any] | None = Field(
        default=None, description="A JSON Schema the reply must satisfy; the reply is parsed."
    )

    @field_validator("response_schema")
    @classmethod
    def _valid_schema(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            try:
                check_schema(value)
            except SchemaError as exc:
                raise ValueError(f"not a valid JSON Schema: {exc.message}") from exc
        return value


class RecipeRequest(StrictBody):
    ingredients: list[str] = Field(min_length=1, max_length=50)
    dietary_restrictions: list[str] = Field(default_factory=list, max_length=20)
    cuisine_type: str | None = Field(default=None, min_length=1, max_length=100)
    cooking_time_max: int | None = Field(default=None, ge=1, le=24 * 60, description="minutes")

    @field_validator("ingredients", "dietary_restrictions")
    @classmethod
    def _non_empty_items(cls, value: list[str]) -> list[str]:
        if any(not item.strip() or len(item) > 200 for item in value):
            raise ValueError("items must be non-empty strings of at most 200 characters")
        return value


class ConversationCreate(StrictBody):
    title: str | None = Field(default=None, min_length=1, max_length=200)
    system_prompt: str | None = Field(default=None, min_length=1, max_length=20_000)


class MessageCreate(ToolOptions):
    content: str = Field(min_length=1, max_length=100_000)
    stream: bool = False
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1, le=32_000)


class ConversationPath(BaseModel):
    conversation_id: int = Field(ge=1, le=2**31 - 1)


# -- responses ---------------------------------------------------------------------------------


class TokenUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ToolStep(BaseModel):
    """One tool call of the loop: `result`, or the `error` the model was told."""

    id: str
    tool: str
    arguments: Any = Field(description="The arguments (the model's text when not JSON).")
    result: Any | None = None
    error: str | None = None
    duration_ms: float


class CompletionOut(BaseModel):
    content: str
    role: Literal["assistant"] = "assistant"
    finish_reason: str
    model: str
    usage: TokenUsage
    parsed: Any | None = None
    cached: bool = False
    steps: list[ToolStep] = Field(default_factory=list)


class ToolOut(BaseModel):
    name: str
    description: str
    parameters: dict[str, Any] = Field(description="The JSON Schema of the tool's arguments.")


class UsageSummary(BaseModel):
    total_requests: int
    total_tokens: int
    today_tokens: int
    budget: int = Field(description="tokens per UTC day; 0 means unlimited")
    remaining: int | None


class Ingredient(BaseModel):
    model_config = ConfigDict(extra="forbid")

    item: str
    amount: str
    unit: str


class Recipe(BaseModel):
    """Exactly what the model must return for `/recipes/generate`."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1)
    ingredients: list[Ingredient] = Field(min_length=1)
    instructions: list[str] = Field(min_length=1)
    metadata: dict[str, str]


class RecipeOut(BaseModel):
    recipe: Recipe
    confidence_score: float = Field(ge=0, le=1)


class ToolCallOut(BaseModel):
    id: str
    tool: str
    arguments: Any = Field(description="The arguments (the model's text when not JSON).")

    @field_validator("arguments", mode="before")
    @classmethod
    def _parsed(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                return value
        return value


class MessageOut(BaseModel):
    """A message of the history; `tool` messages hold the result of the call `tool_call_id`."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    role: Role
    content: str
    tool_calls: list[ToolCallOut] | None = None
    tool_call_id: str | None = None
    created_at: UTCDateTime


class ConversationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    system_prompt: str | None
    created_at: UTCDateTime
    updated_at: UTCDateTime


class ConversationDetail(ConversationOut):
    messages: list[MessageOut]


class ConversationList(BaseModel):
    items: list[ConversationOut]
    total: int


class ConversationReply(BaseModel):
    conversation_id: int
    message: MessageOut
    finish_reason: str
    model: str
    usage: TokenUsage
    steps: list[ToolStep] = Field(default_factory=list)
