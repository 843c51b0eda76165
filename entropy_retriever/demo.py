"""A long document that exists on every machine: Python's pydoc topics with one fact hidden in it."""

from __future__ import annotations

from dataclasses import dataclass
from pydoc_data.topics import topics

FACT = "The observatory's archive door code is 58213, and only the night curator knows it."
QUESTION = "What is the observatory's archive door code?"
EXPECTED = "58213"


@dataclass(frozen=True)
class DemoDocument:
    text: str
    question: str
    expected: str
    n_tokens: int


def make_demo_document(tokenizer, n_tokens: int = 24000, depth: float = 0.3) -> DemoDocument:
    """About ``n_tokens`` tokens of pydoc topics (sorted by name) with FACT at ``depth``."""
    if not 0.0 <= depth <= 1.0:
        raise ValueError("depth must be between 0 and 1")

    pieces: list[str] = []
    total = 0
    for name in sorted(topics):
        body = topics[name].strip()
        if total >= n_tokens:
            break
        ids = tokenizer(body, add_special_tokens=False)["input_ids"]
        if total + len(ids) > n_tokens:  # the last topic only in part, up to a line end: the length asked for
            head = tokenizer.decode(ids[: n_tokens - total])
            body = head[: head.rfind("\n")].rstrip() if "\n" in head else head
            ids = tokenizer(body, add_special_tokens=False)["input_ids"]
        pieces.append(body)
        total += len(ids)
    text = "\n\n".join(pieces)
    # Put the fact on a paragraph boundary near the requested depth.
    cut = text.rfind("\n\n", 0, int(len(text) * depth))
    cut = 0 if cut < 0 else cut
    text = f"{text[:cut]}\n\n{FACT}\n\n{text[cut:].lstrip()}"
    return DemoDocument(text, QUESTION, EXPECTED, len(tokenizer(text)["input_ids"]))
