"""Which sentences of a key context support an answer: so that a person can check it at a glance.

A small model can answer wrongly from the right evidence, or invent an answer. Quoting the
sentences that share the answer's words (rare words weigh more, numbers and names most) shows
where to look; finding none is itself a warning that the answer may not come from the text.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

__all__ = ["Quote", "supporting_sentences"]

_SENTENCE = re.compile(r"[^\n.!?。！？]*(?:[.!?。！？]+[\"'”’)\]]*|\n|$)")
_WORD = re.compile(r"\w+")
_MAX_QUOTE_CHARS = 300
# Words too common to say that a sentence supports an answer.
_STOPWORDS = frozenset(
    """a an the and or but if of to in on at by for with from as is are was were be been being it its this that
    these those there here he she they we you i me my our your his her their them him us do does did done have has
    had not no yes so than then too very can could will would shall should may might must what which who whom whose
    when where why how all any some each both more most other such only own same into over under about after before
    between through during again further once up down out off also just one""".split()
)


@dataclass(frozen=True)
class Quote:
    """A sentence of the key context: its source, the 1-based line it starts on (0: not known), its text,
    and the answer's words it holds."""

    source: str
    line: int
    text: str
    shared: tuple[str, ...]


def _words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in _STOPWORDS and (len(w) > 1 or w.isdigit())]


def _sentences(span):
    """(line, sentence) for each sentence of a kept span, in order."""
    line = span.line_start
    for match in _SENTENCE.finditer(span.text):
        piece = match.group()
        if piece.strip():
            leading = piece[: len(piece) - len(piece.lstrip())]
            yield (line + leading.count("\n") if line else 0), piece.strip()
        if line:
            line += piece.count("\n")


def supporting_sentences(answer: str, key_context, question: str = "", *, n: int = 2) -> list[Quote]:
    """Up to ``n`` sentences of ``key_context`` that best support ``answer``, best first.

    A sentence's weight is the sum, over the answer's words it holds, of each word's rarity among
    the key context's sentences (numbers and other rare words count most); the question's words
    break ties. Sentences holding none of the answer's words, fragments of fewer than three words,
    and sentences weighing less than half the best one are never quoted, so an empty list means
    that nothing in the key context backs the answer.
    """
    wanted = set(_words(answer))
    if not wanted or n < 1:
        return []
    asked = set(_words(question))
    sentences = [(span.source, line, text) for span in key_context.spans for line, text in _sentences(span)]
    if not sentences:
        return []
    bags = [set(_words(text)) for _, _, text in sentences]
    documents = {w: sum(w in bag for bag in bags) for w in wanted}
    weight = {w: math.log(1 + len(bags) / documents[w]) for w in wanted if documents[w]}
    ranked = []
    seen: set[str] = set()  # a sentence repeated in the text is quoted once
    for number, ((source, line, text), bag) in enumerate(zip(sentences, bags)):
        shared = sorted(bag & weight.keys())
        if shared and text not in seen and len(_WORD.findall(text)) >= 3:  # a sentence, not a stray fragment
            seen.add(text)
            score = sum(weight[w] for w in shared)
            ranked.append((-score, -len(bag & asked), number, Quote(source, line, clip(text), tuple(shared))))
    ranked.sort(key=lambda item: item[:3])
    if not ranked:
        return []
    best = -ranked[0][0]
    # A second quote must back the answer about as well as the first: not a stray shared word.
    return [item[3] for item in ranked[:n] if -item[0] >= 0.5 * best]


def clip(text: str, width: int = _MAX_QUOTE_CHARS) -> str:
    """``text`` on one line (whitespace runs collapsed), cut to ``width`` characters with an ellipsis."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
