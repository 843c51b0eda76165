"""Certainty scoring: how sure is the model at the question, given one segment?

For every segment the scorer builds the sub-context ``template(segment, question)``, runs
the causal LM on it (batched, left-padded, similar lengths together) and reads the
next-token distributions at the question positions only: the LM head is applied to the
last ``question + 1`` positions, never to the whole sequence. A metric turns those
distributions into one number per segment; lower always means more relevant.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Sequence

import torch

from .errors import ContextTooLongError, InputError
from .segments import Segment

__all__ = [
    "CertaintyScorer",
    "PromptTemplate",
    "METRICS",
    "register_metric",
    "TEMPLATES",
]


# --------------------------------------------------------------------------- metrics
# A metric takes the float32 log-probabilities at the question positions, shape
# (B, Q + 1, V): row t predicts question token t (t < Q); row Q is the distribution
# after the last question token, where the answer would start. It also takes the
# question token ids (B, Q). It returns (B,) scores, lower = more relevant.
MetricFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
METRICS: dict[str, MetricFn] = {}
# Chosen by the evidence-recall benchmark (README, "How the defaults were chosen").
DEFAULT_METRIC = "question_nll"


def register_metric(name: str) -> Callable[[MetricFn], MetricFn]:
    """Add a metric to the registry under ``name`` (lower scores must mean more relevant)."""

    def add(fn: MetricFn) -> MetricFn:
        METRICS[name] = fn
        return fn

    return add


def _entropy(logprobs: torch.Tensor) -> torch.Tensor:
    return -(logprobs.exp() * logprobs).sum(-1)


@register_metric("entropy_last")
def entropy_last(logprobs: torch.Tensor, question_ids: torch.Tensor) -> torch.Tensor:
    """H(p_T): the entropy after the last question token."""
    return _entropy(logprobs[:, -1])


@register_metric("entropy_mean")
def entropy_mean(logprobs: torch.Tensor, question_ids: torch.Tensor) -> torch.Tensor:
    """The mean entropy of the distributions at the question positions (after each question token)."""
    return _entropy(logprobs[:, 1:]).mean(-1)


@register_metric("question_nll")
def question_nll(logprobs: torch.Tensor, question_ids: torch.Tensor) -> torch.Tensor:
    """The mean negative log-likelihood of the question tokens given the segment."""
    predicted = logprobs[:, :-1].gather(-1, question_ids.unsqueeze(-1)).squeeze(-1)
    return -predicted.mean(-1)


def resolve_metric(metric: str | MetricFn) -> tuple[str, MetricFn]:
    if callable(metric):
        return getattr(metric, "__name__", "custom"), metric
    try:
        return metric, METRICS[metric]
    except KeyError:
        raise InputError(
            f"unknown metric {metric!r}: choose one of {sorted(METRICS)} "
            "or register your own with entropy_retriever.register_metric"
        ) from None


# ------------------------------------------------------------------------- templates
@dataclass(frozen=True)
class PromptTemplate:
    """A sub-context is ``prefix + segment + middle + question + suffix``.

    Everything after the segment is the *question part*: it is tokenised once, on its
    own, so that its tokens are identical for every segment and sit at the same
    (last) positions of every row of a left-padded batch.
    """

    prefix: str = ""
    middle: str = "\n\nQuestion: "
    suffix: str = "\nAnswer:"

    def question_part(self, question: str) -> str:
        return self.middle + question + self.suffix


TEMPLATES: dict[str, PromptTemplate] = {
    "plain": PromptTemplate(),
    "bare": PromptTemplate(middle="\n", suffix=""),
}


def chat_template_for(tokenizer, instruction: str = "") -> PromptTemplate:
    """A template that wraps ``segment + question`` in the tokenizer's chat template."""
    if not getattr(tokenizer, "chat_template", None):
        raise InputError(
            "template='chat' needs a tokenizer with a chat template; use template='plain'"
        )
    marker_s, marker_q = "\x00SEGMENT\x00", "\x00QUESTION\x00"
    content = f"{instruction}{marker_s}\n\nQuestion: {marker_q}"
    rendered = tokenizer.apply_chat_template(
        [{"role": "user", "content": content}], tokenize=False, add_generation_prompt=True
    )
    before, rest = rendered.split(marker_s)
    middle, after = rest.split(marker_q)
    return PromptTemplate(prefix=before, middle=middle, suffix=after)


