"""The structured-output example: a validated recipe from a list of ingredients."""

from __future__ import annotations

from ..core.responses import EnvelopeWarning
from .base import Message
from .completion import CompletionResult, chat_request, run
from .models import Recipe, RecipeOut, RecipeRequest
from .structured import prompt


def generate_recipe(body: RecipeRequest, owner: str) -> tuple[RecipeOut, list[EnvelopeWarning]]:
    """A validated recipe from the ingredients; re-asked like any structured output."""
    user_prompt = prompt("recipe").format(
        ingredients=", ".join(body.ingredients),
        dietary_restrictions=", ".join(body.dietary_restrictions) or "none",
        cuisine_type=body.cuisine_type or "any",
        cooking_time_max=f"{body.cooking_time_max} minutes" if body.cooking_time_max else "any",
    )
    request = chat_request(
        [Message("system", prompt("system")), Message("user", user_prompt)], temperature=0.7
    )
    result = run(request, owner, endpoint="recipe", schema=Recipe.model_json_schema(), model=Recipe)
    recipe = Recipe.model_validate(result.data.parsed)
    return RecipeOut(
        recipe=recipe, confidence_score=confidence(body, recipe, result)
    ), result.warnings


def confidence(body: RecipeRequest, recipe: Recipe, result: CompletionResult) -> float:
    """How well the recipe answers the request: the share of the asked-for ingredients it uses,
    less a tenth if it needed retries or re-asks and a quarter if it was cut off."""
    used = " ".join(i.item.lower() for i in recipe.ingredients)
    covered = sum(1 for wanted in body.ingredients if wanted.strip().lower() in used)
    score = covered / len(body.ingredients)
    score -= 0.1 * sum(1 for w in result.warnings if w.code == "retried")
    if result.data.finish_reason == "length":
        score -= 0.25
    return round(min(1.0, max(0.0, score)), 2)
