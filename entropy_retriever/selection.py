"""Pick the best-scored segments and splice them, in document order, into a key context."""

from __future__ import annotations

import importlib.util
import json
import math
import numbers
import os
import re
from dataclasses import asdict, dataclass, field, fields
from typing import Callable, Sequence, Union

import numpy as np

from .errors import InputError
from .segments import Segment

# Scores and rankings: Python sequences or numpy arrays, both accepted everywhere.
Floats = Union[Sequence[float], np.ndarray]
Ints = Union[Sequence[int], np.ndarray]

__all__ = ["KeyContext", "KeptSpan", "SegmentScore", "Selection", "token_counter"]

GAP = "\n\n[…]\n\n"


@dataclass(frozen=True)
class SegmentScore:
    """The score of one segment, kept for every segment whether selected or not."""

    index: int
    source: str
    start: int
    end: int
    score: float
    selected: bool
    # Each signal's own score (lower = better). A signal that did not score this segment is absent:
    # the multi-hop stage (outside its pool), or the model under a cascade (prefilter=).
    signals: dict = field(default_factory=dict)


@dataclass(frozen=True)
class KeptSpan:
    """A merged run of kept segments: its span in its source, and the scores of its segments."""

    source: str
    start: int
    end: int
    text: str
    segment_indices: tuple[int, ...]
    scores: tuple[float, ...]
    relevance: float = 1.0  # in (0, 1], 1 for the best segment of the document (the frameworks' node score)
    line_start: int = 0  # the 1-based lines of its source the span covers (0: not known)
    line_end: int = 0

    @property
    def lines(self) -> str:
        """``"line 7"`` or ``"lines 7-12"``; ``""`` when the lines are not known."""
        if not self.line_start:
            return ""
        return f"line {self.line_start}" if self.line_end == self.line_start else f"lines {self.line_start}-{self.line_end}"

    @property
    def score(self) -> float:
        """The best (lowest) score among the span's segments."""
        return min(self.scores)


