"""LongContextReader: the XL3M pipeline, segments -> certainty scores -> key context -> answer."""

from __future__ import annotations

import os
import sys
import time
from array import array
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .errors import InputError, check_positive
from .fusion import (
    BM25,
    DEFAULT_SIGNALS,
    DenseEmbedder,
    method_label,
    resolve_signals,
    rrf_array,
    validate_signals,
)
from .llm import LongContextLM
from .models import model_and_tokenizer, model_lock
from .scoring import DEFAULT_METRIC, CertaintyScorer, MetricFn, PromptTemplate
from .segments import Context, Document, Segment, Segmenter
from .selection import (
    GAP,
    KeyContext,
    Selection,
    build_spans,
    join_spans,
    token_counter,
)
from .streaming import (
    Journal,
    SegmentRecords,
    SegmentTable,
    Shard,
    digest,
    model_identity,
    rank_path,
    read_spans,
    release_memory,
)

__all__ = ["LongContextReader", "Answer"]

DEFAULT_SEGMENT_TOKENS = 512
DEFAULT_TOKEN_BUDGET = 1536
DEFAULT_SELECTION = Selection(token_budget=DEFAULT_TOKEN_BUDGET)
# A threshold keeps every segment scored at or below it; past this many, the key context would be
# the input itself, so it is refused (top_k and token_budget are bounded by construction).
MAX_THRESHOLD_SEGMENTS = 4096

# The question goes before and after the text: small models (SmolLM2-135M) answer from the
# text far more often that way (9/10 against 1/10 with the question after only, on 10
# passkey key contexts at 8k; see README, "How the defaults were chosen").
ANSWER_PROMPT = "Answer the question from the text.\nQuestion: {question}\n\nText:\n{context}\n\nQuestion: {question}"
# When the question twice would not fit the model's window (a long question), it goes in once.
ANSWER_PROMPT_ONCE = "Answer the question from the text.\nQuestion: {question}\n\nText:\n{context}\n\nAnswer the question above."


