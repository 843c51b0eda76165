"""How several signals' scores become one ranking: fusions as registered objects.

- ``zscore`` (the default): each signal's scores are standardised over the segments of the
  input (minus the mean, over the standard deviation) and averaged with weights, so that
  a signal whose best segment stands far ahead of the rest weighs in by how far (ranks
  alone cannot see that). And a segment that two or more signals rank first (each its sole
  best) is kept first whatever the others say, so no single signal can outvote two that agree;
  so is a segment the model's certainty singles out beyond chance (Grubbs' test for one
  outlier, at 5%), so that the embedder cannot outvote the model where only the model sees it.
- ``rrf``: reciprocal rank fusion (Cormack et al., 2009), ranks only; kept as an option.

With one signal, every fusion returns that signal's scores unchanged (so that a threshold on
certainty scores keeps its meaning). All scores follow the library's convention: lower =
more relevant.
"""

from __future__ import annotations

import functools
import math
from typing import ClassVar, Mapping, Sequence

import numpy as np

from .errors import InputError
from .selection import Floats

__all__ = ["Fusion", "FUSIONS", "register_fusion", "make_fusion", "RRF", "ZScore", "RRF_K", "rrf_scores", "relevance",
           "outlier", "standout_threshold"]

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


# The standout guard: a segment that one of these signals singles out, its best score farther
# ahead of the rest than chance explains among that many segments (Grubbs' test for one outlier,
# one-sided, at STANDOUT_ALPHA), is kept first. Chosen on the development data (the ~4k-token
# evidence sets and the 10k- and 20k-token low-overlap needles): the certainty's standouts held
# evidence in 17 of 19 cases; BM25's and the embedder's, where the fusion did not keep them
# already, held it in none of 9, so only the model's certainty has the guard.
STANDOUT_SIGNALS = ("certainty",)
STANDOUT_ALPHA = 0.05


@register_fusion
class ZScore(Fusion):
    """A weighted mean of the signals' standardised scores, with two guards.

    Each signal's scores are standardised over the items (a constant signal gives zeros).

    - ``agree``: an item that at least two signals rank first goes first. A signal ranks an item
      first only when that item alone has its best score: a signal whose best score is shared
      (BM25 when no segment holds a question term gives every segment 0) casts no vote.
    - ``standout``: an item that one of these signals singles out goes first: its sole best
      score stands farther from the mean than Grubbs' one-sided test for one outlier allows at
      level ``alpha`` among that many items (:func:`standout_threshold`). The bar rises with the
      number of items, so a long document's many segments do not make chance extremes count.

    Guarded items go first in their own fused order; every other item follows in fused order.
    """

    name = "zscore"

    def __init__(self, weights: Mapping[str, float] | None = None, *, agree: bool = True,
                 standout: Sequence[str] = STANDOUT_SIGNALS, alpha: float = STANDOUT_ALPHA) -> None:
        self.weights = dict(ZSCORE_WEIGHTS if weights is None else weights)
        if any(not np.isfinite(w) or w < 0 for w in self.weights.values()):
            raise InputError(f"fusion weights must be finite and non-negative, got {self.weights}")
        if isinstance(standout, str) or not all(isinstance(name, str) for name in standout):
            raise InputError(f"standout must be a sequence of signal names, e.g. ('certainty',), got {standout!r}")
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
            raise InputError(f"alpha is the standout test's level, between 0 and 1 (0.05 is usual), got {alpha!r}")
        self.agree = agree
        self.standout = tuple(standout)
        self.alpha = float(alpha)

    def combine(self, scores: dict[str, np.ndarray]) -> np.ndarray:
        n = len(next(iter(scores.values())))
        fused = np.zeros(n, dtype=np.float64)
        if not n:  # nothing to rank (an empty list of passages)
            return fused
        total = 0.0
        for name, v in scores.items():
            w = self.weights.get(name, 1.0)
            fused += w * standardise(v)
            total += w
        fused /= max(total, 1e-12)
        guarded = self.guarded(scores)
        if guarded:  # ahead of everything else, in their own fused order
            fused[sorted(guarded)] -= fused.max() - fused.min() + 1.0
        return fused

    def guarded(self, scores: dict[str, np.ndarray]) -> set[int]:
        """The items that go first: those two signals rank first, and each standout signal's outlier."""
        out: set[int] = set()
        if self.agree:
            firsts = np.bincount([first for v in scores.values() if (first := sole_best(v)) is not None],
                                 minlength=len(next(iter(scores.values()))))
            out.update(int(i) for i in np.flatnonzero(firsts >= 2))
        for name in self.standout:
            if name in scores and (item := outlier(scores[name], self.alpha)) is not None:
                out.add(item)
        return out


