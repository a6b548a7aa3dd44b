"""`/api/v1/recipes`: the structured-output example: a validated recipe from ingredients."""

from __future__ import annotations

from flask import Response
from flask_openapi3 import APIBlueprint, Tag

from ..models.ai import RecipeOut, RecipeRequest
from ..responses import Envelope, ErrorEnvelope, envelope
from ..services import ai as service
from .ai import AI_ERRORS, caller

recipes_bp = APIBlueprint(
    "recipes",
    __name__,
    url_prefix="/api/v1/recipes",
    abp_tags=[Tag(name="recipes")],
{%- if cookiecutter.use_auth %}
    abp_security=[{"bearer": []}],
    abp_responses={401: ErrorEnvelope, 422: ErrorEnvelope, 429: ErrorEnvelope},
{%- else %}
    abp_responses={422: ErrorEnvelope, 429: ErrorEnvelope},
{%- endif %}
)


@recipes_bp.post("/generate", responses={200: Envelope[RecipeOut], **AI_ERRORS})
def generate(body: RecipeRequest) -> Response:
    """A recipe from the ingredients; the model's reply is validated, and re-asked on failure."""
    recipe, warnings = service.generate_recipe(body, caller())
    return envelope(recipe, warnings=warnings)
