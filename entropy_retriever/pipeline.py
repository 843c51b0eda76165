"""The ranking stages every selection runs: score -> fuse -> hops -> choose.

The reader (over a streamed input) and the reranker (over a list of passages) both score
with :class:`~entropy_retriever.signals.Signal` objects, then call :func:`rank` and
:func:`choose` here; the evidence benchmark calls the same two functions on saved signals.

The opt-in cascade (the reader's ``prefilter=``) adds one stage: the cheap signals (BM25, the
sentence embedder) rank every segment, and :func:`shortlist` picks the segments the model
reads; :func:`rank` then fuses all signals over those, and ranks the rest after them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np

from .config import SelectionConfig
from .errors import InputError
from .fusion import make_fusion, relevance
from .hops import FeedbackHops
from .selection import Floats, Selection
from .signals import SIGNALS

__all__ = ["PREFILTER_EACH", "Ranked", "check_prefilter", "choose", "rank", "score_texts", "shortlist"]

# Under a cascade, each cheap signal's own best segments always reach the model, so that a
# segment one of them ranks first is never lost to the other's view of it.
PREFILTER_EACH = 4


@dataclass
class Ranked:
    """The fused score of every item (lower = better), the final ranking (indices, best first),
    each item's relevance in (0, 1] by that ranking, and the multi-hop stage's scores of the
    candidates it rescored."""

    fused: np.ndarray
    order: np.ndarray
    hop_scores: dict[int, float] = field(default_factory=dict)

    @property
    def relevance(self) -> np.ndarray:
        """1 for the first item of the ranking, ``(k + 1) / (k + rank)`` after it."""
        position = np.empty(len(self.order), dtype=np.float64)
        position[self.order] = np.arange(len(self.order), dtype=np.float64)
        return np.asarray(relevance(position), dtype=np.float64)


def score_texts(signals: Mapping, states: Mapping, texts: Sequence) -> dict[str, np.ndarray]:
    """The score stage on a list held in memory: every signal's scores of ``texts`` (strings or Segments)."""
    values = {}
    for name, signal in signals.items():
        if signal.kind == "segment":
            values[name] = np.asarray(signal.score(states[name], list(texts)), dtype=np.float64)
        else:
            for text in texts:
                signal.observe(states[name], text)
            values[name] = np.frombuffer(signal.finish(states[name]), dtype=np.float64)
    return values


def rank(values: Mapping[str, Floats], question: str, config: SelectionConfig,
         texts: Callable[[list[int]], list[str]], candidates: np.ndarray | None = None) -> Ranked:
    """Fuse the signals' scores by ``config.fusion``, then let the multi-hop stage reorder the best
    candidates (``texts(indices)`` gives their texts).

    With ``candidates`` (a cascade's :func:`shortlist`), only those have every signal: they are
    fused and ranked among themselves, and the others follow in the cheap signals' order, with
    fused scores above every candidate's."""
    fusion = make_fusion(config.fusion)
    if candidates is None:
        fused = fusion.fuse(values)
        order, hop_scores = FeedbackHops(config.hops).order(fused, question, list(values), texts)
        return Ranked(fused, order, hop_scores)
    candidates = np.asarray(candidates, dtype=np.int64)
    n = len(next(iter(values.values())))
    inner = fusion.fuse({name: np.asarray(v, dtype=np.float64)[candidates] for name, v in values.items()})
    local, local_hops = FeedbackHops(config.hops).order(inner, question, list(values),
                                                        lambda idx: texts([int(candidates[i]) for i in idx]))
    rest = np.setdiff1d(np.arange(n, dtype=np.int64), candidates)
    if len(rest):
        cheap = fusion.fuse({name: np.asarray(v, dtype=np.float64)[rest] for name, v in values.items() if is_cheap(name)})
        rest = rest[np.argsort(cheap, kind="stable")]
    fused = np.empty(n, dtype=np.float64)
    fused[candidates] = inner
    fused[rest] = (inner.max() if len(inner) else 0.0) + 1.0 + np.arange(len(rest)) / max(1, len(rest))
    order = np.concatenate([candidates[local], rest])
    return Ranked(fused, order, {int(candidates[i]): score for i, score in local_hops.items()})


def is_cheap(name: str) -> bool:
    """Whether a signal runs without the language model (a cascade ranks every segment with these)."""
    return SIGNALS[name].cost != "model"


def check_prefilter(prefilter) -> None:
    """``None`` (off), a share of the segments in (0, 1), or a count of at least 1."""
    if prefilter is None:
        return
    if isinstance(prefilter, bool) or not isinstance(prefilter, (int, float, np.integer, np.floating)) or not (
            (isinstance(prefilter, (int, np.integer)) and prefilter >= 1) or 0 < prefilter < 1):
        raise InputError(f"prefilter must be None (the model reads every segment), a share between 0 and 1 (0.1: "
                         f"the best tenth by BM25 and the embedder), or a count of at least 1, got {prefilter!r}")


def shortlist(cheap: Mapping[str, Floats], prefilter: float | int, fusion: str,
              each: int = PREFILTER_EACH) -> np.ndarray:
    """The segments a cascade's model reads (sorted indices): the best ``prefilter`` (a share or a
    count) by the cheap signals' fusion, and each cheap signal's ``each`` best."""
    check_prefilter(prefilter)
    if not cheap:
        raise InputError("prefilter needs a cheap signal to rank with: add 'bm25' or 'dense' to the signals")
    arrays = {name: np.asarray(v, dtype=np.float64) for name, v in cheap.items()}
    n = len(next(iter(arrays.values())))
    count = int(prefilter) if not 0 < prefilter < 1 else math.ceil(prefilter * n)
    chosen = set(np.argsort(make_fusion(fusion).fuse(arrays), kind="stable")[:count].tolist())
    for values in arrays.values():
        chosen.update(np.argsort(values, kind="stable")[:each].tolist())
    return np.asarray(sorted(chosen), dtype=np.int64)


def choose(selection: Selection, ranked: Ranked, sizes: Sequence[int] | None, gap: int) -> set[int]:
    """What ``selection`` keeps: by the fused scores for a threshold, else by the final ranking."""
    if selection.threshold is not None:
        return selection.choose_sizes(sizes, ranked.fused, gap)
    return selection.choose_order(sizes, ranked.order, gap)
