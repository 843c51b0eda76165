"""LongContextReader: the XL3M pipeline, segments -> certainty scores -> key context -> answer."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from .errors import InputError
from .fusion import DEFAULT_SIGNALS, fuse_signals, method_label, resolve_signals, validate_signals
from .llm import LongContextLM
from .models import model_and_tokenizer, model_lock
from .scoring import DEFAULT_METRIC, CertaintyScorer, MetricFn, PromptTemplate
from .segments import Context, Segmenter
from .selection import KeyContext, Selection, select_key_context, token_counter

__all__ = ["LongContextReader", "Answer"]

DEFAULT_SEGMENT_TOKENS = 512
DEFAULT_TOKEN_BUDGET = 1536
DEFAULT_SELECTION = Selection(token_budget=DEFAULT_TOKEN_BUDGET)

# The question goes before and after the text: small models (SmolLM2-135M) answer from the
# text far more often that way (9/10 against 1/10 with the question after only, on 10
# passkey key contexts at 8k; see README, "How the defaults were chosen").
ANSWER_PROMPT = "Answer the question from the text.\nQuestion: {question}\n\nText:\n{context}\n\nQuestion: {question}"


@dataclass
class Answer:
    """The reader's answer, the key context it was read from, and where the time went."""

    text: str
    key_context: KeyContext
    seconds: dict = field(default_factory=dict)
    prompt_tokens: int = 0

    def __str__(self) -> str:
        return self.text


