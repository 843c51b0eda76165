"""Rescore retrieved passages by the model's certainty on the question; keep the best, in document order.

This is the XL3M selection step applied to passages that a retriever already found, and the
core of the LlamaIndex node postprocessor and the LangChain document compressor: each passage
is scored as *passage + question* (lower = more certain), the most certain are kept (``top_n``
or what fits ``token_budget``), and the kept ones come back in document order: grouped by
source document, the source holding the most certain passage first, and by position inside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence, Union

from .errors import InputError
from .models import model_and_tokenizer, model_lock
from .scoring import DEFAULT_METRIC, CertaintyScorer, MetricFn, PromptTemplate
from .segments import Segment
from .selection import Selection, token_counter

__all__ = ["CertaintyReranker", "Passage", "RankedPassage"]


@dataclass(frozen=True)
class Passage:
    """A retrieved passage: its text, the document it came from, and its position in that document."""

    text: str
    source: str = ""
    position: float = 0.0  # start character, chunk number, or any number that orders a document


@dataclass(frozen=True)
class RankedPassage:
    """A kept passage: ``index`` into the input list and its certainty score (lower = more certain)."""

    index: int
    score: float
    passage: Passage


class CertaintyReranker:
    """Keep the passages the model is most certain about when it reads each one with the question.

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
        metric: Union[str, MetricFn] = DEFAULT_METRIC,
        template: Union[str, PromptTemplate] = "plain",
        budget_tokenizer=None,
        batch_tokens: int = 4096,
        progress: bool | None = False,
    ) -> None:
        model, tokenizer = model_and_tokenizer(model, tokenizer, "CertaintyReranker")
        if top_n is None and token_budget is None:
            top_n = 3
        self.selection = Selection(top_k=top_n, token_budget=token_budget)
        self.scorer = CertaintyScorer(
            model, tokenizer, metric=metric, template=template, batch_tokens=batch_tokens, progress=progress
        )
        self.count: Callable[[str], int] = token_counter(budget_tokenizer or tokenizer)

    @property
    def metric(self) -> str:
        return self.scorer.metric_name

    def score(self, texts: Sequence[str], question: str) -> list[float]:
        """The certainty score of each text read with ``question`` (lower = more certain)."""
        with model_lock(self.scorer.model):
            return self.scorer.score(list(texts), question)  # checks the question, even for no texts

    def rerank(self, passages: Sequence[Union[Passage, str]], question: str) -> list[RankedPassage]:
        """Score ``passages`` against ``question``; return the kept ones in document order."""
        items = [p if isinstance(p, Passage) else Passage(_text(p, i)) for i, p in enumerate(passages)]
        scores = self.score([p.text for p in items], question)
        if not items:
            return []
        stand_ins = [Segment(i, p.source, 0, len(p.text), p.text, 0) for i, p in enumerate(items)]
        kept = self.selection.choose(stand_ins, scores, self.count)
        best: dict[str, float] = {}
        for i in kept:
            best[items[i].source] = min(best.get(items[i].source, float("inf")), scores[i])
        order = sorted(kept, key=lambda i: (best[items[i].source], items[i].source, items[i].position, i))
        return [RankedPassage(i, float(scores[i]), items[i]) for i in order]


def _text(value, index: int) -> str:
    if not isinstance(value, str):
        raise InputError(f"passage {index} is a {type(value).__name__}: pass strings or Passage objects")
    return value
