"""How several signals' scores become one ranking: fusions as registered objects.

- ``zscore`` (the default): each signal's scores are standardised over the segments of the
  input (minus the mean, over the standard deviation) and averaged with weights, so that
  a signal whose best segment stands far ahead of the rest weighs in by how far (ranks
  alone cannot see that). And a segment that two or more signals rank first (each its sole
  best) is kept first whatever the others say, so no single signal can outvote two that agree.
- ``rrf``: reciprocal rank fusion (Cormack et al., 2009), ranks only; kept as an option.

With one signal, every fusion returns that signal's scores unchanged (so that a threshold on
certainty scores keeps its meaning). All scores follow the library's convention: lower =
more relevant.
"""

from __future__ import annotations

from typing import ClassVar, Mapping, Sequence

import numpy as np

from .errors import InputError
from .selection import Floats

__all__ = ["Fusion", "FUSIONS", "register_fusion", "make_fusion", "RRF", "ZScore", "RRF_K", "rrf_scores", "relevance"]

RRF_K = 60  # the constant of Cormack et al.; it damps the difference between the first few ranks


class Fusion:
    """Turns ``{signal name: scores}`` (each lower = better, all over the same items) into one score per item."""

    name: ClassVar[str]

    def fuse(self, scores: Mapping[str, Floats]) -> np.ndarray:
        arrays = _checked(scores)
        if len(arrays) == 1:
            return next(iter(arrays.values())).copy()
        return self.combine(arrays)

    def combine(self, scores: dict[str, np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def label(self, signals: Sequence[str], metric: str) -> str:
        """How a selection scored, for ``KeyContext.metric``: the certainty metric alone, or ``name(signals)``."""
        if tuple(signals) == ("certainty",):
            return metric
        return f"{self.name}(" + ", ".join(f"certainty:{metric}" if s == "certainty" else s for s in signals) + ")"


FUSIONS: dict[str, type[Fusion]] = {}


def register_fusion(cls: type[Fusion]) -> type[Fusion]:
    """Register a :class:`Fusion` subclass under its ``name`` (a class decorator)."""
    FUSIONS[cls.name] = cls
    return cls


def make_fusion(fusion: "str | Fusion") -> Fusion:
    """A fusion object from its name (or the object itself)."""
    if isinstance(fusion, Fusion):
        return fusion
    if fusion not in FUSIONS:
        raise InputError(f"unknown fusion {fusion!r}: choose one of {', '.join(FUSIONS)}, or pass a Fusion object")
    return FUSIONS[fusion]()


def _checked(scores: Mapping[str, Floats]) -> dict[str, np.ndarray]:
    if not scores:
        raise InputError("fusing needs at least one signal")
    arrays = {name: np.asarray(values, dtype=np.float64) for name, values in scores.items()}
    sizes = {len(a) for a in arrays.values()}
    if len(sizes) != 1:
        raise InputError("every signal must score the same items")
    return arrays


@register_fusion
class RRF(Fusion):
    """Reciprocal rank fusion: ``-sum(1 / (k + rank))`` over the signals, divided by its best
    possible value, so it lies in [-1, 0) (-1 for an item every signal ranks first). Ties
    share the better rank, so an uninformative signal adds the same to every item."""

    name = "rrf"

    def __init__(self, k: int = RRF_K) -> None:
        self.k = k

    def combine(self, scores: dict[str, np.ndarray]) -> np.ndarray:
        fused = np.zeros(len(next(iter(scores.values()))), dtype=np.float64)
        for v in scores.values():
            ordered = np.sort(v)
            weight = np.searchsorted(ordered, v, side="left").astype(np.float64)  # ties share the better rank
            del ordered  # at most three arrays of 8 bytes an item at a time, beside ``fused``
            weight += self.k + 1  # ranks count from 1
            np.reciprocal(weight, out=weight)
            fused -= weight
        fused /= len(scores) / (self.k + 1)
        return fused


# The weights of the z-score fusion, chosen on the development halves of the evidence sets at the
# shipped configuration (``python -m benchmarks evidence --split dev``; README, "How the defaults
# were chosen"): a grid of 0.5-2 for each signal, four certainty metrics, the guard on and off.
# Many settings lie within a point of the best; this one keeps the guard. A signal not listed weighs 1.
ZSCORE_WEIGHTS = {"certainty": 1.5, "bm25": 1.0, "dense": 2.0}


@register_fusion
class ZScore(Fusion):
    """A weighted mean of the signals' standardised scores, with a guard for agreement.

    Each signal's scores are standardised over the items (a constant signal gives zeros).
    With ``agree`` on, an item that at least two signals rank first goes first. A signal ranks
    an item first only when that item alone has its best score: a signal whose best score is
    shared (BM25 when no segment holds a question term gives every segment 0) casts no vote.
    """

    name = "zscore"

    def __init__(self, weights: Mapping[str, float] | None = None, *, agree: bool = True) -> None:
        self.weights = dict(ZSCORE_WEIGHTS if weights is None else weights)
        if any(not np.isfinite(w) or w < 0 for w in self.weights.values()):
            raise InputError(f"fusion weights must be finite and non-negative, got {self.weights}")
        self.agree = agree

    def combine(self, scores: dict[str, np.ndarray]) -> np.ndarray:
        n = len(next(iter(scores.values())))
        fused = np.zeros(n, dtype=np.float64)
        total = 0.0
        for name, v in scores.items():
            w = self.weights.get(name, 1.0)
            fused += w * standardise(v)
            total += w
        fused /= max(total, 1e-12)
        if self.agree and n:
            firsts = np.bincount([first for v in scores.values() if (first := sole_best(v)) is not None], minlength=n)
            agreed = np.flatnonzero(firsts >= 2)
            if len(agreed):  # ahead of everything else, in their own fused order
                fused[agreed] -= fused.max() - fused.min() + 1.0
        return fused


def sole_best(values: np.ndarray) -> int | None:
    """The index of the item with the best (lowest) score, or None where that score is shared or not finite."""
    best = values.min(initial=np.inf)
    if not np.isfinite(best) or np.count_nonzero(values == best) != 1:
        return None
    return int(np.argmin(values))


def standardise(values: np.ndarray) -> np.ndarray:
    """``(values - mean) / std`` over the items; zeros where the values do not vary."""
    std = float(values.std())
    if not np.isfinite(std) or std < 1e-12:
        return np.zeros_like(values)
    return (values - values.mean()) / std


def rrf_scores(scores: Sequence[Sequence[float]], k: int = RRF_K) -> list[float]:
    """Reciprocal rank fusion of unnamed signals' scores (see :class:`RRF`), as a list."""
    if not len(scores):
        raise InputError("rrf_scores needs at least one signal")
    return RRF(k).combine(_checked({str(i): s for i, s in enumerate(scores)})).tolist()


def relevance(fused: Floats) -> list[float]:
    """Fused scores (lower = better) as relevance in (0, 1], 1 for the best item, by rank:
    ``(k + 1) / (k + rank)`` with the reciprocal-rank constant, ties sharing the better rank."""
    values = np.asarray(fused, dtype=np.float64)
    if not len(values):
        return []
    rank = np.searchsorted(np.sort(values), values, side="left") + 1
    return ((RRF_K + 1) / (RRF_K + rank)).tolist()
