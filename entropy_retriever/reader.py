"""LongContextReader: the XL3M pipeline, segments -> certainty scores -> key context -> answer."""

from __future__ import annotations

import os
import sys
import time
import warnings
from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np
from tqdm.auto import tqdm

from .attention import choose_group_size
from .config import DEFAULT, SelectionConfig
from .errors import InputError, check_positive
from .evidence import supporting_sentences
from .focus import focus_sentences
from .llm import LongContextLM
from .models import load_model, model_and_tokenizer, model_lock, scores_in_int8
from .pipeline import Ranked, check_prefilter, choose, is_cheap, rank, shortlist
from .quantize import INT8, quantize_int8
from .scoring import CertaintyScorer, MetricFn, PromptTemplate
from .segments import Context, Document, Segment, Segmenter
from .selection import GAP, KeyContext, Selection, build_spans, join_spans, token_counter
from .signals import make_signals, resolve_signals, validate_signals
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

DEFAULT_SELECTION = Selection(token_budget=DEFAULT.token_budget)
# A threshold keeps every segment scored at or below it; past this many, the key context would be
# the input itself, so it is refused (top_k and token_budget are bounded by construction).
MAX_THRESHOLD_SEGMENTS = 4096

# The question goes before and after the text: small models (SmolLM2-135M) answer from the
# text far more often that way (9/10 against 1/10 with the question after only, on 10
# passkey key contexts at 8k; see README, "How the defaults were chosen").
ANSWER_PROMPT = "Answer the question from the text.\nQuestion: {question}\n\nText:\n{context}\n\nQuestion: {question}"
# When the question twice would not fit the model's window (a long question), it goes in once.
ANSWER_PROMPT_ONCE = "Answer the question from the text.\nQuestion: {question}\n\nText:\n{context}\n\nAnswer the question above."
# The model answers from the key context's 3 best sentences (entropy_retriever.focus): given the
# whole 1,536-token key context, SmolLM2-135M answered 0 of 40 development low-overlap needle
# questions whose needle the key context held; given its 3 best sentences, 22 (the reader guide).
ANSWER_FOCUS = 3


@dataclass
class Answer:
    """The reader's answer, the key context it was read from, and where the time went."""

    text: str
    key_context: KeyContext
    seconds: dict = field(default_factory=dict)
    prompt_tokens: int = 0
    read: str = ""  # what the model answered from: the key context, or its focus sentences

    def __str__(self) -> str:
        return self.text

    def quotes(self, n: int = 2):
        """Up to ``n`` sentences of the key context that support the answer (sharing its rarer words),
        each with its source and line: where to check a doubtful answer. None found means that
        nothing in the key context backs the answer. See :mod:`entropy_retriever.evidence`."""
        return supporting_sentences(self.text, self.key_context, self.key_context.question, n=n)


