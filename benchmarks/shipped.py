"""Evidence recall at the shipped configuration: the product's own ranking pipeline against baselines.

Every example's segments are cut by the product's segmenter at ``DEFAULT.segment_tokens``,
the model's statistics come from :mod:`benchmarks.signal_cache` (one forward pass per segment),
and each method ranks the same segments. What is kept is what the product keeps:
``Selection(token_budget=DEFAULT.token_budget).choose_sizes`` on that ranking, with the
separator charged. The default row runs :func:`entropy_retriever.pipeline.rank`, the function
the reader itself calls, on the configuration object the reader uses.
"""

from __future__ import annotations

import copy
import statistics

import numpy as np

from entropy_retriever.config import SelectionConfig
from entropy_retriever.fusion import RRF
from entropy_retriever.pipeline import rank
from entropy_retriever.scoring import METRICS
from entropy_retriever.selection import GAP, Selection
from entropy_retriever.signals import DenseEmbedder, bm25_scores

# The sets whose questions share few words with their evidence, or need two or more facts.
HARD = ("lowoverlap", "babi3", "twowiki", "musique")
# The lexical controls: the needles asked with their own words.
CONTROLS = ("lowoverlap_control",)


class Scored:
    """One example with every signal the methods need: segments, certainty metrics, BM25, dense."""

    def __init__(self, example, segments, stats, embedder: DenseEmbedder) -> None:
        self.example, self.segments = example, segments
        self.texts = [s.text for s in segments]
        self.certainty = {name: fn(stats).tolist() for name, fn in METRICS.items()}
        self.bm25 = bm25_scores(self.texts, example.question)
        self.dense = embedder.scores(self.texts, example.question)
        self.sizes = [s.n_tokens for s in segments]

    def with_stats(self, stats) -> "Scored":
        """The same example with another scorer's statistics (the model-free signals kept)."""
        other = copy.copy(self)
        other.certainty = {name: fn(stats).tolist() for name, fn in METRICS.items()}
        return other

    def signals(self, config: SelectionConfig) -> dict[str, list[float]]:
        values = {"certainty": self.certainty[config.metric], "bm25": self.bm25, "dense": self.dense}
        return {name: values[name] for name in config.signals}

    def recall(self, ranking, budget: int, gap: int) -> float:
        """The share of the evidence characters inside what the product keeps from ``ranking``."""
        kept = Selection(token_budget=budget).choose_order(self.sizes, ranking, gap)
        return evidence_inside(self.example, self.segments, kept)


def evidence_inside(example, segments, indices) -> float:
    """The share of ``example``'s evidence characters inside the segments at ``indices``."""
    total = sum(b - a for a, b in example.evidence)
    covered = sum(max(0, min(b, segments[i].end) - max(a, segments[i].start)) for a, b in example.evidence for i in indices)
    return covered / total


def ranking_of(values) -> np.ndarray:
    """Indices from the best (lowest) score to the worst, ties in input order."""
    return np.argsort(np.asarray(values, dtype=np.float64), kind="stable")


def baseline_rankings(item: Scored, config: SelectionConfig) -> dict[str, np.ndarray]:
    """The methods that use no model (BM25, MiniLM, their RRF) and the model alone, and the old default."""
    return {
        "bm25": ranking_of(item.bm25),
        "minilm": ranking_of(item.dense),
        "bm25+minilm rrf": ranking_of(RRF().fuse({"bm25": item.bm25, "dense": item.dense})),
        "certainty": ranking_of(item.certainty[config.metric]),
        "rrf(certainty, bm25, dense)": ranking_of(RRF().fuse(item.signals(config.but(signals=("certainty", "bm25", "dense"))))),
    }


def default_ranking(item: Scored, config: SelectionConfig) -> np.ndarray:
    """The product's pipeline on this example's signals, exactly as the reader ranks."""
    texts = item.texts
    return rank(item.signals(config), item.example.question, config, lambda idx: [texts[i] for i in idx]).order


