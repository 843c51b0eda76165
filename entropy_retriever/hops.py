"""The multi-hop stage: after the first pick, rescore the best candidates given what it says.

A question such as "Where was the director of film X born?" is answered by two facts, and
the second ("Y was born in Z") shares no word with the question: it can only be found once
the first ("X was directed by Y") has been read. So, after the fused ranking has chosen its
first segment, the stage takes the sentences of that segment that answer most of the
question, adds their words to the question (BM25 feedback terms, at a lower weight) and
their text to what the embedder compares with, and rescores a pool of the next best
candidates: by their fused score and the cheap signals under the enlarged question. The
best of the pool is picked next; with ``hops`` above 1, the same is done again from it.

Only the cheap signals (BM25, and the embedder if weighted) are recomputed, on a pool of a few
segments, so the stage costs a small fraction of the model's pass. It is off by default
(``hops=0``): on the development halves it lost about a point overall, gaining on 2Wiki and
bAbI stories and losing on MuSiQue and the low-overlap needles (README, "How the defaults
were chosen"); ``hops=1`` turns it on. Segments outside the pool keep their
fused order behind it. With no cheap signal among the selection's signals, or no sentence
of the first pick that shares a word with the question, the fused order is kept as it is.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from .errors import InputError
from .fusion import standardise
from .signals import BM25, DenseEmbedder, terms
from .signals import sentences as split_sentences

__all__ = ["FeedbackHops"]

def key_sentences(text: str, question: str, k: int) -> list[str]:
    """The ``k`` sentences of ``text`` that share most of the question's words (in text order); none share none."""
    asked = set(terms(question))
    sentences = split_sentences(text)
    shared = [len(asked & set(terms(s))) for s in sentences]
    best = sorted((i for i in range(len(sentences)) if shared[i]), key=lambda i: (-shared[i], i))[:k]
    return [sentences[i] for i in sorted(best)]


class FeedbackHops:
    """Rescore the best ``pool`` candidates ``hops`` times, each time given the last pick's key sentences.

    ``weights`` weigh the fused score (``"fused"``) and the cheap signals' rescored values
    (``"bm25"``, ``"dense"``) in the pool's standardised mean; ``feedback_weight`` is a
    feedback term's weight in BM25, against 1 for the question's own words.
    """

    def __init__(self, hops: int = 1, *, pool: int = 16, sentences: int = 2, feedback_weight: float = 1.0,
                 weights: dict[str, float] | None = None) -> None:
        if isinstance(hops, bool) or not isinstance(hops, int) or hops < 0:
            raise InputError(f"hops must be a whole number of at least 0, got {hops!r}")
        self.hops, self.pool, self.sentences, self.feedback_weight = hops, pool, sentences, feedback_weight
        # The best of the settings tried on the development halves (README, "How the defaults were
        # chosen"): the embedder, asked with the first pick's sentences, pulled in look-alikes.
        self.weights = {"fused": 1.0, "bm25": 1.0, "dense": 0.0} if weights is None else dict(weights)

    def order(self, fused: np.ndarray, question: str, signals: Sequence[str],
              texts: Callable[[list[int]], list[str]]) -> tuple[np.ndarray, dict[int, float]]:
        """The ranking (indices, best first) and the rescored candidates' hop scores (lower = better).

        ``texts(indices)`` returns those segments' texts (the reader reads them again from the source).
        """
        ranking = np.argsort(fused, kind="stable")
        cheap = [s for s in ("bm25", "dense") if s in signals and self.weights.get(s, 1.0) > 0]
        if self.hops == 0 or not cheap or len(ranking) < 3:
            return ranking, {}
        pool = [int(i) for i in ranking[: self.pool]]
        text = dict(zip(pool, texts(pool)))
        picked, rest = [pool[0]], pool[1:]
        base = standardise(fused[rest])
        hop_scores: dict[int, float] = {}
        for _ in range(self.hops):
            feedback = key_sentences(text[picked[-1]], question, self.sentences)
            if not rest or not feedback:
                break
            score = self._rescore([text[i] for i in rest], base, question, " ".join(feedback), cheap)
            hop_scores.update(zip(rest, score.tolist()))
            order = np.argsort(score, kind="stable")
            picked.append(rest[int(order[0])])
            rest = [rest[int(j)] for j in order[1:]]
            base = base[order[1:]]
        head = picked + rest
        return np.concatenate([np.asarray(head, dtype=np.int64), ranking[len(head):]]), hop_scores

    def _rescore(self, texts: list[str], base: np.ndarray, question: str, feedback: str, cheap: list[str]) -> np.ndarray:
        asked = set(terms(question))
        extra = {t: self.feedback_weight for t in terms(feedback) if t not in asked}
        score = self.weights.get("fused", 1.0) * base
        total = self.weights.get("fused", 1.0)
        if "bm25" in cheap:
            bm25 = BM25(question, extra=extra)
            for t in texts:
                bm25.add(t)
            score = score + self.weights.get("bm25", 1.0) * standardise(np.frombuffer(bm25.score_array(), dtype=np.float64))
            total += self.weights.get("bm25", 1.0)
        if "dense" in cheap:
            dense = np.asarray(DenseEmbedder.shared().scores(texts, f"{question} {feedback}"))
            score = score + self.weights.get("dense", 1.0) * standardise(dense)
            total += self.weights.get("dense", 1.0)
        return score / total
