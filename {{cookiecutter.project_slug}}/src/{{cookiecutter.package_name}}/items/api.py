"""`/api/v1/items`: the example domain."""

from __future__ import annotations

from flask import Response

from ..core.blueprint import api_blueprint
from ..core.identity import current_caller
from ..core.responses import Envelope, ErrorEnvelope, envelope
from . import service
from .models import ItemCreate, ItemOut, ItemPage, ItemPath, ItemQuery, ItemStats, ItemUpdate

items_bp = api_blueprint("items", __name__, writes=True)


@items_bp.get("", responses={200: Envelope[ItemPage]})
def list_items(query: ItemQuery) -> Response:
    """List items, filtered, searched, sorted and paginated."""
    return envelope(service.list_items(query, current_caller()))


@items_bp.post("", responses={201: Envelope[ItemOut]})
def create_item(body: ItemCreate) -> Response:
    """Create an item."""
    item = service.create_item(body, current_caller(writes=True))
    return envelope(ItemOut.model_validate(item), message="Item created.", status=201)


@items_bp.get("/stats", responses={200: Envelope[ItemStats]})
def item_stats() -> Response:
    """Counts by status."""
    return envelope(service.item_stats(current_caller()))


@items_bp.get("/<int:item_id>", responses={200: Envelope[ItemOut], 404: ErrorEnvelope})
def get_item(path: ItemPath) -> Response:
    """One item."""
    item = service.get_item(path.item_id, current_caller())
    return envelope(ItemOut.model_validate(item))


@items_bp.patch(
    "/<int:item_id>",
    responses={200: Envelope[ItemOut], 404: ErrorEnvelope},
)
def update_item(path: ItemPath, body: ItemUpdate) -> Response:
    """Change some fields of an item."""
    item = service.update_item(path.item_id, body, current_caller(writes=True))
    return envelope(ItemOut.model_validate(item), message="Item updated.")


@items_bp.delete("/<int:item_id>", responses={200: Envelope[None], 404: ErrorEnvelope})
def delete_item(path: ItemPath) -> Response:
    """Delete an item (soft: it disappears from every query)."""
    service.delete_item(path.item_id, current_caller(writes=True))
    return envelope(None, message="Item deleted.")
