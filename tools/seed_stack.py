"""The reference stack of tools/bench.py: the seed's way of serving an authenticated list.

Flask + Flask-SQLAlchemy + marshmallow + flask-jwt-extended, with the per-request work the seed
did: the token's `jti` looked up in a blocklist table, the user loaded from the database (both
by flask-jwt-extended's loaders), then Flask-SQLAlchemy's `paginate` (a count query and a page
query) and a marshmallow schema dumping the rows. Its tables are its own (`seed_*`), beside the
project's in the bench database.

    gunicorn -c <project>/gunicorn.conf.py "seed_stack:create_app()"  # DATABASE_URL, JWT_SECRET_KEY
    python seed_stack.py seed 1000     -> prints an access token of the user owning 1000 items
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from typing import Any

from flask import Flask, jsonify, request
from flask_jwt_extended import JWTManager, create_access_token, current_user, jwt_required
from flask_sqlalchemy import SQLAlchemy
from marshmallow import Schema, fields

db = SQLAlchemy()
jwt = JWTManager()


class User(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "seed_users"
    id = db.Column(db.Integer, primary_key=True)
    email = db.Column(db.String(255), unique=True, nullable=False)
    role = db.Column(db.String(20), nullable=False, default="user")
    is_active = db.Column(db.Boolean, nullable=False, default=True)


class TokenBlocklist(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "seed_token_blocklist"
    id = db.Column(db.Integer, primary_key=True)
    jti = db.Column(db.String(64), nullable=False, index=True)
    created_at = db.Column(db.DateTime(timezone=True), nullable=False)


class Item(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "seed_items"
    id = db.Column(db.Integer, primary_key=True)
    title = db.Column(db.String(200), nullable=False, index=True)
    description = db.Column(db.String(5000))
    status = db.Column(db.String(20), nullable=False, default="draft", index=True)
    price = db.Column(db.Float)
    properties = db.Column(db.JSON, nullable=False, default=dict)
    owner_id = db.Column(db.Integer, db.ForeignKey("seed_users.id"), nullable=False, index=True)
    created_at = db.Column(db.DateTime(timezone=True), nullable=False)
    updated_at = db.Column(db.DateTime(timezone=True), nullable=False)
    deleted_at = db.Column(db.DateTime(timezone=True), index=True)


class ItemSchema(Schema):
    id = fields.Integer()
    title = fields.String()
    description = fields.String(allow_none=True)
    status = fields.String()
    price = fields.Float(allow_none=True)
    properties = fields.Dict()
    owner_id = fields.Integer()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class PageArgs(Schema):
    page = fields.Integer(load_default=1, validate=lambda n: n >= 1)
    per_page = fields.Integer(load_default=20, validate=lambda n: 1 <= n <= 100)


def create_app() -> Flask:
    app = Flask(__name__)
    app.config.update(
        SQLALCHEMY_DATABASE_URI=os.environ["DATABASE_URL"],
        SQLALCHEMY_ENGINE_OPTIONS={"pool_pre_ping": True},
        JWT_SECRET_KEY=os.environ["JWT_SECRET_KEY"],
    )
    db.init_app(app)
    jwt.init_app(app)

    @jwt.token_in_blocklist_loader
    def _revoked(_header: dict[str, Any], payload: dict[str, Any]) -> bool:
        return (
            db.session.query(TokenBlocklist.id).filter_by(jti=payload["jti"]).scalar() is not None
        )

    @jwt.user_lookup_loader
    def _user(_header: dict[str, Any], payload: dict[str, Any]) -> User | None:
        user = db.session.get(User, int(payload["sub"]))
        return user if user is not None and user.is_active else None

    @app.get("/health/live")
    def live() -> Any:
        return jsonify({"status": "ok"})

    @app.get("/api/v1/items")
    @jwt_required()
    def list_items() -> Any:
        args = PageArgs().load(request.args)
        query = Item.query.filter_by(owner_id=current_user.id, deleted_at=None).order_by(
            Item.created_at.desc(), Item.id
        )
        page = query.paginate(page=args["page"], per_page=args["per_page"], error_out=False)
        return jsonify(
            {
                "success": True,
                "message": None,
                "data": {
                    "items": ItemSchema(many=True).dump(page.items),
                    "total": page.total,
                    "page": page.page,
                    "size": page.per_page,
                    "has_more": page.has_next,
                },
                "warnings": [],
            }
        )

    return app


def seed(count: int) -> str:
    app = create_app()
    with app.app_context():
        db.drop_all()
        db.create_all()
        user = User(email="seed@example.com", role="user")
        db.session.add(user)
        db.session.flush()
        now = datetime.now(UTC)
        statuses = ("draft", "published", "archived")
        db.session.add_all(
            Item(
                title=f"Item {i}",
                description="Seeded for the benchmark.",
                status=statuses[i % 3],
                price=float(i),
                properties={"n": i},
                owner_id=user.id,
                created_at=now,
                updated_at=now,
            )
            for i in range(count)
        )
        db.session.commit()
        return str(create_access_token(identity=str(user.id)))


if __name__ == "__main__":
    print(seed(int(sys.argv[2])) if sys.argv[1:2] == ["seed"] else __doc__)
