"""`/api/v1/recipes`: the structured-output example: a validated recipe from ingredients."""

from __future__ import annotations

from flask import Response

from ..models.ai import RecipeOut, RecipeRequest
from ..responses import Envelope, envelope
from ..services import ai as service
from .ai import AI_ERRORS, caller
from .blueprint import api_blueprint

recipes_bp = api_blueprint("recipes", __name__)


@recipes_bp.post("/generate", responses={200: Envelope[RecipeOut], **AI_ERRORS})
def generate(body: RecipeRequest) -> Response:
    """A recipe from the ingredients; the model's reply is validated, and re-asked on failure."""
    recipe, warnings = service.generate_recipe(body, caller())
    return envelope(recipe, warnings=warnings)
