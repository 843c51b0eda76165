"""Certainty scoring: how sure is the model at the question, given one segment?

For every segment the scorer builds the sub-context ``template(segment, question)``, runs
the causal LM on it (batched, left-padded, similar lengths together) and reads the
next-token distributions at the question positions only: the LM head is applied to the
last ``question + 1`` positions, never to the whole sequence. A metric turns those
distributions into one number per segment; lower always means more relevant.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Sequence

import torch
from tqdm.auto import tqdm

from .attention.registry import policy_active
from .errors import ContextTooLongError, InputError, check_text
from .runtime import model_window
from .segments import Segment

__all__ = [
    "CertaintyScorer",
    "TokenStats",
    "PromptTemplate",
    "METRICS",
    "register_metric",
    "TEMPLATES",
]


# --------------------------------------------------------------------------- metrics
@dataclass(frozen=True)
class TokenStats:
    """What a metric reads: per-token statistics of one batch at the question positions.

    The question part is ``Q`` tokens (template words and the question's own words).
    ``nll[b, t]`` is the negative log-likelihood of question token ``t`` given segment ``b``;
    ``entropy[b, t]`` is the entropy of the next-token distribution after ``t`` tokens of the
    question part (``entropy[b, Q]`` is where the answer would start). ``own`` marks the
    question's own tokens, as opposed to the template's, and ``prior_nll`` / ``prior_entropy``
    are the same statistics with no segment at all (one pass per question), so that a metric
    can ask what a segment *adds*. All tensors are float32 except ``ids`` and ``own``.
    """

    nll: torch.Tensor  # (B, Q)
    entropy: torch.Tensor  # (B, Q + 1)
    ids: torch.Tensor  # (Q,) the question part's token ids
    own: torch.Tensor  # (Q,) bool: the question's own tokens
    prior_nll: torch.Tensor  # (Q,)
    prior_entropy: torch.Tensor  # (Q + 1,)

    def rows(self, index) -> "TokenStats":
        """The statistics of some rows only (a slice or a list of row indices)."""
        return TokenStats(self.nll[index], self.entropy[index], self.ids, self.own, self.prior_nll, self.prior_entropy)

    @property
    def own_or_all(self) -> torch.Tensor:
        """The question's own tokens, or every token where none could be told apart."""
        return self.own if bool(self.own.any()) else torch.ones_like(self.own)


# A metric maps TokenStats to (B,) scores, lower = more relevant.
MetricFn = Callable[[TokenStats], torch.Tensor]
METRICS: dict[str, MetricFn] = {}
# Chosen by the evidence-recall benchmark (README, "How the defaults were chosen").
DEFAULT_METRIC = "weighted_nll"


def register_metric(name: str, *, replace: bool = False) -> Callable[[MetricFn], MetricFn]:
    """Add a metric to the registry under ``name``.

    A metric takes a :class:`TokenStats` for a batch of segments and returns one score per
    segment (a tensor of shape ``(B,)``); lower scores must mean more relevant. A name that is
    already registered (the default metric's, say) is refused unless ``replace=True``.
    """
    if not isinstance(name, str) or not name:
        raise InputError("register_metric needs a non-empty name")

    def add(fn: MetricFn) -> MetricFn:
        if name in METRICS and not replace:
            raise InputError(f"a metric named {name!r} is already registered: choose another name, "
                             "or pass replace=True to replace it")
        METRICS[name] = fn
        return fn

    return add


def _entropy(logprobs: torch.Tensor) -> torch.Tensor:
    return -(logprobs.exp() * logprobs).sum(-1)


@register_metric("entropy_last")
def entropy_last(stats: TokenStats) -> torch.Tensor:
    """H(p_T): the entropy after the last question token, where the answer would start (XL3M)."""
    return stats.entropy[:, -1]


@register_metric("entropy_mean")
def entropy_mean(stats: TokenStats) -> torch.Tensor:
    """The mean entropy of the distributions at the question positions (after each question token)."""
    return stats.entropy[:, 1:].mean(-1)


@register_metric("question_nll")
def question_nll(stats: TokenStats) -> torch.Tensor:
    """The mean negative log-likelihood of the question part's tokens (template and question) given the segment."""
    return stats.nll.mean(-1)


@register_metric("own_nll")
def own_nll(stats: TokenStats) -> torch.Tensor:
    """The mean negative log-likelihood of the question's own tokens only (no template tokens)."""
    mask = stats.own_or_all
    return stats.nll[:, mask].mean(-1)


@register_metric("own_gain")
def own_gain(stats: TokenStats) -> torch.Tensor:
    """Minus the information the segment adds to the question: the mean, over the question's own
    tokens, of how much the segment lowers each token's NLL below its NLL with no segment,
    counting only the tokens it makes more likely."""
    mask = stats.own_or_all
    gain = (stats.prior_nll[mask] - stats.nll[:, mask]).clamp(min=0)
    return -gain.mean(-1)


@register_metric("weighted_nll")
def weighted_nll(stats: TokenStats) -> torch.Tensor:
    """The NLL of the question's own tokens, each weighted by its information with no segment
    (its NLL then), so that rare, telling words count more than function words."""
    mask = stats.own_or_all
    weights = stats.prior_nll[mask].clamp(min=0)
    weights = weights / weights.sum().clamp(min=1e-6)
    return (stats.nll[:, mask] * weights).sum(-1)


@dataclass(frozen=True)
class PreparedQuestion:
    """A question encoded once for a scorer, with its statistics when no segment precedes it.

    Get one from :meth:`CertaintyScorer.prepare`; every scoring method takes it in place of the
    question's text, so that a question asked of many segment batches is checked and encoded once.
    """

    text: str
    ids: list[int]
    own: torch.Tensor  # (Q,) bool
    prior_nll: torch.Tensor  # (Q,)
    prior_entropy: torch.Tensor  # (Q + 1,)
    scorer: object = field(default=None, repr=False, compare=False)  # the scorer that prepared it


def _metric_values(fn: MetricFn, stats: TokenStats, n: int) -> list[float]:
    values = fn(stats)
    name = getattr(fn, "__name__", fn)
    if not isinstance(values, torch.Tensor) or values.shape != (n,):
        raise InputError(
            f"the metric {name!r} must return a tensor of shape ({n},), one score "
            f"per segment; it returned {type(values).__name__}"
            + (f" of shape {tuple(values.shape)}" if isinstance(values, torch.Tensor) else "")
        )
    bad = (~torch.isfinite(values.float())).nonzero().flatten().tolist()
    if bad:
        raise InputError(
            f"the metric {name!r} returned a score that is not a finite number ({values[bad[0]].item()}) "
            f"for {len(bad)} of {n} segments; a selection cannot rank those: fix the metric"
        )
    return values.float().tolist()


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
    # LongLLMLingua's question-aware ranking (arXiv 2310.06839): the question and its
    # instruction read after the document; scored with question_nll, it is their perplexity.
    "longllmlingua": PromptTemplate(middle="\n\n", suffix=" We can get the answer to this question in the given documents."),
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
class CertaintyScorer:
    """Score segments by the model's certainty at a question (lower = more relevant).

    >>> scorer = CertaintyScorer(model, tokenizer)            # metric="weighted_nll"
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
        self._offsets = bool(getattr(tokenizer, "is_fast", False))
        # What precedes the question when there is no text at all: the end-of-text token.
        self._boundary = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else self.pad_id

    # ------------------------------------------------------------------ encoding
    def encode_question(self, question: str) -> list[int]:
        """The question part's token ids (template and question), checked against the window."""
        return self._encode_question(question)[0]

    def _encode_question(self, question: str) -> tuple[list[int], list[bool]]:
        if not isinstance(question, str) or not question.strip():
            raise InputError("the question is empty: pass the question to score the segments against")
        check_text(question, "the question")
        part = self.template.question_part(question)
        encoded = self.tokenizer(part, add_special_tokens=False, return_offsets_mapping=self._offsets)
        ids = encoded["input_ids"]
        if self.window is not None and len(ids) + len(self.bos) + 8 > self.window:
            raise ContextTooLongError(
                f"the question takes {len(ids)} tokens with its template, but the scoring model's "
                f"window is {self.window}: shorten the question (it should say what to look for, "
                "not carry the context)"
            )
        begin = len(self.template.middle)
        end = begin + len(question)
        if self._offsets:
            own = [a < end and b > begin for a, b in encoded["offset_mapping"]]
        else:  # a slow tokenizer gives no offsets: every token counts as the question's own
            own = [True] * len(ids)
        return ids, own

    def encode_segment(self, text: str, question_len: int) -> list[int]:
        """The token ids a segment is read as. An empty segment (or passage) is read as nothing at
        all: the question alone, after a document boundary, so it scores as what no text adds."""
        ids = self.bos + self.tokenizer(self.template.prefix + text, add_special_tokens=False)["input_ids"]
        if not ids:
            ids = [self._boundary]
        if self.window is not None and len(ids) + question_len > self.window:
            raise ContextTooLongError(
                f"a segment of {len(ids)} tokens plus the question ({question_len}) exceeds the "
                f"scoring model's window ({self.window}): use a smaller segment_tokens"
            )
        return ids

    def prepare(self, question: "str | PreparedQuestion") -> "PreparedQuestion":
        """Check and encode ``question`` once, and read it with no segment before it (one short pass)."""
        if isinstance(question, PreparedQuestion):
            if question.scorer is not self:
                raise InputError("this PreparedQuestion was prepared by another scorer: prepare it with this one")
            return question
        ids, own = self._encode_question(question)
        empty = self.encode_segment("", len(ids))  # no BOS and no prefix: the end-of-text token
        nll, entropy = self._question_stats([empty], ids)
        return PreparedQuestion(question, ids, torch.tensor(own, dtype=torch.bool), nll[0], entropy[0], self)

    # ------------------------------------------------------------------- scoring
    def score(self, segments: Iterable[Segment | str], question: "str | PreparedQuestion") -> list[float]:
        """One score per segment, in input order."""
        return [score for _, score in self.iter_scores(segments, question)]

    def iter_scores(
        self, segments: Iterable[Segment | str], question: "str | PreparedQuestion", *, total: int | None = None
    ) -> Iterator[tuple[Segment | str, float]]:
        """Yield ``(segment, score)`` in input order, scoring a window of segments at a time.

        Within a window, rows are sorted by length so that a batch pads little; the
        order of the input fixes the batches, so the same input gives the same scores.
        """
        q = self.prepare(question)
        bar = self._progress_bar(total)
        try:
            for window in self._windows(segments, len(q.ids)):
                stats = self._window_stats(window, q, bar)
                scores = _metric_values(self.metric, stats, len(window))
                yield from zip((segment for segment, _ in window), scores)
        finally:
            if bar is not None:
                bar.close()

    def token_stats(self, segments: Iterable[Segment | str], question: "str | PreparedQuestion") -> TokenStats:
        """The per-token statistics of every segment (rows in input order), from one pass each.

        Any metric can be computed from them afterwards: ``METRICS[name](stats)``.
        """
        q = self.prepare(question)
        parts = [self._window_stats(window, q) for window in self._windows(segments, len(q.ids))]
        if not parts:
            return TokenStats(torch.zeros(0, len(q.ids)), torch.zeros(0, len(q.ids) + 1), torch.tensor(q.ids),
                              q.own, q.prior_nll, q.prior_entropy)
        return TokenStats(torch.cat([p.nll for p in parts]), torch.cat([p.entropy for p in parts]),
                          parts[0].ids, q.own, q.prior_nll, q.prior_entropy)

    def score_metrics(
        self, segments: Iterable[Segment | str], question: "str | PreparedQuestion", metrics: Iterable[str | MetricFn]
    ) -> dict[str, list[float]]:
        """Several metrics from one forward pass per batch: ``{metric name: scores in input order}``.

        Costs the same as :meth:`score`; use it to compare metrics on the same segments.
        """
        resolved = dict(resolve_metric(m) for m in metrics)
        if not resolved:
            raise InputError("pass at least one metric to score_metrics")
        stats = self.token_stats(segments, question)
        return {name: _metric_values(fn, stats, stats.nll.shape[0]) for name, fn in resolved.items()}

    def _windows(self, segments: Iterable[Segment | str], question_len: int) -> Iterator[list]:
        """The input, encoded, in windows of ``(segment, ids)`` of up to 16 batches each."""
        window: list[tuple[Segment | str, list[int]]] = []
        if isinstance(segments, (str, bytes)):
            raise InputError("pass a list of segments (strings or Segments), not one string")
        for number, segment in enumerate(segments):
            text = segment.text if isinstance(segment, Segment) else check_text(segment, f"passage {number}")
            window.append((segment, self.encode_segment(text, question_len)))
            if len(window) >= 16 * self.max_batch_size:
                yield window
                window = []
        if window:
            yield window

    def _window_stats(self, window, q: "PreparedQuestion", bar=None) -> TokenStats:
        """The statistics of one window of (segment, ids), rows in window order."""
        order = sorted(range(len(window)), key=lambda i: (len(window[i][1]), i))
        nll = torch.empty(len(window), len(q.ids))
        entropy = torch.empty(len(window), len(q.ids) + 1)
        for batch in self._batches(order, window, len(q.ids)):
            rows = [window[i][1] for i in batch]
            nll[batch], entropy[batch] = self._question_stats(rows, q.ids)
            if bar is not None:
                bar.update(sum(len(r) + len(q.ids) for r in rows))
        return TokenStats(nll, entropy, torch.tensor(q.ids), q.own, q.prior_nll, q.prior_entropy)

    def batch_plan(self, segment_lengths: Sequence[int], question_len: int) -> list[list[int]]:
        """How the scorer batches segments of these token lengths (indices into them), shortest first.

        For comparing the scorer with a plain forward pass over the very same batches.
        """
        order = sorted(range(len(segment_lengths)), key=lambda i: (segment_lengths[i], i))
        rows = [(None, [0] * n) for n in segment_lengths]
        return list(self._batches(order, rows, question_len))

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

    @torch.inference_mode()
    def _question_stats(self, rows: Sequence[list[int]], question_ids: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """NLL of each question token (B, Q) and entropy at each question position (B, Q + 1), float32 on CPU."""
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
        with policy_active(self.model, None):  # the model's lock, and its plain attention
            out = self.model(
                input_ids=input_ids.to(device),
                attention_mask=mask.to(device),
                position_ids=positions.to(device),
                logits_to_keep=q + 1,
                use_cache=False,
            )
        logits = out.logits  # (B, q + 1, V)
        targets = torch.tensor(question_ids, device=logits.device).unsqueeze(-1)  # (q, 1)
        nll = torch.empty(len(full), q)
        entropy = torch.empty(len(full), q + 1)
        for b in range(len(full)):  # a row at a time: the vocabulary-sized float32 copies stay one row big
            logprobs = torch.log_softmax(logits[b].float(), dim=-1)  # (q + 1, V)
            nll[b] = -logprobs[:-1].gather(-1, targets).squeeze(-1).cpu()
            entropy[b] = _entropy(logprobs).cpu()
        return nll, entropy

    def _progress_bar(self, total: int | None):
        show = self.progress if self.progress is not None else sys.stderr.isatty()
        if not show:
            return None

        return tqdm(total=total, unit="tok", desc=f"scoring ({self.metric_name})", leave=False)
