"""The page, its assets and its list of optional modules, under a strict Content-Security-Policy.

A plain blueprint, not part of the OpenAPI document: it serves files, not API operations.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, abort, jsonify, send_from_directory

STATIC_DIR = Path(__file__).resolve().parent / "static"
MAIN_MODULE = "playground.js"
# The only files served: the scripts and stylesheets in static/, with their exact types (not
# guessed from the system's MIME table: with `nosniff` a module script served under any other type
# would not run).
TYPES = {".js": "text/javascript", ".css": "text/css"}
ASSETS = {path.name: TYPES[path.suffix] for path in STATIC_DIR.iterdir() if path.suffix in TYPES}
# The page's optional parts: every module beside the main one, which loads them.
MODULES = sorted(name for name in ASSETS if name.endswith(".js") and name != MAIN_MODULE)
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


@playground_bp.get("/playground/modules")
def playground_modules() -> Response:
    return jsonify(modules=[f"/playground/assets/{name}" for name in MODULES])


@playground_bp.after_request
def security_headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
