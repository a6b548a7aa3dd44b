"""`flask db seed`: sample items to try the API with."""

from __future__ import annotations
{% if cookiecutter.use_auth %}
import secrets
{%- endif %}
from typing import Any

import click
from flask.cli import with_appcontext
from sqlmodel import func, select
{% if cookiecutter.use_auth %}
from ..auth.service import create_user, find_user
{%- endif %}
from ..core.cli import one_line_errors
from ..core.extensions import db
from .models import Item

SAMPLE_ITEMS: list[dict[str, Any]] = [
    {"title": "Getting started", "description": "A first published item.", "status": "published"},
    {"title": "Draft idea", "description": "Not published yet.", "status": "draft", "price": 9.5},
    {"title": "Old news", "description": "Kept for the record.", "status": "archived"},
]
{%- if cookiecutter.use_auth %}


@click.command("seed")
@with_appcontext
@click.option("--email", default="demo@example.com", show_default=True, help="Owner of the items.")
@click.option("--password", default=None, help="Password of a new demo user (default: random).")
@one_line_errors
def db_seed(email: str, password: str | None) -> None:
    """Add sample items, owned by EMAIL (created when missing); nothing when already there."""
    session = db.session
    owner = find_user(email)
    if owner is None:
        password = password or secrets.token_urlsafe(12)
        owner = create_user(email, password, "Demo User")
        click.echo(f"Created user {owner.email} with password {password}")
    existing = select(func.count()).select_from(Item).where(Item.owner_id == owner.id)
    if session.exec(existing).one():
        click.echo("Sample items already exist; nothing to do.")
        return
    owned = ({**sample, "owner_id": owner.id} for sample in SAMPLE_ITEMS)
    session.add_all(Item.model_validate(sample) for sample in owned)
    session.commit()
    click.echo(f"Added {len(SAMPLE_ITEMS)} sample items.")
{%- else %}


@click.command("seed")
@with_appcontext
@one_line_errors
def db_seed() -> None:
    """Add sample items (nothing when there are items already)."""
    session = db.session
    if session.exec(select(func.count()).select_from(Item)).one():
        click.echo("Items already exist; nothing to do.")
        return
    session.add_all(Item.model_validate(sample) for sample in SAMPLE_ITEMS)
    session.commit()
    click.echo(f"Added {len(SAMPLE_ITEMS)} sample items.")
{%- endif %}