def resolve_template(template: str | PromptTemplate, tokenizer) -> PromptTemplate:
    if isinstance(template, PromptTemplate):
        return template
    if template == "chat":
        return chat_template_for(tokenizer)
    try:
        return TEMPLATES[template]
    except KeyError:
        raise InputError(
            f"unknown template {template!r}: choose 'chat', one of {sorted(TEMPLATES)}, "
            "or pass a PromptTemplate"
        ) from None


# ---------------------------------------------------------------------------- scorer
def model_window(model) -> int | None:
    """The number of positions the model was trained on, if its config says."""
    config = getattr(model, "config", None)
    config = getattr(config, "get_text_config", lambda: config)()
    return getattr(config, "max_position_embeddings", None)


class CertaintyScorer:
    """Score segments by the model's certainty at a question (lower = more relevant).

    >>> scorer = CertaintyScorer(model, tokenizer)            # metric="question_nll"
    >>> scores = scorer.score(segments, "What is the pass key?")
    """

    def __init__(
        self,
        model,
        tokenizer,
        *,
        metric: str | MetricFn = DEFAULT_METRIC,
        template: str | PromptTemplate = "plain",
        batch_tokens: int = 4096,
        max_batch_size: int = 16,
        progress: bool | None = None,
    ) -> None:
        if batch_tokens < 1 or max_batch_size < 1:
            raise InputError("batch_tokens and max_batch_size must be positive integers")
        self.model = model
        self.tokenizer = tokenizer
        self.metric_name, self.metric = resolve_metric(metric)
        self.template = resolve_template(template, tokenizer)
        self.batch_tokens = batch_tokens
        self.max_batch_size = max_batch_size
        self.progress = progress
        self.window = model_window(model)
        pad = tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else tokenizer.eos_token_id
        if self.pad_id is None:
            self.pad_id = 0
        bos = tokenizer.bos_token_id
        # Prepend BOS only where the tokenizer itself would (Llama-style tokenizers do).
        probe = tokenizer("x")["input_ids"]
        self.bos = [bos] if bos is not None and probe and probe[0] == bos else []

    # ------------------------------------------------------------------ encoding
    def encode_question(self, question: str) -> list[int]:
        if not isinstance(question, str) or not question.strip():
            raise InputError("the question is empty: pass the question to score the segments against")
        ids = self.tokenizer(self.template.question_part(question), add_special_tokens=False)["input_ids"]
        if self.window is not None and len(ids) + len(self.bos) + 8 > self.window:
            raise ContextTooLongError(
                f"the question takes {len(ids)} tokens with its template, but the scoring model's "
                f"window is {self.window}: shorten the question (it should say what to look for, "
                "not carry the context)"
            )
        return ids

    def encode_segment(self, text: str, question_len: int) -> list[int]:
        ids = self.bos + self.tokenizer(self.template.prefix + text, add_special_tokens=False)["input_ids"]
        if self.window is not None and len(ids) + question_len > self.window:
            raise ContextTooLongError(
                f"a segment of {len(ids)} tokens plus the question ({question_len}) exceeds the "
                f"scoring model's window ({self.window}): use a smaller segment_tokens"
            )
        return ids

    # ------------------------------------------------------------------- scoring
    def score(self, segments: Iterable[Segment | str], question: str) -> list[float]:
        """One score per segment, in input order."""
        return [score for _, score in self.iter_scores(segments, question)]

    def iter_scores(
        self, segments: Iterable[Segment | str], question: str, *, total: int | None = None
    ) -> Iterator[tuple[Segment | str, float]]:
        """Yield ``(segment, score)`` in input order, scoring a window of segments at a time.

        Within a window, rows are sorted by length so that a batch pads little; the
        order of the input fixes the batches, so the same input gives the same scores.
        """
        question_ids = self.encode_question(question)
        bar = self._progress_bar(total)
        try:
            for window in self._windows(segments, len(question_ids)):
                yield from self._score_window(window, question_ids, bar)
        finally:
            if bar is not None:
                bar.close()

    def _windows(self, segments: Iterable[Segment | str], question_len: int) -> Iterator[list]:
        """The input, encoded, in windows of ``(segment, ids)`` of up to 16 batches each."""
        window: list[tuple[Segment | str, list[int]]] = []
        for segment in segments:
            text = segment.text if isinstance(segment, Segment) else segment
            window.append((segment, self.encode_segment(text, question_len)))
            if len(window) >= 16 * self.max_batch_size:
                yield window
                window = []
        if window:
            yield window

    def _score_window(self, window, question_ids, bar) -> Iterator[tuple[Segment | str, float]]:
        values = self._window_values(window, question_ids, {self.metric_name: self.metric}, bar)
        yield from zip((segment for segment, _ in window), values[self.metric_name])

    def _window_values(self, window, question_ids, metrics: dict, bar=None) -> dict[str, list[float]]:
        """Every metric's scores for one window of (segment, ids), in window order."""
        order = sorted(range(len(window)), key=lambda i: (len(window[i][1]), i))
        values = {name: [math.nan] * len(window) for name in metrics}
        for batch in self._batches(order, window, len(question_ids)):
            rows = [window[i][1] for i in batch]
            logprobs, targets = self._question_logprobs(rows, question_ids)
            for name, fn in metrics.items():
                for i, value in zip(batch, fn(logprobs, targets).tolist()):
                    values[name][i] = value
            if bar is not None:
                bar.update(sum(len(r) + len(question_ids) for r in rows))
        return values

    def _batches(self, order: list[int], window, question_len: int) -> Iterator[list[int]]:
        batch: list[int] = []
        longest = 0
        for i in order:
            length = len(window[i][1]) + question_len
            if batch and (
                max(longest, length) * (len(batch) + 1) > self.batch_tokens
                or len(batch) >= self.max_batch_size
            ):
                yield batch
                batch, longest = [], 0
            batch.append(i)
            longest = max(longest, length)
        if batch:
            yield batch

    def score_metrics(
        self, segments: Iterable[Segment | str], question: str, metrics: Iterable[str | MetricFn]
    ) -> dict[str, list[float]]:
        """Several metrics from one forward pass per batch: ``{metric name: scores in input order}``.

        Costs the same as :meth:`score`; use it to compare metrics on the same segments.
        """
        resolved = dict(resolve_metric(m) for m in metrics)
        if not resolved:
            raise InputError("pass at least one metric to score_metrics")
        question_ids = self.encode_question(question)
        out: dict[str, list[float]] = {name: [] for name in resolved}
        for window in self._windows(segments, len(question_ids)):
            for name, values in self._window_values(window, question_ids, resolved).items():
                out[name].extend(values)
        return out

    def score_token_rows(self, rows: Sequence[list[int]], question_ids: list[int]) -> list[float]:
        """Score pre-tokenised segments (each without the question) against ``question_ids``."""
        logprobs, targets = self._question_logprobs(rows, question_ids)
        return self.metric(logprobs, targets).tolist()

    @torch.inference_mode()
    def _question_logprobs(self, rows: Sequence[list[int]], question_ids: list[int]):
        """Log-probabilities at the question positions (B, Q + 1, V) and the question ids (B, Q)."""
        q = len(question_ids)
        full = [r + question_ids for r in rows]
        length = max(len(r) for r in full)
        device = self.model.device
        input_ids = torch.full((len(full), length), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(full), length), dtype=torch.long)
        for b, r in enumerate(full):  # left padding: the question ends every row
            input_ids[b, length - len(r):] = torch.tensor(r)
            mask[b, length - len(r):] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        out = self.model(
            input_ids=input_ids.to(device),
            attention_mask=mask.to(device),
            position_ids=positions.to(device),
            logits_to_keep=q + 1,
            use_cache=False,
        )
        logprobs = torch.log_softmax(out.logits.float(), dim=-1)  # (B, q + 1, V)
        targets = torch.tensor(question_ids, device=logprobs.device).expand(len(full), q)
        return logprobs, targets

    def _progress_bar(self, total: int | None):
        show = self.progress if self.progress is not None else sys.stderr.isatty()
        if not show:
            return None
        from tqdm.auto import tqdm

        return tqdm(total=total, unit="tok", desc=f"scoring ({self.metric_name})", leave=False)