@dataclass
class Answer:
    """The reader's answer, the key context it was read from, and where the time went."""

    text: str
    key_context: KeyContext
    seconds: dict = field(default_factory=dict)
    prompt_tokens: int = 0

    def __str__(self) -> str:
        return self.text

    def quotes(self, n: int = 2):
        """Up to ``n`` sentences of the key context that support the answer (sharing its rarer words),
        each with its source and line: where to check a doubtful answer. None found means that
        nothing in the key context backs the answer. See :mod:`entropy_retriever.evidence`."""
        from .evidence import supporting_sentences

        return supporting_sentences(self.text, self.key_context, self.key_context.question, n=n)


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
        distributed: bool | None = None,
    ) -> None:
        _check_options(
            metric=metric, template=template, signals=signals, segment_tokens=segment_tokens,
            overlap_tokens=overlap_tokens, top_k=top_k, token_budget=token_budget, threshold=threshold,
            batch_tokens=batch_tokens, max_new_tokens=max_new_tokens, encoding_errors=encoding_errors,
            extend=extend, distributed=distributed,
        )
        self.signals = _check_signals(signals, threshold)
        model, tokenizer = model_and_tokenizer(model, tokenizer, "LongContextReader")
        self.selection = Selection.of(top_k, token_budget, threshold, default=DEFAULT_SELECTION)
        self.segmenter = Segmenter(tokenizer, segment_tokens, overlap_tokens, encoding_errors=encoding_errors)
        self.scorer = CertaintyScorer(
            model, tokenizer, metric=metric, template=template, batch_tokens=batch_tokens, progress=False
        )
        self.progress = progress
        self.distributed = distributed
        # Segments scored, and journaled, together: 4 batches' worth, so a checkpoint is flushed often.
        self.window_segments = 4 * self.scorer.max_batch_size
        self.answer_lm = answer_lm or LongContextLM(model, tokenizer, max_new_tokens=max_new_tokens)
        self.max_new_tokens = max_new_tokens
        self.extend = extend
        self.count: Callable[[str], int] = token_counter(budget_tokenizer or self.answer_lm.tokenizer)
        # The budget is counted in the segmenter's own tokenizer unless told otherwise: reuse its counts.
        self._budget_is_segment_tokens = budget_tokenizer is None and self.answer_lm.tokenizer is tokenizer

    @classmethod
    def from_pretrained(cls, name_or_path=None, *, device="auto", dtype="auto", **kwargs) -> "LongContextReader":
        from .models import load_model

        _check_options(**kwargs)  # every option is checked before the slow load
        model, tokenizer = load_model(name_or_path, device=device, dtype=dtype)
        return cls(model, tokenizer, **kwargs)

    @property
    def method(self) -> str:
        """How segments are scored: the certainty metric, or ``rrf(...)`` of the fused signals."""
        return method_label(self.signals, self.scorer.metric_name)

    def select(
        self,
        context: Context,
        question: str,
        *,
        selection: Selection | None = None,
        checkpoint: str | os.PathLike | None = None,
    ) -> KeyContext:
        """Score every segment of ``context`` against ``question``; return the key context.

        Each signal (the model's certainty, BM25, the sentence embedder) scores every segment;
        with more than one, their rankings are fused by reciprocal rank (``entropy_retriever.fusion``).
        ``selection`` replaces the reader's own (``Selection(top_k=...)`` etc.) for this call.

        Memory does not grow with the input beyond a record of a few tens of bytes per segment
        (``entropy_retriever.streaming``): the kept spans are read again from the source at the
        end. ``checkpoint`` names a journal file: scores are appended to it as they are computed,
        and a run given the same journal resumes where an interrupted one stopped. Under an
        initialised torch.distributed process group each rank scores its share of the segments.
        """
        selection = self.selection if selection is None else selection
        if not isinstance(selection, Selection):
            raise InputError(f"selection must be a Selection(top_k=..., token_budget=... or threshold=...), got {selection!r}")
        if selection.threshold is not None and self.signals != ("certainty",):
            _check_signals(self.signals, selection.threshold, resolve=False)
        if isinstance(context, (bytes, bytearray)):
            raise InputError("the context is bytes: decode it to a string first (data.decode('utf-8')), or pass the file's pathlib.Path")
        if not isinstance(context, (str, os.PathLike, Document)):
            if not hasattr(context, "__iter__"):
                raise InputError(
                    f"cannot read a context of type {type(context).__name__}: pass a string, "
                    "a pathlib.Path, a Document, or an iterable of those"
                )
            context = list(context)  # read twice: to score, then to fetch the kept spans
        elif isinstance(context, str):
            _warn_if_path(context)
        shard = Shard.current(self.distributed)
        started = time.perf_counter()
        with model_lock(self.scorer.model):
            # Check and encode the question once, before reading anything.
            prepared = self.scorer.prepare(question) if "certainty" in self.signals else self.scorer.encode_question(question)
            records, bm25 = self._score_all(context, question, prepared, shard, checkpoint)
        scored_at = time.perf_counter()
        per_segment = [s for s in self.signals if s != "bm25"]
        shard.gather(records, per_segment)
        values: dict[str, array] = {}
        for name in self.signals:
            values[name] = bm25.score_array() if name == "bm25" else records.scores[name]
        bm25 = None  # its term counts are no longer needed
        for name in per_segment:
            if np.isnan(np.frombuffer(values[name], dtype=np.float64)).any():
                raise RuntimeError(f"some segments have no {name} score after scoring: this is a bug, please report it")
        # Arrays of 8 bytes a segment from here on: a 20M-token input has some 40k segments.
        fused = np.frombuffer(values[self.signals[0]], dtype=np.float64) if len(self.signals) == 1 else rrf_array(list(values.values()))
        ranked_rrf = rrf_array([fused]) if len(self.signals) == 1 else fused
        best = float(ranked_rrf.min()) if len(ranked_rrf) else 1.0
        sizes = records.budget_tokens if selection.token_budget is not None else None
        kept = selection.choose_sizes(sizes, fused, self.count(GAP) if sizes is not None else 0)
        if selection.threshold is not None and len(kept) > MAX_THRESHOLD_SEGMENTS:
            raise InputError(
                f"threshold={selection.threshold} keeps {len(kept)} segments, more than the "
                f"{MAX_THRESHOLD_SEGMENTS} a key context may hold: lower the threshold, or use top_k or token_budget"
            )
        if not kept and len(fused):
            key_empty = (
                f"{selection.describe()} keeps no segment: the best score is {float(fused.min()):.4f} "
                "(lower is more relevant); raise the threshold above it, or choose top_k or token_budget"
            )
        else:
            key_empty = None
        order = sorted(kept)
        spans = build_spans(self._kept_segments(context, records, kept), [float(fused[i]) for i in order],
                            [float(ranked_rrf[i]) / best for i in order])
        key = KeyContext(text=join_spans(spans), spans=spans, segments=SegmentTable(records, fused, kept, values),
                         metric=self.method, question=question)
        key.n_tokens = self.count(key.text)
        key.meta.update(
            n_segments=len(records),
            context_tokens=sum(records.n_tokens),
            score_seconds=scored_at - started,
            record_bytes=records.nbytes(),
            ranks=shard.size,
        )
        if key_empty:
            key.meta["empty"] = key_empty  # answer() refuses such a key context with this reason
        return key

    def _score_all(self, context, question: str, prepared, shard: Shard, checkpoint):
        """Stream the segments; score this rank's share a window at a time; keep records, not text."""
        per_segment = [s for s in self.signals if s != "bm25"]
        records = SegmentRecords(per_segment)
        bm25 = BM25(question) if "bm25" in self.signals else None
        journal = Journal(rank_path(checkpoint, shard), self._valid_for(question, shard)) if checkpoint else None
        window: list[Segment] = []
        bar = self._progress_bar(context)
        covered: dict[str, int] = {}  # how far each source has been read, for the progress bar
        try:
            for segment in self.segmenter.split(context):
                if bar is not None:
                    new = segment.text[max(0, covered.get(segment.source, 0) - segment.start):]
                    covered[segment.source] = segment.end
                    bar.update(len(new.encode("utf-8", "replace")))
                budget = segment.n_tokens if self._budget_is_segment_tokens else self.count(segment.text)
                records.add(segment, budget)
                if bm25 is not None:
                    bm25.add(segment.text)
                if not shard.owns(segment.index):
                    continue
                done = journal.recorded(segment.index, records.digest_of(segment.index)) if journal else None
                if done is not None:
                    for name in per_segment:
                        records.scores[name][segment.index] = done[name]
                    continue
                window.append(segment)
                if len(window) >= self.window_segments:
                    self._score_window(window, question, prepared, records, journal, bar)
                    window = []
            if window:
                self._score_window(window, question, prepared, records, journal, bar)
        finally:
            if journal is not None:
                journal.close()
            if bar is not None:
                bar.close()
        return records, bm25

    def _score_window(self, window: list[Segment], question: str, prepared, records, journal, bar) -> None:
        scores: dict[str, list[float]] = {}
        if "certainty" in self.signals:
            scores["certainty"] = self.scorer.score(window, prepared)
        if "dense" in self.signals:
            scores["dense"] = DenseEmbedder.shared().scores([s.text for s in window], question)
        for name, values in scores.items():
            for segment, value in zip(window, values):
                records.scores[name][segment.index] = value
        if journal is not None:
            journal.append([s.index for s in window], [records.digest_of(s.index) for s in window], scores)
        release_memory()

    def _kept_segments(self, context, records, kept: set[int]) -> list[Segment]:
        """The kept segments, their text read again from the source and checked against its digest."""
        order = sorted(kept)
        wanted: dict[str, list] = {}
        for i in order:
            wanted.setdefault(records.source_of(i), []).append(records.span_of(i))
        lines: dict = {}
        texts = read_spans(self.segmenter.sources(context), wanted, lines=lines)
        out = []
        for i in order:
            source, (start, end) = records.source_of(i), records.span_of(i)
            text = texts.get((source, start, end))
            if text is None or digest(text) != records.digest_of(i):
                raise InputError(
                    f"{source or 'the input'} changed while it was read: characters {start}-{end} are not what "
                    "was scored. Read a file that is not being written to."
                )
            out.append(Segment(i, source, start, end, text, records.n_tokens[i], lines.get((source, start, end), 0)))
        return out

    def _valid_for(self, question: str, shard: Shard) -> dict:
        """What a checkpoint journal is valid for (see ``streaming.Journal``)."""
        return {
            "model": model_identity(self.scorer.model),
            "template": repr(self.scorer.template),
            "metric": self.scorer.metric_name,
            "signals": [s for s in self.signals if s != "bm25"],
            "question": question,
            "segment_tokens": self.segmenter.segment_tokens,
            "overlap_tokens": self.segmenter.overlap_tokens,
            "encoding_errors": self.segmenter.encoding_errors,
            "window": self.window_segments,
            "batch_tokens": self.scorer.batch_tokens,
            "max_batch_size": self.scorer.max_batch_size,
            "shard": [shard.rank, shard.size],
        }

    def _progress_bar(self, context):
        """A bar over the input's bytes, with a total and the time left, on a terminal only
        (``progress=None``), always (``True``) or never (``False``)."""
        show = self.progress if self.progress is not None else sys.stderr.isatty()
        if not show:
            return None
        from tqdm.auto import tqdm  # first imported, quietly, by the package's __init__

        return tqdm(total=_input_bytes(context), unit="B", unit_scale=True, desc=f"reading ({self.method})",
                    leave=False, file=sys.stderr)

    def answer_messages(self, key: KeyContext, question: str, *, question_once: bool = False) -> list[dict]:
        """The answer prompt. The question goes before and after the text, unless ``question_once``."""
        template = ANSWER_PROMPT_ONCE if question_once else ANSWER_PROMPT
        return [{"role": "user", "content": template.format(question=question, context=key.text)}]

    def answer(
        self,
        context: Context,
        question: str,
        *,
        max_new_tokens: int | None = None,
        checkpoint: str | os.PathLike | None = None,
    ) -> Answer:
        """Select the key context, then answer ``question`` from it (on rank 0 of a process group;
        every rank returns the same answer)."""
        started = time.perf_counter()
        key = self.select(context, question, checkpoint=checkpoint)
        selected = time.perf_counter()
        if key.meta.get("empty"):
            raise InputError(f"nothing to answer from: {key.meta['empty']}")
        max_new = self.max_new_tokens if max_new_tokens is None else check_positive("max_new_tokens", max_new_tokens)
        shard = Shard.current(self.distributed)
        out = None
        if shard.is_main:
            out = self._generate(key, question, max_new)
        out = shard.broadcast(out)
        done = time.perf_counter()
        return Answer(
            text=out.text,
            key_context=key,
            seconds={"select": selected - started, "answer": done - selected, "total": done - started},
            prompt_tokens=out.prompt_tokens,
        )

    def _generate(self, key: KeyContext, question: str, max_new_tokens: int):
        """Answer; a prompt beyond the answering window is read with SelfExtend for this call only.

        The question is put in twice (before and after the text) when that fits the model's own
        window, else once: a long question must not push a short key context past the window.
        """
        lm = self.answer_lm
        ids = lm.chat_prompt(self.answer_messages(key, question))
        if lm.trained_window is not None and len(ids) + max_new_tokens > lm.trained_window:
            once = lm.chat_prompt(self.answer_messages(key, question, question_once=True))
            if len(once) < len(ids):
                ids = once
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


