"""The offline provider's answer to a grounded question (`ai/prompts/ask.txt`): it quotes the
source sentences that share the most words with the question, and cites them by number."""

from __future__ import annotations

import re

PROMPT = re.compile(r"\nSources:\n(?P<sources>.*)\n\nQuestion: (?P<question>.*)\Z", re.DOTALL)
SOURCE = re.compile(r"^\[(?P<number>\d+)\] [^\n]*\n(?P<text>.*?)(?=\n\n\[\d+\] |\Z)", re.M | re.S)
SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
WORD = re.compile(r"[a-z0-9]{3,}")
QUOTED = 2  # sentences quoted at most


def words(text: str) -> set[str]:
    return set(WORD.findall(text.lower()))


def grounded_reply(message: str) -> str | None:
    """The reply to an `ask` prompt, or None when `message` is not one."""
    match = PROMPT.search(message)
    if match is None:
        return None
    question = match["question"].strip()
    wanted = words(question)
    ranked: list[tuple[int, int, str]] = []
    for source in SOURCE.finditer(match["sources"]):
        for sentence in SENTENCE_END.split(source["text"]):
            shared = len(wanted & words(sentence))
            if shared:
                ranked.append((shared, int(source["number"]), sentence.strip()))
    if not ranked:
        return f"(offline reply) None of the sources answers: {question}"
    ranked.sort(key=lambda item: (-item[0], item[1]))
    quotes = " ".join(f'"{sentence}" [{number}]' for _, number, sentence in ranked[:QUOTED])
    return f"(offline reply) According to the sources: {quotes}"
