"""The shipped selection configuration, in one place.

Every entry point (the reader, the reranker, the command line, both framework packages and
the benchmarks) takes its defaults from :data:`DEFAULT`, and a test fails when one drifts
from it. The evidence benchmark measures this very object, so a number that chose a default
was taken at the configuration that ships.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .errors import InputError, check_positive
from .fusion import make_fusion
from .scoring import DEFAULT_METRIC, TEMPLATES, MetricFn, PromptTemplate, resolve_metric
from .segments import check_segment_options
from .signals import validate_signals

__all__ = ["SelectionConfig", "DEFAULT"]


@dataclass(frozen=True)
class SelectionConfig:
    """How the key context is chosen: segmenting, signals, their fusion, the multi-hop stage, the budget.

    - ``segment_tokens`` / ``overlap_tokens``: segment size and overlap, in the scoring model's tokens.
    - ``token_budget``: how many tokens of key context the reader keeps.
    - ``signals``: the signals (names in :data:`entropy_retriever.signals.SIGNALS`).
    - ``metric`` / ``template``: the certainty metric and the prompt it is read under.
    - ``fusion``: how the signals' scores become one ranking (:mod:`entropy_retriever.fusion`).
    - ``hops``: how many times the best candidates are rescored given what was picked
      (0 turns the multi-hop stage off; :mod:`entropy_retriever.hops`).
    """

    segment_tokens: int = 512
    overlap_tokens: int = 0
    token_budget: int = 1536
    signals: tuple[str, ...] = ("certainty", "bm25", "dense")
    metric: "str | MetricFn" = DEFAULT_METRIC
    template: "str | PromptTemplate" = "plain"
    fusion: str = "zscore"
    hops: int = 0

    def __post_init__(self) -> None:
        """Every field checked, so that a mistake is reported before any model loads."""
        check_segment_options(self.segment_tokens, self.overlap_tokens, "strict")
        check_positive("token_budget", self.token_budget)
        if self.token_budget < self.segment_tokens // 2:
            raise InputError(
                f"token_budget={self.token_budget} cannot hold one segment of about {self.segment_tokens} "
                f"tokens: raise token_budget or lower segment_tokens (to at most {2 * self.token_budget})"
            )
        object.__setattr__(self, "signals", validate_signals(self.signals))
        resolve_metric(self.metric)
        template = self.template
        if isinstance(template, str) and template != "chat" and template not in TEMPLATES:
            raise InputError(f"unknown template {template!r}: choose 'chat', one of {sorted(TEMPLATES)}, or pass a PromptTemplate")
        make_fusion(self.fusion)
        if isinstance(self.hops, bool) or not isinstance(self.hops, int) or self.hops < 0:
            raise InputError(f"hops must be a whole number of at least 0 (0 turns the multi-hop stage off), got {self.hops!r}")

    @property
    def metric_name(self) -> str:
        """The certainty metric's registered name (a custom function's own name)."""
        return resolve_metric(self.metric)[0]

    @property
    def label(self) -> str:
        """How segments are scored: the certainty metric alone, or ``fusion(signals)``."""
        return make_fusion(self.fusion).label(self.signals, resolve_metric(self.metric)[0])

    def but(self, **changes) -> "SelectionConfig":
        """A copy with some fields changed."""
        return replace(self, **changes)


DEFAULT = SelectionConfig()
