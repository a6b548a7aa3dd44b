"""A feature lives in its own files: shared modules keep few Jinja `{% if %}` blocks.

Each `{% if %}` under the template's src/ or tests/ is a branch a reader of the template must
follow; a feature's code belongs in files that the post-gen hook's MANIFEST removes whole, with
one short seam (a line in a list) in a shared module. These budgets keep it that way.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import TEMPLATE_DIR

PROJECT = TEMPLATE_DIR / "{{cookiecutter.project_slug}}"
IF_BLOCK = re.compile(r"\{%-? *if\b")
# Jinja `{% if %}` blocks allowed under each folder of the generated project's template.
BUDGETS = {"src": 50, "tests": 25}


def if_blocks(folder: Path) -> dict[str, int]:
    """`{% if` blocks per file under `folder`, for the files that have any."""
    counts = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            found = len(IF_BLOCK.findall(path.read_text(encoding="utf-8", errors="replace")))
            if found:
                counts[path.relative_to(PROJECT).as_posix()] = found
    return counts


@pytest.mark.parametrize("folder", sorted(BUDGETS))
def test_jinja_if_blocks_stay_within_budget(folder: str) -> None:
    counts = if_blocks(PROJECT / folder)
    total = sum(counts.values())
    per_file = "\n".join(f"  {count:3d}  {name}" for name, count in counts.items())
    assert total <= BUDGETS[folder], (
        f"{total} Jinja if-blocks under {folder}/ (budget {BUDGETS[folder]}); move a feature's "
        f"code into its own files listed in the MANIFEST. Per file:\n{per_file}"
    )


def test_the_count_sees_every_form_of_if() -> None:
    text = "{% if a %}x{% endif %}\n{%- if b %}\n{%- endif %}\n{%-  if c %}{% elif d %}{% endif %}"
    assert len(IF_BLOCK.findall(text)) == 3
    assert not IF_BLOCK.findall("{% endif %}{%- elif x %}{{ a if b else c }}{% iffy %}")