class LongContextReader:
    """Read a context far longer than the model's window and answer a question about it.

    >>> reader = LongContextReader()                   # the embedded default model
    >>> reader.answer(Path("book.txt"), "Who wrote the letter?").text

    Scoring uses ``model`` (with ``quantize="int8"``, a dynamic int8 copy of it, on CPU: see
    :mod:`entropy_retriever.quantize`); answering uses ``answer_lm`` (a LongContextLM, possibly
    with SelfExtend or LM-Infinite) or, by default, ``model`` itself in its own dtype.
    """

    def __init__(
        self,
        model=None,
        tokenizer=None,
        *,
        answer_lm: LongContextLM | None = None,
        metric: str | MetricFn = DEFAULT.metric,
        template: str | PromptTemplate = DEFAULT.template,
        signals: tuple[str, ...] = DEFAULT.signals,
        segment_tokens: int = DEFAULT.segment_tokens,
        overlap_tokens: int = DEFAULT.overlap_tokens,
        fusion: str = DEFAULT.fusion,
        hops: int = DEFAULT.hops,
        top_k: int | None = None,
        token_budget: int | None = None,
        threshold: float | None = None,
        budget_tokenizer=None,
        batch_tokens: int = 4096,
        max_new_tokens: int = 64,
        answer_focus: int | None = ANSWER_FOCUS,
        encoding_errors: str = "strict",
        extend: str | None = "selfextend",
        quantize: str | None = None,
        prefilter: float | int | None = None,
        progress: bool | None = None,
        distributed: bool | None = None,
    ) -> None:
        config = _check_options(
            metric=metric, template=template, signals=signals, segment_tokens=segment_tokens,
            overlap_tokens=overlap_tokens, fusion=fusion, hops=hops, top_k=top_k, token_budget=token_budget,
            threshold=threshold, batch_tokens=batch_tokens, max_new_tokens=max_new_tokens, answer_focus=answer_focus,
            encoding_errors=encoding_errors, extend=extend, distributed=distributed, quantize=quantize,
            prefilter=prefilter,
        )
        self.signals = _check_signals(signals, threshold)
        self.config = config.but(signals=self.signals)  # less 'dense' when the embedder is not installed
        if model is None and quantize is None and scores_in_int8("auto"):  # the default model, as calibrate chose
            quantize = INT8
        model, tokenizer = model_and_tokenizer(model, tokenizer, "LongContextReader")
        self.selection = Selection.of(top_k, token_budget, threshold, default=DEFAULT_SELECTION)
        self.segmenter = Segmenter(tokenizer, segment_tokens, overlap_tokens, encoding_errors=encoding_errors)
        self.scorer = CertaintyScorer(  # int8: a quantized copy scores; the model itself answers
            quantize_int8(model) if quantize == INT8 else model, tokenizer, metric=metric, template=template, batch_tokens=batch_tokens, progress=False
        )
        self._signals = make_signals(self.signals, self.scorer)
        self.progress = progress
        self.distributed = distributed
        self.prefilter = prefilter
        # Segments scored, and journaled, together: 4 batches' worth, so a checkpoint is flushed often.
        self.window_segments = 4 * self.scorer.max_batch_size
        self.answer_lm = answer_lm or LongContextLM(model, tokenizer, max_new_tokens=max_new_tokens)
        _check_reach(max_new_tokens, self.answer_lm)
        self.max_new_tokens = max_new_tokens
        self.answer_focus = answer_focus
        self.extend = extend
        self.count: Callable[[str], int] = token_counter(budget_tokenizer or self.answer_lm.tokenizer)
        # The budget is counted in the segmenter's own tokenizer unless told otherwise: reuse its counts.
        self._budget_is_segment_tokens = budget_tokenizer is None and self.answer_lm.tokenizer is tokenizer

    @classmethod
    def from_pretrained(cls, name_or_path=None, *, device="auto", dtype="auto", **kwargs) -> "LongContextReader":
        _check_options(**kwargs)  # every option is checked before the slow load
        if scores_in_int8(dtype, device):  # asked for, or what calibrate recorded for dtype='auto' on this CPU
            kwargs.setdefault("quantize", INT8)
            dtype = "float32"  # the answering model keeps float32
        model, tokenizer = load_model(name_or_path, device=device, dtype=dtype)
        return cls(model, tokenizer, **kwargs)

    @property
    def method(self) -> str:
        """How segments are scored: the certainty metric, or ``fusion(signals)`` of the fused signals."""
        return self.config.label

    def select(
        self,
        context: Context,
        question: str,
        *,
        selection: Selection | None = None,
        checkpoint: str | os.PathLike | None = None,
    ) -> KeyContext:
        """Score every segment of ``context`` against ``question``; return the key context.

        The stages are those of :mod:`entropy_retriever.pipeline`: read the input a segment at a
        time and score it with each signal (the model's certainty, BM25, the sentence embedder),
        fuse the scores (``fusion=``), let the multi-hop stage rescore the best candidates given
        the first pick (``hops=``), choose what fits, and splice it in document order.
        ``selection`` replaces the reader's own (``Selection(top_k=...)`` etc.) for this call.

        Memory does not grow with the input beyond a record of a few tens of bytes per segment
        (``entropy_retriever.streaming``): the kept spans are read again from the source at the
        end. ``checkpoint`` names a journal file: scores are appended to it as they are computed,
        and a run given the same journal resumes where an interrupted one stopped. Under an
        initialised torch.distributed process group each rank scores its share of the segments.
        """
        selection = self._selection_for(selection)
        context = _readable(context)
        shard = Shard.current(self.distributed)
        started = time.perf_counter()
        with model_lock(self.scorer.model):
            states = self._prepare(question)  # the question checked before anything is read
            records = corpus = failure = None
            try:
                records, corpus = self._score_all(context, question, states, shard, checkpoint)
                candidates = self._cascade(context, question, records, corpus, states)
            except Exception as exc:  # noqa: BLE001 (every rank must hear of it before the gather)
                failure = exc
            shard.agree(failure)
            assert records is not None and corpus is not None  # agree() raised otherwise
        scored_at = time.perf_counter()
        values = self._gather(records, corpus, shard, candidates)
        ranked = rank(values, question, self.config, lambda idx: [s.text for s in self._kept_segments(context, records, idx)],
                      candidates)
        sizes = records.budget_tokens if selection.token_budget is not None else None
        kept = choose(selection, ranked, sizes, self.count(GAP) if sizes is not None else 0)
        key = self._splice(context, records, values, ranked, kept, question, selection)
        key.meta.update(n_segments=len(records), context_tokens=sum(records.n_tokens), ranks=shard.size,
                        score_seconds=scored_at - started, record_bytes=records.nbytes())
        return key

    def _selection_for(self, selection: Selection | None) -> Selection:
        selection = self.selection if selection is None else selection
        if not isinstance(selection, Selection):
            raise InputError(f"selection must be a Selection(top_k=..., token_budget=... or threshold=...), got {selection!r}")
        if selection.threshold is not None and self.signals != ("certainty",):
            _check_signals(self.signals, selection.threshold, resolve=False)
        return selection

    def _prepare(self, question: str) -> dict:
        """Each signal's state for this question; the question is checked against the model's window first."""
        if "certainty" not in self.signals:
            self.scorer.encode_question(question)
        return {name: signal.prepare(question) for name, signal in self._signals.items()}

    def _gather(self, records, corpus: dict, shard: Shard, candidates=None) -> dict[str, np.ndarray]:
        """Every signal's scores over every segment (from all ranks), as float64 arrays; under a
        cascade the model's signal has scores for the ``candidates`` only."""
        per_segment = [name for name, s in self._signals.items() if s.kind == "segment"]
        shard.gather(records, per_segment)
        values = {}
        for name in self.signals:
            values[name] = _scores_of(name, records, corpus)
            if np.isnan(values[name] if candidates is None or is_cheap(name) else values[name][candidates]).any():
                raise RuntimeError(f"some segments have no {name} score after scoring: this is a bug, please report it")
        return values

    def _splice(self, context, records, values, ranked: Ranked, kept: set[int], question: str, selection) -> KeyContext:
        """The kept segments, read again from the source, joined in document order, with every segment's scores."""
        fused = ranked.fused
        order = sorted(kept)
        relevance = ranked.relevance
        spans = build_spans(self._kept_segments(context, records, order), [float(fused[i]) for i in order],
                            [float(relevance[i]) for i in order])
        table_values = dict(values)
        if ranked.hop_scores:
            hop = np.full(len(records), np.nan)
            hop[list(ranked.hop_scores)] = list(ranked.hop_scores.values())
            table_values["hop"] = hop
        key = KeyContext(text=join_spans(spans), spans=spans, segments=SegmentTable(records, fused, kept, table_values),
                         metric=self.method, question=question)
        key.n_tokens = self.count(key.text)
        if selection.threshold is not None and len(kept) > MAX_THRESHOLD_SEGMENTS:
            raise InputError(
                f"threshold={selection.threshold} keeps {len(kept)} segments, more than the "
                f"{MAX_THRESHOLD_SEGMENTS} a key context may hold: lower the threshold, or use top_k or token_budget"
            )
        if not kept and len(fused):  # answer() refuses such a key context with this reason
            key.meta["empty"] = (
                f"{selection.describe()} keeps no segment: the best score is {float(fused.min()):.4f} "
                "(lower is more relevant); raise the threshold above it, or choose top_k or token_budget"
            )
        return key

    def _score_all(self, context, question: str, states: dict, shard: Shard, checkpoint):
        """Stream the segments; score this rank's share a window at a time; keep records, not text.

        Returns the records (with the per-segment signals' scores) and the corpus signals' scores.
        """
        if self.prefilter is not None and (checkpoint is not None or shard.size > 1):
            raise InputError("prefilter (the cascade) reads the input twice in one process: it does not run with a "
                             "checkpoint journal or under torchrun yet; drop prefilter, or the checkpoint and torchrun")
        per_segment = [name for name, s in self._signals.items() if s.kind == "segment"]
        corpus = {name: s for name, s in self._signals.items() if s.kind == "corpus"}
        records = SegmentRecords(per_segment)
        journal = Journal(rank_path(checkpoint, shard), self._valid_for(question, shard)) if checkpoint is not None else None
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
                for name, signal in corpus.items():
                    signal.observe(states[name], segment)
                if not shard.owns(segment.index):
                    continue
                done = journal.recorded(segment.index, records.digest_of(segment.index)) if journal else None
                if done is not None:
                    for name in per_segment:
                        records.scores[name][segment.index] = done[name]
                    continue
                window.append(segment)
                if len(window) >= self.window_segments:
                    self._score_window(window, states, records, journal)
                    window = []
            if window:
                self._score_window(window, states, records, journal)
        finally:
            if journal is not None:
                journal.close()
            if bar is not None:
                bar.close()
        return records, {name: signal.finish(states[name]) for name, signal in corpus.items()}

    def _cascade(self, context, question: str, records, corpus: dict, states: dict) -> np.ndarray | None:
        """With ``prefilter``: the cheap signals' shortlist, read again from the source and scored
        by the model (its indices); None without a cascade."""
        if self.prefilter is None:
            return None
        cheap = {name: _scores_of(name, records, corpus) for name in self.signals if is_cheap(name)}
        candidates = shortlist(cheap, self.prefilter, self.config.fusion)
        for first in range(0, len(candidates), self.window_segments):
            window = self._kept_segments(context, records, candidates[first:first + self.window_segments])
            self._score_window(window, states, records, None, model=True)
        return candidates

    def _score_window(self, window: list[Segment], states: dict, records, journal, model: bool | None = None) -> None:
        """Score ``window`` with the per-segment signals: all of them, or under a cascade the cheap
        ones (``model=False``, the first pass) or the model's (``model=True``, the shortlist)."""
        if model is None and self.prefilter is not None:
            model = False
        scores = {name: signal.score(states[name], window) for name, signal in self._signals.items()
                  if signal.kind == "segment" and (model is None or model != is_cheap(name))}
        for name, values in scores.items():
            for segment, value in zip(window, values):
                records.scores[name][segment.index] = value
        if journal is not None:
            journal.append([s.index for s in window], [records.digest_of(s.index) for s in window], scores)
        release_memory()

    def _kept_segments(self, context, records, indices) -> list[Segment]:
        """Those segments (in that order), their text read again from the source and checked against its digest."""
        requested = [int(i) for i in indices]
        order = sorted(requested)
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
        found = dict(zip(order, out))
        return [found[i] for i in requested]

    def _valid_for(self, question: str, shard: Shard) -> dict:
        """What a checkpoint journal is valid for (see ``streaming.Journal``)."""
        return {
            "model": model_identity(self.scorer.model),
            "template": repr(self.scorer.template),
            "metric": self.scorer.metric_name,
            "signals": [name for name, s in self._signals.items() if s.kind == "segment"],
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

        return tqdm(total=_input_bytes(context), unit="B", unit_scale=True, desc=f"reading ({self.method})",
                    leave=False, file=sys.stderr)

    def answer_text(self, key: KeyContext, question: str) -> str:
        """What the model answers from: the key context's ``answer_focus`` best sentences, one a
        line, in document order (:func:`entropy_retriever.focus.focus_sentences`, ranked by BM25
        and, where the reader uses it, the embedder); the whole key context if ``answer_focus`` is None."""
        if self.answer_focus is None:
            return key.text
        return "\n".join(focus_sentences(key.text, question, self.answer_focus, dense="dense" in self.signals))

    def answer_messages(self, key: KeyContext, question: str, *, question_once: bool = False,
                        text: str | None = None) -> list[dict]:
        """The answer prompt, on ``text`` (by default :meth:`answer_text`). The question goes before
        and after the text, unless ``question_once``."""
        template = ANSWER_PROMPT_ONCE if question_once else ANSWER_PROMPT
        text = self.answer_text(key, question) if text is None else text
        return [{"role": "user", "content": template.format(question=question, context=text)}]

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
        max_new = self.max_new_tokens if max_new_tokens is None else _check_reach(check_positive("max_new_tokens", max_new_tokens), self.answer_lm)
        shard = Shard.current(self.distributed)
        read = self.answer_text(key, question)
        out = None
        if shard.is_main:
            out = self._generate(key, question, max_new, read)
        out = shard.broadcast(out)
        done = time.perf_counter()
        return Answer(
            text=out.text,
            key_context=key,
            seconds={"select": selected - started, "answer": done - selected, "total": done - started},
            prompt_tokens=out.prompt_tokens,
            read=read,
        )

    def _generate(self, key: KeyContext, question: str, max_new_tokens: int, text: str):
        """Answer; a prompt beyond the answering window is read with SelfExtend for this call only.

        The question is put in twice (before and after the text) when that fits the model's own
        window, else once: a long question must not push a short key context past the window.
        """
        lm = self.answer_lm
        ids = lm.chat_prompt(self.answer_messages(key, question, text=text))
        if lm.trained_window is not None and len(ids) + max_new_tokens > lm.trained_window:
            once = lm.chat_prompt(self.answer_messages(key, question, question_once=True, text=text))
            if len(once) < len(ids):
                ids = once
        needed = len(ids) + max_new_tokens
        if needed <= lm.context_window or lm.policy is not None or self.extend is None or lm.trained_window is None:
            return lm.generate_ids(ids, max_new_tokens)  # fits, or check_fits explains what to do
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


# The reader's options that are not part of the selection configuration.
_READER_OPTIONS = ("top_k", "token_budget", "threshold", "budget_tokenizer", "batch_tokens", "max_new_tokens", "answer_focus",
                   "encoding_errors", "extend", "progress", "distributed", "answer_lm", "quantize", "prefilter")
_CONFIG_FIELDS = ("segment_tokens", "overlap_tokens", "signals", "metric", "template", "fusion", "hops")


def _check_options(**options) -> SelectionConfig:
    """Check every option that needs no model, so that a mistake is reported before a model loads;
    return the selection configuration they make (:data:`entropy_retriever.config.DEFAULT` for the rest)."""
    unknown = sorted(set(options) - set(_READER_OPTIONS) - set(_CONFIG_FIELDS))
    if unknown:
        raise InputError(f"unknown option {unknown[0]!r} for LongContextReader; the options are: "
                         f"{', '.join(_CONFIG_FIELDS + _READER_OPTIONS)}")
    if options.get("extend", "selfextend") not in ("selfextend", None):
        raise InputError("extend must be 'selfextend' (read a long key context with SelfExtend) or None (refuse it)")
    if options.get("distributed") not in (None, True, False):
        raise InputError("distributed must be None (use a torch.distributed process group if one is initialised), True or False")
    check_prefilter(options.get("prefilter"))
    if options.get("quantize") not in (None, INT8):
        raise InputError(f"quantize must be None (score with the model as it is) or 'int8' (score with a dynamic int8 "
                         f"copy on CPU; the answer keeps the model's own dtype), got {options['quantize']!r}")
    if options.get("encoding_errors", "strict") not in ("strict", "replace"):
        raise InputError("encoding_errors must be 'strict' (raise on bad UTF-8) or 'replace' (U+FFFD)")
    for name in ("batch_tokens", "max_new_tokens"):
        if name in options:
            check_positive(name, options[name])
    if options.get("answer_focus") is not None:
        focus = options["answer_focus"]
        if isinstance(focus, bool) or not isinstance(focus, int) or focus < 1:
            raise InputError(f"answer_focus is how many of the key context's sentences the model answers from, a positive int "
                             f"(3 by default), or None (--focus 0) for the whole key context; got {focus!r}")
    selection = Selection.of(options.get("top_k"), options.get("token_budget"), options.get("threshold"),
                             default=DEFAULT_SELECTION)
    config = DEFAULT.but(token_budget=selection.token_budget or DEFAULT.token_budget,
                         **{k: options[k] for k in _CONFIG_FIELDS if k in options})
    _check_signals(config.signals, selection.threshold, resolve=False)
    if options.get("prefilter") is not None and not any(is_cheap(name) for name in config.signals):
        raise InputError(f"prefilter ranks every segment with the cheap signals first, and signals={config.signals} has "
                         "none: add 'bm25' or 'dense' to the signals, or drop prefilter")
    return config


def _scores_of(name: str, records, corpus: dict) -> np.ndarray:
    """One signal's scores over every segment, as float64: a corpus signal's from its finish, a
    per-segment signal's from the records (NaN where it has not scored)."""
    return np.frombuffer(corpus[name] if name in corpus else records.scores[name], dtype=np.float64)


def _check_reach(max_new_tokens: int, lm: LongContextLM) -> int:
    """``max_new_tokens``, if the answering model can write that many after a prompt at all."""
    reach = lm.context_window
    if reach is not None and max_new_tokens >= reach:
        raise InputError(f"max_new_tokens={max_new_tokens} is at least the answering model's whole reach of {reach} "
                         f"tokens, with no room left for the question: ask for fewer (an answer rarely needs 256)")
    return max_new_tokens


def _readable(context):
    """The context, checked, in a form that can be read twice (to score, then to fetch the kept spans)."""
    if isinstance(context, (bytes, bytearray)):
        raise InputError("the context is bytes: decode it to a string first (data.decode('utf-8')), or pass the file's pathlib.Path")
    if isinstance(context, str):
        _warn_if_path(context)
        return context
    if isinstance(context, (os.PathLike, Document)):
        return context
    if isinstance(context, Mapping):  # {id: text or path}: one Document each, in the mapping's order
        return [Document(body, id=str(name)) for name, body in context.items()]
    if not hasattr(context, "__iter__"):
        raise InputError(
            f"cannot read a context of type {type(context).__name__}: pass a string, "
            "a pathlib.Path, a Document, or an iterable of those"
        )
    return list(context)


def _warn_if_path(text: str) -> None:
    """A short one-line string that names an existing file is read as text, as documented; say so."""
    if len(text) <= 4096 and "\n" not in text and text.strip() == text and text:
        try:
            is_file = os.path.isfile(text)
        except (OSError, ValueError):
            return
        if is_file:
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