def outlier(values: np.ndarray, alpha: float = STANDOUT_ALPHA) -> int | None:
    """The item whose sole best (lowest) score is an outlier by Grubbs' one-sided test at level
    ``alpha``, or None (fewer than three items, a shared best, or no outlier)."""
    n = len(values)
    if n < 3 or (best := sole_best(values)) is None:
        return None
    return best if -standardise(values)[best] >= standout_threshold(n, alpha) else None


@functools.lru_cache(maxsize=256)
def standout_threshold(n: int, alpha: float = STANDOUT_ALPHA) -> float:
    """Grubbs' critical value for one outlier among ``n`` items, one-sided at level ``alpha``, as
    a standard score over the items (the population standard deviation, as :func:`standardise`):
    ``G = (n - 1) / sqrt(n) * sqrt(t^2 / (n - 2 + t^2))`` with ``t`` the upper ``alpha / n``
    quantile of Student's t with ``n - 2`` degrees of freedom, times ``sqrt(n / (n - 1))``."""
    if n < 3:
        raise InputError(f"Grubbs' test needs at least 3 items, got {n}")
    t = t_upper_quantile(alpha / n, n - 2)
    g = (n - 1) / math.sqrt(n) * math.sqrt(t * t / (n - 2 + t * t))
    return g * math.sqrt(n / (n - 1))


def t_upper_quantile(p: float, df: int) -> float:
    """The ``t`` with ``P(T > t) = p`` for Student's t with ``df`` (a whole number) degrees of
    freedom, by bisection on its distribution function (Abramowitz and Stegun 26.7.3-4)."""
    if not 0 < p < 0.5 or df < 1:
        raise InputError(f"t_upper_quantile needs 0 < p < 0.5 and df >= 1, got p={p}, df={df}")
    lo, hi = 0.0, 1.0
    while t_upper_tail(hi, df) > p:
        lo, hi = hi, hi * 2
    for _ in range(64):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if t_upper_tail(mid, df) > p else (lo, mid)
    return (lo + hi) / 2


def t_upper_tail(t: float, df: int) -> float:
    """``P(T > t)`` for ``t >= 0``, Student's t with whole ``df``: half of ``1 - P(|T| <= t)``,
    where ``P(|T| <= t)`` is a finite series in ``cos(theta)``, ``theta = atan(t / sqrt(df))``."""
    theta = math.atan(t / math.sqrt(df))
    c2, sin, odd = math.cos(theta) ** 2, math.sin(theta), df % 2
    # odd: 2/pi * (theta + sin * cos * (1 + 2/3 cos^2 + 2*4/(3*5) cos^4 + ...));
    # even: sin * (1 + 1/2 cos^2 + 1*3/(2*4) cos^4 + ...)
    total = term = (math.cos(theta) if df > 1 else 0.0) if odd else 1.0
    for k in range(3 if odd else 2, df - 1, 2):
        term *= c2 * (k - 1) / k
        total += term
    inside = 2 / math.pi * (theta + sin * total) if odd else sin * total
    return max(0.0, 1.0 - inside) / 2


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
