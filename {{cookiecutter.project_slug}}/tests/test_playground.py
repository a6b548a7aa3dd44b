"""The playground page: served only when allowed, with a strict Content-Security-Policy, no inline
script or style, and its assets under their exact types."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from flask_openapi3 import OpenAPI

from {{ cookiecutter.package_name }}.playground.views import CONTENT_SECURITY_POLICY, STATIC_DIR

# On top of the test settings (strong secrets): a configured provider, as production requires.
PRODUCTION = {
    "app_env": "production",
    "ai_api_key": "key",
    "ai_base_url": "https://example.invalid",
}


@pytest.mark.parametrize("settings", [{}, PRODUCTION], ids=["testing", "production"])
def test_not_served_without_the_flag(
    make_app: Callable[..., OpenAPI], settings: dict[str, str]
) -> None:
    client = make_app(**settings, playground_enabled=False).test_client()

    for path in ("/playground", "/playground/assets/playground.js"):
        response = client.get(path)

        assert response.status_code == 404
        assert response.json == {
            "success": False,
            "message": "Resource not found.",
            "code": "not_found",
            "details": None,
        }


@pytest.mark.parametrize(
    "settings",
    [{"playground_enabled": True}, {**PRODUCTION, "playground_enabled": True}],
    ids=["testing", "production"],
)
def test_served_with_the_flag(make_app: Callable[..., OpenAPI], settings: dict[str, str]) -> None:
    response = make_app(**settings).test_client().get("/playground")

    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_served_in_development(make_app: Callable[..., OpenAPI]) -> None:
    response = make_app(app_env="development").test_client().get("/playground")

    assert response.status_code == 200


def test_policy_is_strict() -> None:
    directives = dict(part.split(" ", 1) for part in CONTENT_SECURITY_POLICY.split("; "))

    assert directives == {
        "default-src": "'self'",
        "script-src": "'self'",
        "style-src": "'self'",
        "img-src": "'self' data:",
        "connect-src": "'self'",
        "frame-ancestors": "'none'",
        "base-uri": "'none'",
        "form-action": "'self'",
    }


def test_page_has_no_inline_script_or_style(make_app: Callable[..., OpenAPI]) -> None:
    page = make_app(playground_enabled=True).test_client().get("/playground").text

    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", page, re.DOTALL | re.IGNORECASE)
    assert scripts, "the page loads its module"
    for attributes, body in scripts:
        assert 'src="/playground/assets/' in attributes
        assert body.strip() == ""
    assert not re.search(r"<style\b", page, re.IGNORECASE)
    assert not re.search(r"\sstyle\s*=", page, re.IGNORECASE)
    assert not re.search(r"\son[a-z]+\s*=", page, re.IGNORECASE)  # no inline event handlers
    assert not re.search(r"https?://", page)  # nothing from another origin


@pytest.mark.parametrize(
    ("name", "mimetype"),
    [("playground.js", "text/javascript"), ("playground.css", "text/css")],
)
def test_assets_have_their_types(
    make_app: Callable[..., OpenAPI], name: str, mimetype: str
) -> None:
    response = make_app(playground_enabled=True).test_client().get(f"/playground/assets/{name}")

    assert response.status_code == 200
    assert response.mimetype == mimetype
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert len(response.data) > 100


def test_only_known_assets_are_served(make_app: Callable[..., OpenAPI]) -> None:
    client = make_app(playground_enabled=True).test_client()

    for path in ("index.html", "../settings.py", "..%2F__init__.py", "missing.js"):
        response = client.get(f"/playground/assets/{path}")

        assert response.status_code == 404
        assert response.json["code"] == "not_found"  # type: ignore[index]


def test_page_uses_only_the_public_api() -> None:
    """The scripts call /api/v1 and read /openapi.json and the list of modules; nothing else."""
    scripts = [path.read_text(encoding="utf-8") for path in sorted(STATIC_DIR.glob("*.js"))]
    fetched = [t.strip() for script in scripts for t in re.findall(r"fetch\(\s*([^,)]+)", script)]

    assert fetched
    for target in fetched:
        local = target in {'"/openapi.json"', '"/playground/modules"'}
        assert local or re.match(r"(page\.)?API \+ ", target), target
    assert 'const API = "/api/v1";' in (STATIC_DIR / "playground.js").read_text(encoding="utf-8")
    for script in scripts:
        assert "localStorage" not in script
        assert "sessionStorage" not in script
        assert "innerHTML" not in script


def test_modules_listed_are_served(make_app: Callable[..., OpenAPI]) -> None:
    """The page loads every module the server lists: each one beside playground.js in static/."""
    client = make_app(playground_enabled=True).test_client()
    modules = client.get("/playground/modules").json["modules"]  # type: ignore[index]

    expected = {path.name for path in STATIC_DIR.glob("*.js")} - {"playground.js"}
    assert {url.rsplit("/", 1)[1] for url in modules} == expected
    for url in modules:
        response = client.get(url)
        assert response.status_code == 200
        assert response.mimetype == "text/javascript"
