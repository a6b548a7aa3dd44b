"""`/api/v1/items`: the example domain."""

from __future__ import annotations

from flask import Response

from ..models.item import ItemCreate, ItemOut, ItemPage, ItemPath, ItemQuery, ItemStats, ItemUpdate
from ..responses import Envelope, ErrorEnvelope, envelope
from ..services import items as service
{%- if cookiecutter.use_auth %}
from ..services.auth import current_user, current_writer
from .blueprint import WRITE_ERRORS, api_blueprint
{%- else %}
from .blueprint import api_blueprint
{%- endif %}

items_bp = api_blueprint("items", __name__{% if cookiecutter.use_auth %}, errors=WRITE_ERRORS{% endif %})


@items_bp.get("", responses={200: Envelope[ItemPage]})
def list_items(query: ItemQuery) -> Response:
    """List items, filtered, searched, sorted and paginated."""
    return envelope(service.list_items(query{% if cookiecutter.use_auth %}, current_user(){% endif %}))


@items_bp.post("", responses={201: Envelope[ItemOut]})
def create_item(body: ItemCreate) -> Response:
    """Create an item."""
    item = service.create_item(body{% if cookiecutter.use_auth %}, current_writer(){% endif %})
    return envelope(ItemOut.model_validate(item), message="Item created.", status=201)


@items_bp.get("/stats", responses={200: Envelope[ItemStats]})
def item_stats() -> Response:
    """Counts by status."""
    return envelope(service.item_stats({% if cookiecutter.use_auth %}current_user(){% endif %}))


@items_bp.get("/<int:item_id>", responses={200: Envelope[ItemOut], 404: ErrorEnvelope})
def get_item(path: ItemPath) -> Response:
    """One item."""
    item = service.get_item(path.item_id{% if cookiecutter.use_auth %}, current_user(){% endif %})
    return envelope(ItemOut.model_validate(item))


@items_bp.patch("/<int:item_id>", responses={200: Envelope[ItemOut], 404: ErrorEnvelope})
def update_item(path: ItemPath, body: ItemUpdate) -> Response:
    """Change some fields of an item."""
    item = service.update_item(path.item_id, body{% if cookiecutter.use_auth %}, current_writer(){% endif %})
    return envelope(ItemOut.model_validate(item), message="Item updated.")


@items_bp.delete("/<int:item_id>", responses={200: Envelope[None], 404: ErrorEnvelope})
def delete_item(path: ItemPath) -> Response:
    """Delete an item (soft: it disappears from every query)."""
    service.delete_item(path.item_id{% if cookiecutter.use_auth %}, current_writer(){% endif %})
    return envelope(None, message="Item deleted.")
