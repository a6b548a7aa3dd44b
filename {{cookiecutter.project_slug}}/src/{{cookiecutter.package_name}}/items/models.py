"""Items: the example domain. The table, and the models its endpoints accept and return."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, StringConstraints, field_validator
from pydantic.json_schema import SkipJsonSchema
from sqlalchemy import JSON, Column, DateTime
from sqlmodel import Field, SQLModel

from ..core.models import Page, PageQuery, StrictBody, UTCDateTime, utcnow

ItemStatus = Literal["draft", "published", "archived"]
ITEM_STATUSES: tuple[ItemStatus, ...] = ("draft", "published", "archived")


class Item(SQLModel, table=True):
    __tablename__ = "items"

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=200, index=True)
    description: str | None = Field(default=None, max_length=5000)
    status: str = Field(default="draft", max_length=20, index=True)
    price: float | None = Field(default=None)
    properties: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
{%- if cookiecutter.use_auth %}
    owner_id: int = Field(foreign_key="users.id", index=True)
{%- endif %}
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    deleted_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True, index=True)
    )


class ItemCreate(StrictBody):
    title: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    status: ItemStatus = "draft"
    price: float | None = Field(default=None, ge=0, le=1e12)
    properties: dict[str, Any] = Field(default_factory=dict)


ItemTitle = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class ItemUpdate(StrictBody):
    """Omitted fields keep their value; null clears the nullable ones (description, price).

    title, status and properties must have a value, so null is refused for them (422), and the
    schema does not offer it.
    """

    title: ItemTitle | SkipJsonSchema[None] = None
    description: str | None = Field(default=None, max_length=5000)
    status: ItemStatus | SkipJsonSchema[None] = None
    price: float | None = Field(default=None, ge=0, le=1e12)
    properties: dict[str, Any] | SkipJsonSchema[None] = None

    @field_validator("title", "status", "properties")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:  # only an explicit null gets here: defaults are not validated
            raise ValueError("may be left out, but not null")
        return value


class ItemOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    description: str | None
    status: ItemStatus
    price: float | None
    properties: dict[str, Any]
{%- if cookiecutter.use_auth %}
    owner_id: int
{%- endif %}
    created_at: UTCDateTime
    updated_at: UTCDateTime


class ItemQuery(PageQuery):
    status: ItemStatus | None = None
    search: str | None = Field(default=None, max_length=200)
    sort: Literal["created_at", "updated_at", "title", "price"] = "created_at"
    order: Literal["asc", "desc"] = "desc"


ItemPage = Page[ItemOut]


class ItemStats(BaseModel):
    total: int
    draft: int
    published: int
    archived: int


class ItemPath(BaseModel):
    item_id: int = Field(ge=1, le=2**31 - 1)
