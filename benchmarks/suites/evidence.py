"""Evidence recall at the shipped configuration, on the held-out test halves: the default against every baseline.

Each example is a ~4k-token document (``--window-tokens``) cut by the product's segmenter at
``DEFAULT.segment_tokens``; every method ranks the same segments and keeps what fits
``DEFAULT.token_budget`` (the product's own rule, separators charged). Recall is the share of
the evidence's characters inside what is kept. The default row is the product's pipeline
(``entropy_retriever.pipeline.rank`` on ``entropy_retriever.config.DEFAULT``).

Data sets (``benchmarks.multihop``), each split into a development and a test half by a fixed
seed, over source items (questions, stories, needle pairs): methods and weights were chosen on
``--split dev``; the README and the results page report ``--split test``.

``--segment-tokens N`` asks what another segment size would give: the same methods, budget and
fusion at N-token segments (saved as ``evidence-segments-N``; the shipped results are left alone).
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.common import check_counts, count_option, progress, save

HELP = "evidence recall at the shipped configuration, on held-out test halves: the default vs baselines"
DATASETS = ("lowoverlap", "babi3", "twowiki", "musique", "lowoverlap_control")
# Per data set, the test half's size (or all of a smaller half); the development halves hold 26-30.
DEFAULT_N = {"lowoverlap": 52, "lowoverlap_control": 52, "babi3": 50, "twowiki": 50, "musique": 50}


def add_arguments(p) -> None:
    p.add_argument("--split", default="test", choices=["dev", "test", "all"], help="which half of every data set (default test)")
    p.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    p.add_argument("--n", nargs="+", default=[], type=count_option,
                   help="examples per data set: a number for all, then NAME=COUNT for some (default: 52 needles, 50 of the others)")
    p.add_argument("--window-tokens", type=int, default=4096, help="document length in tokens")
    p.add_argument("--seed", type=int, default=0, help="the split and the documents' seed")
    p.add_argument("--data", default=None, help="evaluation data folder (default: $ENTROPY_RETRIEVER_DATA or ../shared/data)")
    p.add_argument("--model", default=None)
    p.add_argument("--int8", action="store_true",
                   help="also score every example with the int8 scorer (dtype='int8'): its row, and how often its "
                        "top 3 segments and its kept segments are float32's (saved as evidence-int8)")
    p.add_argument("--scorer", default=None, metavar="MODEL",
                   help="also score the very same segments with another model (a folder or a .gguf file, e.g. "
                        "Gemma-3-270M): its certainty alone and the default pipeline with it, and both scorers' speed "
                        "on the same segments, side by side (saved as evidence-scorer)")
    p.add_argument("--segment-tokens", type=int, default=None, metavar="N",
                   help="measure every method at N-token segments instead of the shipped size (the rest of the "
                        "configuration as shipped; saved as evidence-segments-N, the shipped results left alone)")


def run(args) -> None:
    if sum(bool(x) for x in (args.int8, args.scorer, args.segment_tokens)) > 1:
        raise SystemExit("--int8, --scorer and --segment-tokens each write their own results: run them one at a time")
    counts = check_counts(args.n, args.datasets)  # before any model loads
    config = measured_config(args.segment_tokens)
    from benchmarks import evidence as ev
    from benchmarks import multihop, shipped
    from benchmarks.signal_cache import StatsCache
    from entropy_retriever import load_model
    from entropy_retriever.quantize import quantize_int8
    from entropy_retriever.selection import Selection
    from entropy_retriever.signals import DenseEmbedder

    root = ev.data_dir(args.data)
    model, tokenizer = load_model(args.model, dtype="float32")
    everywhere = counts.pop(None, None)
    cache = StatsCache(model, tokenizer, config)
    cache8 = StatsCache(quantize_int8(model), tokenizer, config) if args.int8 else None
    other, other_name = None, ""
    if args.scorer:  # a second model scores the segments the embedded model's tokenizer cut
        other_model, other_tokenizer = load_model(args.scorer, dtype="float32")
        other = StatsCache(other_model, other_tokenizer, config, segmenter=cache.segmenter)
        other_name = Path(args.scorer).stem if Path(args.scorer).exists() else args.scorer
    same_top3, same_kept = [], []
    embedder = DenseEmbedder.shared()
    window = DenseEmbedder(unit="window")  # sentence-transformers' reading: 256 pieces (here over every window)
    gap = shipped.gap_tokens(tokenizer)
    rows, started = [], time.perf_counter()
    first_segments: list = []  # the speed check's segments: the first documents' own
    methods = {
        "default": lambda item: shipped.default_ranking(item, config),
        "default, no hops": lambda item: shipped.default_ranking(item, config.but(hops=0)),
        **{name: (lambda name: lambda item: shipped.baseline_rankings(item, config)[name])(name)
           for name in ("bm25", "minilm", "bm25+minilm rrf", "certainty", "rrf(certainty, bm25, dense)")},
    }
    for dataset in args.datasets:
        n = counts.get(dataset, everywhere or DEFAULT_N[dataset])
        examples = multihop.load(root, tokenizer, dataset, args.split, n, args.window_tokens, args.seed)
        for example in progress(examples, desc=dataset, unit="doc"):
            segments, stats = cache.stats(example)
            if len(first_segments) < 24:
                first_segments += segments[: 24 - len(first_segments)]
            item = shipped.Scored(example, segments, stats, embedder)
            item_window = window.scores(item.texts, example.question)
            for name, fn in methods.items():
                rows.append({"dataset": dataset, "id": example.id, "method": name,
                             "recall": item.recall(fn(item), config.token_budget, gap)})
            if cache8 is not None:  # the same segments, scored by the int8 copy
                item8 = item.with_stats(cache8.stats(example)[1])  # BM25 and the dense signal are the same
                r32, r8 = shipped.default_ranking(item, config), shipped.default_ranking(item8, config)
                rows.append({"dataset": dataset, "id": example.id, "method": "default, int8 scorer",
                             "recall": item8.recall(r8, config.token_budget, gap)})
                same_top3.append(set(r32[:3].tolist()) == set(r8[:3].tolist()))
                kept = [Selection(token_budget=config.token_budget).choose_order(item.sizes, r, gap) for r in (r32, r8)]
                same_kept.append(set(kept[0]) == set(kept[1]))
            if other is not None:  # the same segments, BM25 and dense signal; another model's certainty
                item_other = item.with_stats(other.stats(example)[1])
                rows.append({"dataset": dataset, "id": example.id, "method": f"default, {other_name} scorer",
                             "recall": item_other.recall(shipped.default_ranking(item_other, config), config.token_budget, gap)})
                rows.append({"dataset": dataset, "id": example.id, "method": f"certainty, {other_name}",
                             "recall": item_other.recall(shipped.ranking_of(item_other.certainty[config.metric]),
                                                         config.token_budget, gap)})
            rows.append({"dataset": dataset, "id": example.id, "method": "minilm (256-piece windows)",
                         "recall": item.recall(shipped.ranking_of(item_window), config.token_budget, gap)})
        print(json.dumps({"dataset": dataset, "examples": len(examples),
                          "model_passes": cache.computed + (cache8.computed if cache8 else 0) + (other.computed if other else 0),
                          "seconds": round(time.perf_counter() - started)}), file=sys.stderr, flush=True)
    table, summary = shipped.summary_table(rows, args.datasets)
    settings = vars(args) | {"config": repr(config), "data": str(root)}
    if other is not None:
        embedded_name = Path(cache.model_id["name"]).name or "the embedded model"
        speed = side_by_side_speed({"embedded": cache.scorer, other_name: other.scorer}, first_segments)
        table += (f"\n\nScoring speed on the same segments of the first documents ({speed['tokens']:,} tokens, each scorer "
                  f"{speed['repeats']} times, interleaved, the median): {embedded_name} {speed['embedded']:,.0f} tokens/s, "
                  f"{other_name} {speed[other_name]:,.0f} tokens/s ({speed[other_name] / speed['embedded']:.2f}x).")
        save("evidence-scorer", settings, rows, table, extra={"summary": summary, "speed": speed, "scorer": other_name})
        return
    if args.segment_tokens:
        save(f"evidence-segments-{config.segment_tokens}", settings, rows, table, extra={"summary": summary})
        return
    if cache8 is None:
        save("evidence", settings, rows, table, extra={"summary": summary, "readme_table": table})
        return
    agreement = {"documents": len(same_top3), "same_top3": float(np.mean(same_top3)), "same_kept": float(np.mean(same_kept))}
    speed = side_by_side_speed({"float32": cache.scorer, "int8": cache8.scorer}, first_segments)
    agreement |= speed
    table += (f"\n\nint8 scorer against float32, at the shipped configuration, on {agreement['documents']} documents: "
              f"the same top 3 segments on {agreement['same_top3']:.1%}, the same kept segments on {agreement['same_kept']:.1%}. "
              f"Scoring speed on the same segments of the first documents ({speed['tokens']:,} tokens, each dtype "
              f"{speed['repeats']} times, interleaved, the median): float32 {speed['float32']:,.0f} tokens/s, int8 "
              f"{speed['int8']:,.0f} tokens/s (**{speed['int8'] / speed['float32']:.2f}x**).")
    save("evidence-int8", settings, rows, table, extra={"summary": summary, "agreement": agreement})


def measured_config(segment_tokens: int | None):
    """The shipped configuration, or the same at ``segment_tokens``-token segments (checked before any model loads)."""
    from entropy_retriever.config import DEFAULT
    from entropy_retriever.errors import InputError

    if segment_tokens is None:
        return DEFAULT
    try:
        return DEFAULT.but(segment_tokens=segment_tokens)
    except InputError as e:
        raise SystemExit(f"--segment-tokens {segment_tokens}: {e}") from None


def side_by_side_speed(scorers: dict, segments, repeats: int = 3) -> dict:
    """Each scorer's throughput (tokens/s, in the first scorer's tokens) on the same segments, the
    scorers interleaved ``repeats`` times (the median of each), so that all see the same machine load."""
    question = "What does the text say about the main topic?"
    tokens = sum(s.n_tokens for s in segments)
    for scorer in scorers.values():  # warm-up
        scorer.token_stats(segments[:2], question)
    seconds: dict[str, list[float]] = {name: [] for name in scorers}
    for _ in range(repeats):
        for name, scorer in scorers.items():
            started = time.perf_counter()
            scorer.token_stats(segments, question)
            seconds[name].append(time.perf_counter() - started)
    return {"tokens": tokens, "repeats": repeats} | {name: tokens / statistics.median(v) for name, v in seconds.items()}
