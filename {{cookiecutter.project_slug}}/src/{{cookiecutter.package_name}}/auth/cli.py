"""`flask users`: create users (the only way to make the first admin), change roles, list."""

from __future__ import annotations

import re

import click
from flask.cli import AppGroup
from sqlmodel import col, select

from ..core.cli import one_line_errors
from ..core.extensions import db
from .models import EMAIL_PATTERN, PASSWORD_MIN_LENGTH, ROLES, User
from .service import change_role, create_user, find_user

users_cli = AppGroup("users", help="Create users and manage roles.")


@users_cli.command("create")
@click.option("--email", required=True)
@click.option(
    "--password",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    help="At least 8 characters (asked for, hidden, when left out).",
)
@click.option("--full-name", required=True)
@click.option("--role", type=click.Choice(ROLES), default="user", show_default=True)
@one_line_errors
def users_create(email: str, password: str, full_name: str, role: str) -> None:
    """Create a user (the only way to make the first admin)."""
    if not re.match(EMAIL_PATTERN, email):
        raise click.ClickException(f"{email!r} is not an email address")
    if len(password) < PASSWORD_MIN_LENGTH:
        raise click.ClickException(f"the password needs {PASSWORD_MIN_LENGTH} characters or more")
    user = create_user(email, password, full_name, role=role)  # type: ignore[arg-type]
    click.echo(f"Created {user.role} {user.email} (id {user.id}).")


@users_cli.command("change-role")
@click.argument("email")
@click.option("--role", type=click.Choice(ROLES), required=True)
@one_line_errors
def users_change_role(email: str, role: str) -> None:
    """Give the user EMAIL another role (applies to their next request)."""
    user = find_user(email)
    if user is None:
        raise click.ClickException(f"no user with email {email}")
    change_role(user, role)  # type: ignore[arg-type]
    click.echo(f"{user.email} is now {role}.")


@users_cli.command("list")
@one_line_errors
def users_list() -> None:
    """Every user: id, email, role, active."""
    users = db.session.exec(select(User).order_by(col(User.id))).all()
    if not users:
        click.echo("No users.")
    for user in users:
        state = "active" if user.is_active else "disabled"
        click.echo(f"{user.id}\t{user.email}\t{user.role}\t{state}\t{user.full_name}")
