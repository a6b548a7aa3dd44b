"""The playground: a page at `/playground` for trying the API in a browser, served by the app.

One HTML page, one ES module and one stylesheet (`static/`), with no build step and nothing from a
CDN; the page talks only to the public `/api/v1` API, like any other client. It exists when
APP_ENV=development or PLAYGROUND_ENABLED=true; otherwise the route is not registered at all and
`/playground` is the usual 404 envelope.
"""

from __future__ import annotations

from flask_openapi3 import OpenAPI

from ..core.settings import init_feature_settings
from .settings import PlaygroundSettings
from .views import playground_bp


def init_app(app: OpenAPI) -> None:
    settings = init_feature_settings(app, PlaygroundSettings)
    if settings.playground_served:
        app.register_blueprint(playground_bp)
