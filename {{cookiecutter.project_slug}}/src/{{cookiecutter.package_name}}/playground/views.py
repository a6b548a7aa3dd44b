"""The page and its two assets, under a strict Content-Security-Policy.

A plain blueprint, not part of the OpenAPI document: it serves files, not API operations.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, abort, send_from_directory

STATIC_DIR = Path(__file__).resolve().parent / "static"
# The only files served, with their exact types (not guessed from the system's MIME table:
# with `nosniff` a module script served under any other type would not run).
ASSETS = {
    "playground.js": "text/javascript",
    "playground.css": "text/css",
}
# The page and its assets load only from this origin; no inline script or style anywhere.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
    ]
)

playground_bp = Blueprint("playground", __name__)


@playground_bp.get("/playground")
def playground_page() -> Response:
    return send_from_directory(STATIC_DIR, "index.html", mimetype="text/html", max_age=0)


@playground_bp.get("/playground/assets/<name>")
def playground_asset(name: str) -> Response:
    if name not in ASSETS:
        abort(404)
    return send_from_directory(STATIC_DIR, name, mimetype=ASSETS[name], max_age=0)


@playground_bp.after_request
def security_headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
