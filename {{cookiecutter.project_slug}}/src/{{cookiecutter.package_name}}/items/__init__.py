"""Items: the example domain (`/api/v1/items`, `flask db seed`). Replace it with your own."""

from __future__ import annotations

from flask_openapi3 import OpenAPI

from ..core.cli import db_cli
from .api import items_bp
from .cli import db_seed


def init_app(app: OpenAPI) -> None:
    app.register_api(items_bp)
    db_cli.add_command(db_seed)
