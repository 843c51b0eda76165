"""Rescore retrieved passages for the question; keep the best, in document order.

This is the XL3M selection step applied to passages that a retriever already found, and the
core of the LlamaIndex node postprocessor and the LangChain document compressor. By default
each passage is ranked by the model's certainty (it reads *passage + question*), by BM25 and
by a sentence embedder, and the rankings are fused (``entropy_retriever.fusion``); the best
are kept (``top_n`` or what fits ``token_budget``), and come back in document order: grouped
by source document, the source holding the best passage first, and by position inside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence, Union

from .config import DEFAULT
from .errors import InputError, check_text
from .models import model_and_tokenizer, model_lock, scores_in_int8
from .pipeline import Ranked, choose, rank, score_texts
from .quantize import INT8, quantize_int8
from .scoring import CertaintyScorer, MetricFn, PromptTemplate
from .selection import GAP, Selection, token_counter
from .signals import make_signals, resolve_signals

__all__ = ["CertaintyReranker", "Passage", "RankedPassage"]

DEFAULT_SELECTION = Selection(top_k=3)
_NAMES = {"top_k": "top_n"}  # the reranker's word for it, in error messages


@dataclass(frozen=True)
class Passage:
    """A retrieved passage: its text, the document it came from, and its position in that document."""

    text: str
    source: str = ""
    position: float = 0.0  # start character, chunk number, or any number that orders a document


@dataclass(frozen=True)
class RankedPassage:
    """A kept passage: ``index`` into the input list, its score (lower = more relevant), its
    relevance in (0, 1] (1 for the best passage; what the frameworks report), and each signal's score."""

    index: int
    score: float
    passage: Passage
    relevance: float = 1.0
    signals: dict = field(default_factory=dict)


class CertaintyReranker:
    """Keep the passages that rank best for the question: by default the fusion of the model's
    certainty (reading each passage with the question), BM25 and a sentence embedder.

    >>> reranker = CertaintyReranker(top_n=3)            # the embedded default model
    >>> kept = reranker.rerank([Passage(t, "doc", i) for i, t in enumerate(chunks)], "Who won?")

    Safe to call from several threads: each call holds the model's lock while it scores.
    """

    def __init__(
        self,
        model=None,
        tokenizer=None,
        *,
        top_n: int | None = None,
        token_budget: int | None = None,
        metric: Union[str, MetricFn] = DEFAULT.metric,
        template: Union[str, PromptTemplate] = DEFAULT.template,
        signals: tuple[str, ...] = DEFAULT.signals,
        fusion: str = DEFAULT.fusion,
        hops: int = DEFAULT.hops,
        budget_tokenizer=None,
        batch_tokens: int = 4096,
        quantize: str | None = None,
        progress: bool | None = False,
    ) -> None:
        if quantize not in (None, INT8):
            raise InputError(f"quantize must be None or 'int8' (score with a dynamic int8 copy on CPU), got {quantize!r}")
        self.signals = resolve_signals(signals)
        self.config = DEFAULT.but(metric=metric, template=template, signals=self.signals, fusion=fusion, hops=hops)
        if model is None and quantize is None and scores_in_int8("auto"):  # the default model, as calibrate chose
            quantize = INT8
        model, tokenizer = model_and_tokenizer(model, tokenizer, "CertaintyReranker")
        self.selection = Selection.of(top_n, token_budget, default=DEFAULT_SELECTION, names=_NAMES)
        self.scorer = CertaintyScorer(
            quantize_int8(model) if quantize == INT8 else model, tokenizer, metric=metric, template=template, batch_tokens=batch_tokens, progress=progress
        )
        self.count: Callable[[str], int] = token_counter(budget_tokenizer or tokenizer)
        self._signals = make_signals(self.signals, self.scorer)

    @property
    def metric(self) -> str:
        """How passages are scored: the certainty metric, or ``fusion(signals)`` of the fused signals."""
        return self.config.label

    def score(self, texts: Sequence[str], question: str) -> list[float]:
        """The score of each text for ``question`` (lower = more relevant): the fused score by default."""
        return self._scored(list(texts), question)[1].fused.tolist()

    def _scored(self, texts: list[str], question: str) -> tuple[dict, Ranked]:
        """The reader's stages on a list: score with each signal, fuse, rescore the best given the first."""
        with model_lock(self.scorer.model):
            if "certainty" not in self.signals:
                self.scorer.encode_question(question)  # the question checked even for no texts
            states = {name: signal.prepare(question) for name, signal in self._signals.items()}
            values = score_texts(self._signals, states, texts)
        return values, rank(values, question, self.config, lambda idx: [texts[i] for i in idx])

    def rerank(
        self, passages: Sequence[Union[Passage, str]], question: str, *, top_n: int | None = None,
        token_budget: int | None = None,
    ) -> list[RankedPassage]:
        """Score ``passages`` against ``question``; return the kept ones in document order.

        ``top_n`` or ``token_budget`` overrides, for this call, how many are kept.
        """
        selection = Selection.of(top_n, token_budget, default=self.selection, names=_NAMES)
        items = [p if isinstance(p, Passage) else Passage(_text(p, i)) for i, p in enumerate(passages)]
        values, ranked = self._scored([p.text for p in items], question)
        scores, relevance = ranked.fused.tolist(), ranked.relevance.tolist()
        if not items:
            return []
        sizes = [self.count(p.text) for p in items] if selection.token_budget is not None else None
        kept = choose(selection, ranked, sizes, self.count(GAP) if sizes is not None else 0)
        best: dict[str, float] = {}
        for i in kept:
            best[items[i].source] = min(best.get(items[i].source, float("inf")), scores[i])
        order = sorted(kept, key=lambda i: (best[items[i].source], items[i].source, items[i].position, i))
        return [RankedPassage(i, float(scores[i]), items[i], relevance[i],
                              {name: float(v[i]) for name, v in values.items()}) for i in order]


def _text(value, index: int) -> str:
    if not isinstance(value, str):
        raise InputError(f"passage {index} is a {type(value).__name__}: pass strings or Passage objects")
    return check_text(value, f"passage {index}")
