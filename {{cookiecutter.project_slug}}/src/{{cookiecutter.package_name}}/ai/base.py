"""The provider protocol and the typed objects that cross it."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import ModuleType
from typing import Any, Literal, Protocol, TypeVar, cast

MessageRole = Literal["system", "user", "assistant"]  # what API callers may send
Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True)
class ToolSpec:
    """A tool offered to the model: its name, what it does, and the JSON Schema of its arguments."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(frozen=True)
class ToolCall:
    """The model asking for a tool. `arguments` is the JSON text the model wrote, unchecked."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class Message:
    """One message of a conversation.

    An assistant message may ask for `tool_calls` (with or without text); each result comes
    back as a `tool` message naming its call in `tool_call_id`, `is_error` when the call failed.
    """

    role: Role
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    is_error: bool = False


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
        )


@dataclass(frozen=True)
class ChatRequest:
    """One call to a model; `json_output` asks for JSON where the provider can enforce it."""

    messages: tuple[Message, ...]
    model: str
    temperature: float | None = None
    max_tokens: int | None = None
    json_output: bool = False
    json_schema: dict[str, Any] | None = None
    tools: tuple[ToolSpec, ...] = ()


@dataclass(frozen=True)
class ChatResponse:
    """A reply: text, and the tools the model asks for (finish reason `tool_calls`)."""

    content: str
    finish_reason: str
    model: str
    usage: Usage = field(default_factory=Usage)
    tool_calls: tuple[ToolCall, ...] = ()


@dataclass(frozen=True)
class StreamChunk:
    """A piece of a streamed reply: text, and on the last chunks the finish reason and usage.

    Providers assemble the tool calls streamed in pieces and yield them whole, once.
    """

    delta: str = ""
    finish_reason: str | None = None
    usage: Usage | None = None
    model: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()


class ProviderError(Exception):
    """The provider could not give a usable answer. `retryable` failures may succeed if retried."""

    retryable = False

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after
        self.attempts = 1  # set by the retry loop to the number of calls made


class ProviderUnavailableError(ProviderError):
    """Rate limited, overloaded or unreachable."""

    retryable = True


class ProviderTimeoutError(ProviderError):
    """No answer within the timeout."""

    retryable = True


class ProviderBadReplyError(ProviderError):
    """An error status or a reply we cannot use (bad JSON, wrong shape)."""

    def __init__(
        self, message: str, *, retryable: bool = False, retry_after: float | None = None
    ) -> None:
        super().__init__(message, retry_after=retry_after)
        self.retryable = retryable


class Provider(Protocol):
    """What every provider module implements.

    `stream()` sends the request before it returns, so a refused call raises at once (and can be
    retried); the iterator it returns then yields chunks as they arrive. Closing the iterator
    closes the upstream connection.
    """

    name: str

    def complete(self, request: ChatRequest) -> ChatResponse: ...

    def stream(self, request: ChatRequest) -> Iterator[StreamChunk]: ...


Client = TypeVar("Client")
_clients: dict[tuple[Any, ...], Any] = {}
_clients_lock = threading.Lock()


def sdk_client(build: Callable[..., Client], **options: Any) -> Client:
    """The process's one SDK client built by `build(**options)`.

    SDK clients are thread-safe and pool their connections, and building one reads the CA
    bundle for TLS (about 25 ms): every app the process builds with the same settings shares
    it, and so do the provider and the embeddings when they call the same endpoint.
    """
    key = (build, *sorted(options.items()))
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = build(**options)
    return cast(Client, client)


def estimate_tokens(text: str) -> int:
    """A rough count (about four characters a token) for when a provider reports no usage."""
    return max(1, len(text) // 4) if text else 0


def message_tokens(message: Message) -> int:
    """The rough size of a message, its tool calls included."""
    calls = sum(estimate_tokens(call.name + call.arguments) for call in message.tool_calls)
    return estimate_tokens(message.content) + calls


def tool_arguments(call: ToolCall) -> dict[str, Any]:
    """A call's arguments as an object, for providers that send them parsed; `{}` when the model
    wrote something else (the call then got an error result)."""
    try:
        value = json.loads(call.arguments or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


# Replies read as plain JSON, defensively: gateways and compatible servers do not always send
# every field the protocol has.

JSONObject = Mapping[str, object]


def as_object(value: object) -> JSONObject:
    return value if isinstance(value, Mapping) else {}


def as_objects(value: object) -> list[JSONObject]:
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


def as_text(value: object) -> str:
    return value if isinstance(value, str) else ""


def as_count(value: object) -> int:
    return value if isinstance(value, int) else 0


def status_error(status: int, message: str, retry_after: float | None) -> ProviderError:
    """Classify an HTTP error status from any provider."""
    if status in (429, 529):  # rate limited / overloaded
        return ProviderUnavailableError(message, retry_after=retry_after)
    if status == 408:
        return ProviderTimeoutError(message, retry_after=retry_after)
    retryable = status == 409 or status >= 500
    return ProviderBadReplyError(message, retryable=retryable, retry_after=retry_after)


def parse_retry_after(headers: Any) -> float | None:
    """Seconds from `retry-after-ms` or `retry-after` (seconds or an HTTP date)."""
    if headers is None:
        return None
    milliseconds = headers.get("retry-after-ms")
    if milliseconds:
        try:
            return max(0.0, float(milliseconds) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def translate_sdk_error(exc: Exception, sdk: ModuleType) -> ProviderError:
    """An official SDK's exception as the provider protocol's error; anything else is re-raised.

    `sdk` is the SDK's module; the official SDKs name these exceptions alike
    (APITimeoutError, APIConnectionError, APIStatusError, APIError).
    """
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, sdk.APITimeoutError):
        return ProviderTimeoutError("The AI provider did not answer in time.")
    if isinstance(exc, sdk.APIConnectionError):
        return ProviderUnavailableError("The AI provider cannot be reached.")
    if isinstance(exc, sdk.APIStatusError):
        status: int = exc.status_code
        return status_error(
            status,
            f"The AI provider answered HTTP {status}: {exc.message}",
            parse_retry_after(exc.response.headers),
        )
    if isinstance(exc, (ValueError, sdk.APIError)):  # ValueError: malformed JSON
        return ProviderBadReplyError(f"The AI provider's reply could not be read: {exc}")
    raise exc