def _check_options(
    *,
    metric=DEFAULT_METRIC,
    template="plain",
    signals=DEFAULT_SIGNALS,
    segment_tokens: int = DEFAULT_SEGMENT_TOKENS,
    overlap_tokens: int = 0,
    top_k=None,
    token_budget=None,
    threshold=None,
    batch_tokens: int = 4096,
    max_new_tokens: int = 64,
    encoding_errors: str = "strict",
    extend="selfextend",
    distributed=None,
    **others,
) -> None:
    """Check every option that needs no model, so that a mistake is reported before a model loads."""
    from .scoring import TEMPLATES, resolve_metric
    from .segments import check_segment_options

    allowed = {"answer_lm", "budget_tokenizer", "progress"}
    unknown = sorted(set(others) - allowed)
    if unknown:
        import inspect

        names = [p for p in inspect.signature(LongContextReader.__init__).parameters if p not in ("self", "model", "tokenizer")]
        raise InputError(f"unknown option {unknown[0]!r} for LongContextReader; the options are: {', '.join(names)}")
    if extend not in ("selfextend", None):
        raise InputError("extend must be 'selfextend' (read a long key context with SelfExtend) or None (refuse it)")
    if distributed not in (None, True, False):
        raise InputError("distributed must be None (use a torch.distributed process group if one is initialised), True or False")
    _check_signals(signals, threshold, resolve=False)
    resolve_metric(metric)
    if isinstance(template, str) and template != "chat" and template not in TEMPLATES:
        raise InputError(f"unknown template {template!r}: choose 'chat', one of {sorted(TEMPLATES)}, or pass a PromptTemplate")
    check_segment_options(segment_tokens, overlap_tokens, encoding_errors)
    selection = Selection.of(top_k, token_budget, threshold, default=DEFAULT_SELECTION)
    budget = selection.token_budget
    if budget is not None and budget < segment_tokens // 2:
        raise InputError(
            f"token_budget={budget} cannot hold one segment of about {segment_tokens} "
            f"tokens: raise token_budget or lower segment_tokens (to at most {2 * budget})"
        )
    check_positive("batch_tokens", batch_tokens)
    check_positive("max_new_tokens", max_new_tokens)


def _warn_if_path(text: str) -> None:
    """A short one-line string that names an existing file is read as text, as documented; say so."""
    if len(text) <= 4096 and "\n" not in text and text.strip() == text and text:
        try:
            is_file = os.path.isfile(text)
        except (OSError, ValueError):
            return
        if is_file:
            import warnings

            warnings.warn(
                f"the context {text!r} is read as the text itself, although a file of that name exists: "
                "to read the file, pass pathlib.Path(...) (the command line reads files by path)",
                UserWarning,
                stacklevel=3,
            )


def _input_bytes(context) -> int | None:
    """The size of the input in UTF-8 bytes (a file's size on disk), for the progress bar's total."""
    items = [context] if isinstance(context, (str, os.PathLike, Document)) else context
    total = 0
    for item in items:
        body = item.text if isinstance(item, Document) else item
        if isinstance(body, str):
            total += len(body.encode("utf-8", "replace"))
        elif isinstance(body, os.PathLike):
            try:
                total += os.stat(body).st_size
            except OSError:
                return None
    return total
