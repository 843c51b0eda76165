"""The model's per-token statistics of every segment of every evidence example, computed once.

The certainty signal is almost all of a selection's cost; everything else a ranking needs
(BM25, the dense signal, any fusion, the multi-hop stage) is cheap. So the evidence suite
scores each example's segments with the model once, at the shipped configuration (its
segment size and template), keeps the :class:`~entropy_retriever.scoring.TokenStats` (a few
kilobytes an example), and computes every method's ranking from them. Any certainty metric
can be computed from the statistics again, so metrics are compared on the same forward passes.

A cache file is keyed by everything that changes the statistics: the model's identity, the
segmenting and the template, and the example's text and question.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from entropy_retriever.scoring import CertaintyScorer, TokenStats
from entropy_retriever.segments import Segmenter

CACHE = Path("bench-results") / "evidence-cache"


def _key(example, config, model_id: str, cut_by: str = "") -> str:
    h = hashlib.sha256()
    parts = (model_id, config.segment_tokens, config.overlap_tokens, config.template, example.question, example.context)
    for part in parts + ((cut_by,) if cut_by else ()):
        h.update(repr(part).encode("utf-8", "surrogatepass"))
        h.update(b"\0")
    return h.hexdigest()[:32]


class StatsCache:
    """``stats(example)``: the segments and their statistics, from the cache or computed now.

    ``segmenter`` cuts the segments with another model's tokenizer (by default the scorer's own),
    so that a second scorer reads exactly the segments the first one ranks.
    """

    def __init__(self, model, tokenizer, config, folder: Path = CACHE, segmenter: Segmenter | None = None) -> None:
        from entropy_retriever.streaming import model_identity

        self.segmenter = segmenter or Segmenter(tokenizer, config.segment_tokens, config.overlap_tokens)
        self.cut_by = "" if segmenter is None else str(getattr(segmenter.tokenizer, "name_or_path", "")) or "other"
        self.scorer = CertaintyScorer(model, tokenizer, metric=config.metric, template=config.template, progress=False)
        self.config = config
        self.model_id = model_identity(model)
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.computed = 0

    def stats(self, example, *, compute: bool = True):
        """The example's segments and their statistics (None when not cached and ``compute`` is off)."""
        segments = list(self.segmenter.split(example.context))
        path = self.folder / f"{_key(example, self.config, self.model_id, self.cut_by)}.pt"
        if path.exists():
            saved = torch.load(path, weights_only=True)
            return segments, TokenStats(**saved)
        if not compute:
            return segments, None
        stats = self.scorer.token_stats(segments, example.question)
        tmp = path.with_suffix(".tmp")
        torch.save({f: getattr(stats, f) for f in ("nll", "entropy", "ids", "own", "prior_nll", "prior_entropy")}, tmp)
        tmp.replace(path)
        self.computed += 1
        return segments, stats
