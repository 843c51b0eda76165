"""The sentences of a key context that bear most on the question: what a small model answers from.

A key context of 1,536 tokens is short for the method, but long for a 135M-parameter model to
answer from: SmolLM2-135M-Instruct, given the right key context, still tends to restate the
question or invent a name. Given only the few sentences of that key context that bear most on
the question, it answers far more often (the measurement is in the reader guide). So the reader
can answer from a *focus*: the key context's ``n`` best sentences, ranked with no model pass by
the fusion's own cheap signals (BM25 and, where installed, the sentence embedder, with the
default fusion's weights), and kept in document order. The key context itself is unchanged:
its spans, its scores and the quotes that back an answer are all still there.
"""

from __future__ import annotations

import re

import numpy as np

from .fusion import ZScore
from .signals import DenseEmbedder, bm25_scores, dense_available, sentences

__all__ = ["focus_sentences"]

# A line break inside a paragraph (a wrapped line) joins; a blank line still ends a sentence.
_WRAPPED = re.compile(r"(?<!\n)\n(?!\n)")


def focus_sentences(text: str, question: str, n: int, *, dense: bool | None = None) -> list[str]:
    """The ``n`` sentences of ``text`` that bear most on ``question``, in the order they come.

    Ranked by BM25 and the sentence embedder (all-MiniLM-L6-v2), fused as the default fusion
    fuses them (z-scores, embedder weighted 2 to BM25's 1). ``dense=None`` uses the embedder where
    it is installed; ``False`` ranks by BM25 alone. A text of ``n`` sentences or fewer is
    returned whole, sentence by sentence.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n is how many sentences to keep, a positive int, got {n!r}")
    found = sentences(_WRAPPED.sub(" ", text))
    if len(found) <= n:
        return found
    scores = {"bm25": np.asarray(bm25_scores(found, question), dtype=np.float64)}
    if dense_available() if dense is None else dense:
        scores["dense"] = np.asarray(DenseEmbedder.shared().scores(found, question), dtype=np.float64)
    fused = ZScore(standout=()).fuse(scores)
    best = np.argsort(fused, kind="stable")[:n]
    return [found[i] for i in sorted(best.tolist())]
