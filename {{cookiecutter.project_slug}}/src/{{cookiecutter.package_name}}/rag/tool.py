"""The `search_documents` tool: the model searches the documents of the caller it runs for."""

from __future__ import annotations

from pydantic import BaseModel, Field

from ..ai.tools import ToolArguments, tool
from ..core.identity import Caller
from .models import SearchHit
from .service import search


class SearchDocumentsArgs(ToolArguments):
    query: str = Field(min_length=1, max_length=1000, description="What to look for")
    k: int = Field(default=5, ge=1, le=20, description="The most passages to return")


class FoundPassages(BaseModel):
    results: list[SearchHit]


@tool
def search_documents(args: SearchDocumentsArgs, caller: Caller) -> FoundPassages:
    """Passages of the user's documents that are closest in meaning to the query, best first,
    each with its document's id and title and a score from 0 to 1."""
    return FoundPassages(results=search(args.query, args.k, caller))
