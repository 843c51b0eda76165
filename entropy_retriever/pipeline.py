"""The ranking stages every selection runs: score -> fuse -> hops -> choose.

The reader (over a streamed input) and the reranker (over a list of passages) both score
with :class:`~entropy_retriever.signals.Signal` objects, then call :func:`rank` and
:func:`choose` here; the evidence benchmark calls the same two functions on saved signals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np

from .config import SelectionConfig
from .fusion import make_fusion, relevance
from .hops import FeedbackHops
from .selection import Selection

__all__ = ["Ranked", "score_texts", "rank", "choose"]


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
        return np.asarray(relevance(position))


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


def rank(values: Mapping[str, Sequence[float]], question: str, config: SelectionConfig,
         texts: Callable[[list[int]], list[str]]) -> Ranked:
    """Fuse the signals' scores by ``config.fusion``, then let the multi-hop stage reorder the best
    candidates (``texts(indices)`` gives their texts)."""
    fused = make_fusion(config.fusion).fuse(values)
    order, hop_scores = FeedbackHops(config.hops).order(fused, question, list(values), texts)
    return Ranked(fused, order, hop_scores)


def choose(selection: Selection, ranked: Ranked, sizes: Sequence[int] | None, gap: int) -> set[int]:
    """What ``selection`` keeps: by the fused scores for a threshold, else by the final ranking."""
    if selection.threshold is not None:
        return selection.choose_sizes(sizes, ranked.fused, gap)
    return selection.choose_order(sizes, ranked.order, gap)
