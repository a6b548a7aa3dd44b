"""The built-in tools. Add yours here, or in a module of your own imported by `__init__.py`."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, field_validator

from ...core.identity import Caller
from ...items.models import ItemOut, ItemQuery
from ...items.service import list_items
from .registry import ToolArguments, tool


class CurrentTimeArgs(ToolArguments):
    timezone: str = Field(
        default="UTC", max_length=64, description="An IANA time zone name, e.g. Europe/Paris"
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        zone(value)
        return value


def zone(name: str) -> tzinfo:
    if name == "UTC":
        return UTC  # needs no time zone database
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"unknown time zone {name!r}; use an IANA name such as Europe/Paris"
        ) from exc


class CurrentTime(BaseModel):
    iso: str
    timezone: str


@tool
def current_time(args: CurrentTimeArgs) -> CurrentTime:
    """The current date and time (ISO 8601) in a time zone."""
    now = datetime.now(UTC).astimezone(zone(args.timezone))
    return CurrentTime(iso=now.isoformat(timespec="seconds"), timezone=args.timezone)


class SearchItemsArgs(ToolArguments):
    query: str = Field(min_length=1, max_length=200, description="Words to find in items")
    limit: int = Field(default=5, ge=1, le=20, description="The most items to return")


class FoundItems(BaseModel):
    items: list[ItemOut]
    total: int


@tool
def search_items(args: SearchItemsArgs, caller: Caller) -> FoundItems:
    """Items whose title or description contains the query, newest first (only items the user
    may see)."""
    page = list_items(ItemQuery(search=args.query, size=args.limit), caller)
    return FoundItems(items=page.items, total=page.total)
