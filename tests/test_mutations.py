"""The mutations of `nox -s mutate` (tests/mutations.py) still apply to the default bake, and one
whose target is gone says so instead of testing nothing. The session itself runs the project's
suite once per mutation, too long for every CI run; this keeps the list from going stale."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mutations import MUTATIONS, MutationError, apply_mutation, mutated_source, mutation

SOURCE = """
class Reply:
    def total(self, usage: dict[str, int]) -> int:
        return sum(
            usage[key]
            for key in ("prompt", "completion")
        )
"""


def test_every_mutation_applies_to_the_default_project(cookies: Any) -> None:
    result = cookies.bake(extra_context={"use_rag": True})  # as tools/mutate.py bakes it
    assert result.exit_code == 0, result.exception
    project = Path(result.project_path)
    names = [item.name for item in MUTATIONS]
    assert len(set(names)) == len(names)
    for item in MUTATIONS:
        assert mutated_source(project, "llm_service", item) != (
            project / "src" / "llm_service" / item.module
        ).read_text(encoding="utf-8")


def test_a_snippet_matches_whatever_the_formatter_did_to_its_line_breaks() -> None:
    joined = mutation(
        "one-kind-only",
        "",
        "reply.py:Reply.total",
        ('sum(usage[key] for key in ("prompt", "completion"))', 'usage["prompt"]'),
        tests=(),
    )
    assert 'return usage["prompt"]' in apply_mutation(joined, SOURCE)


@pytest.mark.parametrize(
    ("target", "edit", "reason"),
    [
        ("reply.py:Reply.gone", ("usage[key]", "0"), "no function Reply.gone"),
        ("reply.py:Reply.total", ("usage[name]", "0"), "'usage\\[name\\]' is not in"),
        ("reply.py:Reply.total", ('"prompt"', '"prompt"'), "changes nothing"),
        ("reply.py:Reply.total", ("sum(", "sum(("), "does not parse"),
    ],
)
def test_a_mutation_that_no_longer_applies_says_so(
    target: str, edit: tuple[str, str], reason: str
) -> None:
    stale = mutation("stale", "", target, edit, tests=())
    with pytest.raises(MutationError, match=f"mutation stale no longer applies: .*{reason}"):
        apply_mutation(stale, SOURCE)
