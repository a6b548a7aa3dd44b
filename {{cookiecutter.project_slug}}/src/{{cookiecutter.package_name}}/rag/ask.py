"""Grounded answers (`POST /api/v1/ai/ask`): retrieve the caller's most relevant chunks, ask the
model with them as numbered sources (`ai/prompts/ask.txt`), and cite them."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

from ..ai.base import Message
from ..ai.completion import chat_request, run
from ..ai.streaming import open_stream, sse
from ..ai.structured import prompt
from ..core.identity import Caller
from ..core.responses import EnvelopeWarning
from .models import AskOut, AskRequest, Citation, SearchHit
from .service import search
from .settings import rag_settings

NO_CONTEXT = EnvelopeWarning(
    code="no_context",
    message="No document is relevant to the question: the answer is not grounded in any source.",
)


@dataclass(frozen=True)
class Grounding:
    messages: list[Message]
    citations: list[Citation]
    warnings: list[EnvelopeWarning]


def ground(question: str, k: int, caller: Caller) -> Grounding:
    """The prompt for `question` with the relevant chunks as numbered sources."""
    threshold = rag_settings().rag_min_score
    hits = [hit for hit in search(question, k, caller) if hit.score >= threshold]
    sources = "\n\n".join(source(number, hit) for number, hit in enumerate(hits, 1))
    text = prompt("ask").format(sources=sources or "(none)", question=question.strip())
    return Grounding(
        messages=[Message("user", text)],
        citations=[
            Citation(
                document_id=hit.document_id,
                title=hit.title,
                chunk_index=hit.chunk_index,
                score=hit.score,
            )
            for hit in hits
        ],
        warnings=[] if hits else [NO_CONTEXT],
    )


def source(number: int, hit: SearchHit) -> str:
    return f"[{number}] {hit.title} (part {hit.chunk_index + 1})\n{hit.text}"


def ask(body: AskRequest, caller: Caller) -> tuple[AskOut, list[EnvelopeWarning]]:
    grounding = ground(body.question, body.k, caller)
    result = run(chat_request(grounding.messages), caller.key, endpoint="ask")
    data = AskOut(**dict(result.data), citations=grounding.citations)
    return data, grounding.warnings + result.warnings


def stream_ask(body: AskRequest, caller: Caller) -> Iterator[str]:
    """The answer as server-sent events: `citations` {citations, warnings} first, then the
    completion's `delta`s and `done` (or `error`)."""
    grounding = ground(body.question, body.k, caller)
    events = open_stream(chat_request(grounding.messages), caller.key, endpoint="ask")
    first = sse(
        "citations",
        {
            "citations": [citation.model_dump() for citation in grounding.citations],
            "warnings": [warning.model_dump() for warning in grounding.warnings],
        },
    )
    return itertools.chain([first], events)