def evaluate(items: list[Scored], methods: dict, config: SelectionConfig, gap: int) -> list[dict]:
    rows = []
    for item in items:
        for name, fn in methods.items():
            rows.append({"dataset": item.example.dataset, "id": item.example.id, "method": name,
                         "recall": item.recall(fn(item), config.token_budget, gap)})
    return rows


def means(rows: list[dict]) -> dict[tuple[str, str], float]:
    out: dict[tuple[str, str], list[float]] = {}
    for r in rows:
        out.setdefault((r["method"], r["dataset"]), []).append(r["recall"])
    return {k: statistics.fmean(v) for k, v in out.items()}


def gap_tokens(tokenizer) -> int:
    return len(tokenizer(GAP, add_special_tokens=False)["input_ids"])


# The baselines that use no model: the default must beat the best of them on the hard sets.
NO_MODEL = ("bm25", "minilm", "minilm (256-piece windows)", "bm25+minilm rrf")


def summary_table(rows: list[dict], datasets: list[str]) -> tuple[str, dict]:
    """Markdown: mean recall [95% bootstrap CI] per method and data set, the hard sets' mean, and
    the default's margins over the best no-model baseline (hard sets, low-overlap needles) and
    against BM25 on the lexical controls."""
    from benchmarks.evidence import bootstrap_ci

    methods = list(dict.fromkeys(r["method"] for r in rows))
    hard = [d for d in datasets if d in HARD]
    per: dict[tuple[str, str], list[float]] = {}
    for r in rows:
        per.setdefault((r["method"], r["dataset"]), []).append(r["recall"])
    mean = {k: statistics.fmean(v) for k, v in per.items()}
    hard_mean = {m: statistics.fmean(mean[(m, d)] for d in hard) for m in methods} if hard else {}
    show_mean = len(hard) > 1  # a mean over one set would repeat its column
    sizes = ", ".join(f"{d} {len(per[(methods[0], d)])}" for d in datasets)
    lines = [f"Evidence recall (mean [95% bootstrap CI]; n: {sizes})", "",
             "| method | " + " | ".join(datasets) + (" | mean, hard sets |" if show_mean else " |"),
             "|---|" + "---|" * (len(datasets) + show_mean)]
    for m in methods:
        cells = []
        for d in datasets:
            lo, hi = bootstrap_ci(per[(m, d)])
            cells.append(f"{mean[(m, d)]:.2f} [{lo:.2f}, {hi:.2f}]")
        lines.append(f"| {m} | " + " | ".join(cells) + (f" | {hard_mean[m]:.3f} |" if show_mean else " |"))
    summary: dict = {"mean": {f"{m}|{d}": v for (m, d), v in mean.items()}, "hard_mean": hard_mean}
    baselines = [m for m in NO_MODEL if m in methods]
    if "default" in methods and baselines:
        notes = []
        if show_mean:
            best = max(baselines, key=lambda m: hard_mean[m])
            summary["hard_margin"] = hard_mean["default"] - hard_mean[best]
            notes.append(f"hard sets: default {hard_mean['default']:.3f} against the best no-model baseline "
                         f"({best}) {hard_mean[best]:.3f}: {100 * summary['hard_margin']:+.1f} points")
        if "lowoverlap" in datasets:
            best = max(baselines, key=lambda m: mean[(m, "lowoverlap")])
            summary["lowoverlap_margin"] = mean[("default", "lowoverlap")] - mean[(best, "lowoverlap")]
            notes.append(f"low-overlap needles: {100 * summary['lowoverlap_margin']:+.1f} points over {best}")
        for d in datasets:
            if d in CONTROLS and "bm25" in methods:
                summary[f"{d}_vs_bm25"] = mean[("default", d)] - mean[("bm25", d)]
                notes.append(f"{d}: {100 * summary[f'{d}_vs_bm25']:+.1f} points against BM25")
        lines += ["", "Margins of the default: " + "; ".join(notes) + "."]
    return "\n".join(lines), summary