@dataclass
class KeyContext:
    """The selected segments, spliced in their original order, and the scores of all segments."""

    text: str
    spans: list[KeptSpan]
    segments: Sequence[SegmentScore]  # every segment, kept or not (a compact table for long inputs)
    metric: str
    question: str
    n_tokens: int | None = None  # in the tokenizer the budget was counted in
    meta: dict = field(default_factory=dict)

    def to_dict(self, *, segments: bool = True) -> dict:
        """Plain data (for JSON): every field, with every segment's score as a dict (unless ``segments=False``)."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("spans", "segments")}
        out["spans"] = [asdict(span) for span in self.spans]
        if segments:
            out["segments"] = [asdict(segment) for segment in self.segments]
        return out

    def write_json(self, stream) -> None:
        """Write :meth:`to_dict` as JSON to ``stream``, one segment at a time, so that the table of
        a very long input is never built whole in memory."""
        head = self.to_dict(segments=False)
        body = json.dumps(head, ensure_ascii=False, indent=1)
        stream.write(body[:-2] + ',\n "segments": [')
        for n, segment in enumerate(self.segments):
            stream.write(("," if n else "") + "\n  " + json.dumps(asdict(segment), ensure_ascii=False))
        stream.write("\n ]\n}")

    def __str__(self) -> str:
        return self.text


def token_counter(tokenizer) -> Callable[[str], int]:
    """A function counting tokens: a Hugging Face tokenizer, a tiktoken encoding name, or a callable.

    tiktoken works offline when its encoding files are in ``TIKTOKEN_CACHE_DIR``; if that is
    unset and llama-index-core is installed, its bundled copy of the files is used.
    """
    if callable(tokenizer) and not hasattr(tokenizer, "encode"):
        return tokenizer
    if isinstance(tokenizer, str):
        return _tiktoken_counter(tokenizer)
    if hasattr(tokenizer, "encode"):
        try:
            tokenizer.encode("x", add_special_tokens=False)
            return lambda text: len(tokenizer.encode(text, add_special_tokens=False))
        except TypeError:  # tiktoken.Encoding takes no add_special_tokens
            return lambda text: len(tokenizer.encode(text, disallowed_special=()))
    raise InputError(
        f"cannot count tokens with a {type(tokenizer).__name__}: pass a Hugging Face tokenizer, "
        "a tiktoken encoding name such as 'cl100k_base', or a function text -> int"
    )


def _tiktoken_counter(name: str) -> Callable[[str], int]:
    try:
        import tiktoken  # local: an optional dependency (the [tiktoken] extra)
    except ImportError:
        raise InputError(
            f"counting the budget in {name!r} needs tiktoken: pip install 'entropy-retriever[tiktoken]'"
        ) from None
    if "TIKTOKEN_CACHE_DIR" not in os.environ:

        try:
            spec = importlib.util.find_spec("llama_index.core")
        except ModuleNotFoundError:
            spec = None
        if spec is not None and spec.submodule_search_locations:
            bundled = os.path.join(spec.submodule_search_locations[0], "_static", "tiktoken_cache")
            if os.path.isdir(bundled):
                os.environ["TIKTOKEN_CACHE_DIR"] = bundled
    try:
        encoding = tiktoken.get_encoding(name)
    except ValueError:
        raise InputError(f"unknown tiktoken encoding {name!r}: try 'cl100k_base' or 'o200k_base'") from None
    except Exception as exc:  # network failure when the files are not cached
        raise InputError(
            f"tiktoken could not load {name!r} ({exc}). Offline, point TIKTOKEN_CACHE_DIR at a folder "
            "with its cached files (llama-index-core ships them in llama_index/core/_static/tiktoken_cache)"
        ) from None
    return lambda text: len(encoding.encode(text, disallowed_special=()))


@dataclass(frozen=True)
class Selection:
    """How many segments to keep: exactly one of ``top_k``, ``token_budget`` or ``threshold``.

    This is the one selection rule of the library: the reader, the reranker, both frameworks'
    retrievers, postprocessor and compressor, the command line and the benchmarks all build a
    Selection (with :meth:`of`) and keep what :meth:`choose` returns.
    """

    top_k: int | None = None
    token_budget: int | None = None
    threshold: float | None = None

    def __post_init__(self) -> None:
        chosen = [x is not None for x in (self.top_k, self.token_budget, self.threshold)]
        if sum(chosen) != 1:
            raise InputError("choose exactly one of top_k, token_budget or threshold")
        for name in ("top_k", "token_budget"):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise InputError(f"{name} must be a positive integer, got {value!r}")
            object.__setattr__(self, name, int(value))  # numpy integers are integers too
        if self.threshold is not None:
            if isinstance(self.threshold, bool) or not isinstance(self.threshold, numbers.Real) or not math.isfinite(self.threshold):
                raise InputError(f"threshold must be a finite number, got {self.threshold!r}")
            object.__setattr__(self, "threshold", float(self.threshold))

    @classmethod
    def of(
        cls,
        top_k: int | None = None,
        token_budget: int | None = None,
        threshold: float | None = None,
        *,
        default: "Selection",
        names: dict[str, str] | None = None,
    ) -> "Selection":
        """What the caller asked for: exactly one of the three, or ``default`` when none is given.

        ``names`` renames the fields in error messages to the caller's own parameter names
        (``{"top_k": "top_n"}`` for a reranker), so that an error names what the user typed.
        """
        if top_k is None and token_budget is None and threshold is None:
            return default
        try:
            return cls(top_k=top_k, token_budget=token_budget, threshold=threshold)
        except InputError as exc:
            if not names:
                raise
            message = str(exc)
            for field_name, label in names.items():
                message = re.sub(rf"\b{field_name}\b", label, message)
            raise InputError(message) from None

    def describe(self) -> str:
        if self.top_k is not None:
            return f"top_k={self.top_k}"
        if self.token_budget is not None:
            return f"token_budget={self.token_budget}"
        return f"threshold={self.threshold:g}"

    def choose(
        self, segments: Sequence[Segment | str], scores: Sequence[float], count: Callable[[str], int]
    ) -> set[int]:
        """The positions (into ``segments``, Segments or texts) to keep. Ties break by position.

        A token budget is spent in order of score on each segment that still fits, charging
        the separator (``GAP``) that joins kept segments in the key context.
        """
        if len(scores) != len(segments):
            raise InputError(f"{len(segments)} segments but {len(scores)} scores")
        if self.token_budget is None:
            return self.choose_sizes(None, scores, 0)
        sizes = [count(s if isinstance(s, str) else s.text) for s in segments]
        return self.choose_sizes(sizes, scores, count(GAP))

    def choose_sizes(self, sizes: Ints | None, scores: Floats, gap: int) -> set[int]:
        """``choose`` on segments known by their token counts only (``sizes``; needed for a budget).

        ``gap`` is the size of the separator charged for every kept segment after the first.
        """
        values = np.asarray(scores, dtype=np.float64)
        if self.threshold is not None:
            return {int(i) for i in np.flatnonzero(values <= self.threshold)}
        return self.choose_order(sizes, np.argsort(values, kind="stable"), gap)  # ties by position

    def choose_order(self, sizes: Ints | None, ranking: Ints, gap: int) -> set[int]:
        """The same rule on a ranking (indices, best first) instead of scores: the first ``top_k``,
        or each segment in turn that still fits the token budget. A threshold needs scores."""
        if self.threshold is not None:
            raise InputError("a threshold compares scores: use choose_sizes with the scores")
        if self.top_k is not None:
            return {int(i) for i in ranking[: self.top_k]}
        budget = self.token_budget
        if sizes is None or budget is None:
            raise InputError("a token budget needs each segment's size: pass sizes")
        kept: set[int] = set()
        used = 0
        smallest = None
        for i in map(int, ranking):  # best first, each segment that still fits
            size = sizes[i] + (gap if kept else 0)
            smallest = size if smallest is None else min(smallest, size)
            if used + size <= budget:
                kept.add(i)
                used += size
        if not kept and len(ranking):
            raise InputError(
                f"token_budget={budget} is smaller than every segment (the smallest takes {smallest} "
                "tokens): raise the budget or lower segment_tokens"
            )
        return kept


def build_spans(kept: Sequence[Segment], scores: Sequence[float], relevance: Sequence[float]) -> list[KeptSpan]:
    """The kept segments (in document order, with their scores and relevance) as spans: overlapping
    or adjacent segments of one source merge into one span."""
    spans: list[KeptSpan] = []
    for seg, score, rel in zip(kept, scores, relevance):
        last = spans[-1] if spans else None
        if last is not None and last.source == seg.source and seg.start <= last.end:
            extra = seg.text[last.end - seg.start:] if seg.end > last.end else ""
            text = last.text + extra
            spans[-1] = KeptSpan(
                last.source, last.start, max(last.end, seg.end), text,
                last.segment_indices + (seg.index,), last.scores + (score,), max(last.relevance, rel),
                last.line_start, _last_line(last.line_start, text),
            )
        else:
            spans.append(KeptSpan(seg.source, seg.start, seg.end, seg.text, (seg.index,), (score,), rel,
                                  seg.line, _last_line(seg.line, seg.text)))
    return spans


def _last_line(first: int, text: str) -> int:
    """The line a text starting on line ``first`` ends on (a final line break ends a line, opens none)."""
    return 0 if not first else first + text.rstrip("\n").count("\n")


def join_spans(spans: Sequence[KeptSpan], separator: str = GAP) -> str:
    return separator.join(span.text.strip("\n") for span in spans)
