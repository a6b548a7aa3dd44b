"""Text into overlapping chunks, cut at paragraph, sentence or word boundaries where possible."""

from __future__ import annotations

import re

# Where a chunk may end, best first: a paragraph, a line, a sentence, a word.
BOUNDARIES = (re.compile(r"\n\s*\n"), re.compile(r"\n"), re.compile(r"[.!?]\s"), re.compile(r"\s"))


def split_text(text: str, size: int, overlap: int) -> list[str]:
    """Chunks of at most `size` characters; each starts `overlap` characters before the end of
    the previous one (then moves forward to a word start), so a sentence cut in two is whole in
    one of them."""
    text = text.strip()
    chunks: list[str] = []
    start = 0
    while start < len(text):
        end = min(len(text), start + size)
        if end < len(text):
            end = _boundary(text, start, end, size)
        chunk = text[start:end].strip()
        if chunk:
            chunks.append(chunk)
        if end >= len(text):
            break
        start = _word_start(text, max(start + 1, end - overlap))
    return chunks


def _boundary(text: str, start: int, end: int, size: int) -> int:
    """The best cut in the second half of text[start:end], else `end` itself."""
    window = text[start:end]
    for pattern in BOUNDARIES:
        cuts = [match.end() for match in pattern.finditer(window) if match.end() > size // 2]
        if cuts:
            return start + cuts[-1]
    return end


def _word_start(text: str, position: int) -> int:
    """`position`, moved forward to the start of a word when it falls inside one."""
    if position == 0 or text[position - 1].isspace():
        return position
    match = re.compile(r"\s+").search(text, position)
    return match.end() if match else position