class LongContextReader:
    """Read a context far longer than the model's window and answer a question about it.

    >>> reader = LongContextReader()                   # the embedded default model
    >>> reader.answer(Path("book.txt"), "Who wrote the letter?").text

    Scoring uses ``model``; answering uses ``answer_lm`` (a LongContextLM, possibly with
    SelfExtend or LM-Infinite) or, by default, the scoring model itself.
    """

    def __init__(
        self,
        model=None,
        tokenizer=None,
        *,
        answer_lm: LongContextLM | None = None,
        metric: str | MetricFn = DEFAULT_METRIC,
        template: str | PromptTemplate = "plain",
        signals: tuple[str, ...] = DEFAULT_SIGNALS,
        segment_tokens: int = DEFAULT_SEGMENT_TOKENS,
        overlap_tokens: int = 0,
        top_k: int | None = None,
        token_budget: int | None = None,
        threshold: float | None = None,
        budget_tokenizer=None,
        batch_tokens: int = 4096,
        max_new_tokens: int = 64,
        encoding_errors: str = "strict",
        extend: str | None = "selfextend",
        progress: bool | None = None,
    ) -> None:
        if extend not in ("selfextend", None):
            raise InputError("extend must be 'selfextend' (read a long key context with SelfExtend) or None (refuse it)")
        self.signals = _check_signals(signals, threshold)
        model, tokenizer = model_and_tokenizer(model, tokenizer, "LongContextReader")
        self.selection = Selection.of(top_k, token_budget, threshold, default=DEFAULT_SELECTION)
        token_budget = self.selection.token_budget
        if token_budget is not None and token_budget < segment_tokens // 2:
            raise InputError(
                f"token_budget={token_budget} cannot hold one segment of about {segment_tokens} "
                f"tokens: raise token_budget or lower segment_tokens (to at most {2 * token_budget})"
            )
        self.segmenter = Segmenter(tokenizer, segment_tokens, overlap_tokens, encoding_errors=encoding_errors)
        self.scorer = CertaintyScorer(
            model, tokenizer, metric=metric, template=template, batch_tokens=batch_tokens, progress=progress
        )
        self.answer_lm = answer_lm or LongContextLM(model, tokenizer, max_new_tokens=max_new_tokens)
        self.max_new_tokens = max_new_tokens
        self.extend = extend
        self.count: Callable[[str], int] = token_counter(budget_tokenizer or self.answer_lm.tokenizer)

    @classmethod
    def from_pretrained(cls, name_or_path=None, *, device="auto", dtype="auto", **kwargs) -> "LongContextReader":
        from .models import load_model

        _check_signals(kwargs.get("signals", DEFAULT_SIGNALS), kwargs.get("threshold"), resolve=False)  # before the slow load
        model, tokenizer = load_model(name_or_path, device=device, dtype=dtype)
        return cls(model, tokenizer, **kwargs)

    @property
    def method(self) -> str:
        """How segments are scored: the certainty metric, or ``rrf(...)`` of the fused signals."""
        return method_label(self.signals, self.scorer.metric_name)

    def select(self, context: Context, question: str, *, selection: Selection | None = None) -> KeyContext:
        """Score every segment of ``context`` against ``question``; return the key context.

        Each signal (the model's certainty, BM25, the sentence embedder) scores every segment;
        with more than one, their rankings are fused by reciprocal rank (``entropy_retriever.fusion``).
        ``selection`` replaces the reader's own (``Selection(top_k=...)`` etc.) for this call.
        """
        selection = self.selection if selection is None else selection
        if not isinstance(selection, Selection):
            raise InputError(f"selection must be a Selection(top_k=..., token_budget=... or threshold=...), got {selection!r}")
        if selection.threshold is not None and self.signals != ("certainty",):
            _check_signals(self.signals, selection.threshold, resolve=False)
        with model_lock(self.scorer.model):
            # Check and encode the question once, before reading anything.
            prepared = self.scorer.prepare(question) if "certainty" in self.signals else self.scorer.encode_question(question)
            started = time.perf_counter()
            segments = list(self.segmenter.split(context))
            split_s = time.perf_counter() - started
            certainty = self.scorer.score(segments, prepared) if "certainty" in self.signals else None
        scored = fuse_signals([s.text for s in segments], question, self.signals, certainty)
        key = select_key_context(
            segments, scored.fused, selection, count=self.count,
            metric=self.method, question=question, signals=scored.signals, relevance=scored.relevance,
        )
        key.meta.update(
            n_segments=len(segments),
            context_tokens=sum(s.n_tokens for s in segments),
            split_seconds=split_s,
            score_seconds=time.perf_counter() - started - split_s,
        )
        return key

    def answer_messages(self, key: KeyContext, question: str) -> list[dict]:
        return [{"role": "user", "content": ANSWER_PROMPT.format(question=question, context=key.text)}]

    def answer(self, context: Context, question: str, *, max_new_tokens: int | None = None) -> Answer:
        """Select the key context, then answer ``question`` from it."""
        started = time.perf_counter()
        key = self.select(context, question)
        selected = time.perf_counter()
        out = self._generate(self.answer_messages(key, question), max_new_tokens or self.max_new_tokens)
        done = time.perf_counter()
        return Answer(
            text=out.text,
            key_context=key,
            seconds={"select": selected - started, "answer": done - selected, "total": done - started},
            prompt_tokens=out.prompt_tokens,
        )

    def _generate(self, messages: list[dict], max_new_tokens: int):
        """Answer; a prompt beyond the answering window is read with SelfExtend for this call only."""
        lm = self.answer_lm
        ids = lm.chat_prompt(messages)
        needed = len(ids) + max_new_tokens
        if needed <= lm.context_window or lm.policy is not None or self.extend is None or lm.trained_window is None:
            return lm.generate_ids(ids, max_new_tokens)  # fits, or check_fits explains what to do
        from .attention import choose_group_size

        extended = LongContextLM(lm.model, lm.tokenizer, choose_group_size(needed, lm.trained_window))
        return extended.generate_ids(ids, max_new_tokens)  # the policy is on for this call only


def _check_signals(signals, threshold, *, resolve: bool = True) -> tuple[str, ...]:
    """The signals, checked (and, with ``resolve``, 'dense' dropped with a warning when not installed)."""
    signals = resolve_signals(signals) if resolve else validate_signals(signals)
    if threshold is not None and signals != ("certainty",):
        raise InputError(
            "threshold compares certainty scores, so it needs signals=('certainty',); with fused "
            "signals, choose top_k or token_budget"
        )
    return signals
