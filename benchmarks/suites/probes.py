"""Other model signals against the default, on the development halves (:mod:`benchmarks.probes`).

The documents, segments and budget are the ``evidence`` suite's (the shipped configuration).
Rows: the default; the model's certainty alone; then, per probe, the probe alone and the
default with it:

- ``attention``: in-context reranking, every head; and the ``--heads`` heads that found the
  evidence best on the *other* half of the documents (two folds, so no document picks its own).
  ``default + attention``: the default's fused score and the best heads' score, each standardised
  over the document, added with ``--weight``.
- ``halves``: the better half's certainty, alone and in place of the certainty signal.
- ``gain``: the question read first, alone and added to the default like the attention.

Methods are chosen on ``--split dev`` (the default here); nothing from this suite ships.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

from benchmarks.common import check_counts, count_option, progress, save

HELP = "other model signals (attention, half-segment certainty, question-first gain) against the default, development halves"
PROBES = ("attention", "halves", "gain")


def add_arguments(p) -> None:
    from benchmarks.suites.evidence import DATASETS

    p.add_argument("--split", default="dev", choices=["dev", "test", "all"], help="which half of every data set (default dev)")
    p.add_argument("--datasets", nargs="+", default=["lowoverlap"], choices=list(DATASETS))
    p.add_argument("--probes", nargs="+", default=list(PROBES), choices=list(PROBES))
    p.add_argument("--n", nargs="+", default=[], type=count_option,
                   help="examples per data set: a number for all, then NAME=COUNT for some (default: the evidence suite's)")
    p.add_argument("--heads", type=int, default=8, help="how many attention heads the selected-heads rows read")
    p.add_argument("--weight", type=float, default=0.5, help="a probe's weight when added to the default's fused score")
    p.add_argument("--window-tokens", type=int, default=4096, help="document length in tokens")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", default=None, help="evaluation data folder (default: $ENTROPY_RETRIEVER_DATA or ../shared/data)")
    p.add_argument("--model", default=None)


def run(args) -> None:
    counts = check_counts(args.n, args.datasets)  # before any model loads
    from benchmarks import evidence as ev
    from benchmarks import multihop, probes, shipped
    from benchmarks.signal_cache import StatsCache
    from benchmarks.suites.evidence import DEFAULT_N
    from entropy_retriever import load_model
    from entropy_retriever.config import DEFAULT
    from entropy_retriever.fusion import standardise
    from entropy_retriever.pipeline import rank
    from entropy_retriever.signals import DenseEmbedder

    root = ev.data_dir(args.data)
    model, tokenizer = load_model(args.model, dtype="float32")
    everywhere = counts.pop(None, None)
    cache = StatsCache(model, tokenizer, DEFAULT)
    attention = probes.AttentionProbe(model, tokenizer) if "attention" in args.probes else None
    gain = probes.QuestionFirstGain(model, tokenizer) if "gain" in args.probes else None
    embedder, gap = DenseEmbedder.shared(), shipped.gap_tokens(tokenizer)
    rows, started = [], time.perf_counter()

    def add(item, method, ranking) -> None:
        rows.append({"dataset": item.example.dataset, "id": item.example.id, "method": method,
                     "recall": item.recall(ranking, DEFAULT.token_budget, gap)})

    def with_default(fused, extra) -> np.ndarray:  # the default's fused score (lower = better) less a probe's
        return shipped.ranking_of(standardise(np.asarray(fused)) - args.weight * standardise(np.asarray(extra)))

    for dataset in args.datasets:
        examples = multihop.load(root, tokenizer, dataset, args.split, counts.get(dataset, everywhere or DEFAULT_N[dataset]),
                                 args.window_tokens, args.seed)
        items, heads, fused = [], [], []
        for example in progress(examples, desc=dataset, unit="doc"):
            segments, stats = cache.stats(example)
            item = shipped.Scored(example, segments, stats, embedder)
            items.append(item)
            ranked = rank(item.signals(DEFAULT), example.question, DEFAULT, lambda idx, texts=item.texts: [texts[i] for i in idx])
            fused.append(ranked.fused)  # the default's, ranked once: its row and the probes added to it
            add(item, "default", ranked.order)
            add(item, "certainty", shipped.ranking_of(item.certainty[DEFAULT.metric]))
            if "halves" in args.probes:
                half = probes.half_certainty(cache.scorer, item.texts, example.question, DEFAULT.metric)
                add(item, "halves alone", shipped.ranking_of(-half))
                signals = item.signals(DEFAULT) | {"certainty": (-half).tolist()}
                add(item, "default, halves as certainty",
                    rank(signals, example.question, DEFAULT, lambda idx, texts=item.texts: [texts[i] for i in idx]).order)
            if gain is not None:
                g = gain.scores(item.texts, example.question)
                add(item, "gain alone", shipped.ranking_of(-g))
                add(item, "default + gain", with_default(fused[-1], g))
            if attention is not None:
                heads.append(attention.head_scores(item.texts, example.question))
                add(item, "attention, every head", shipped.ranking_of(-probes.heads_score(heads[-1])))
        if attention is not None and len(items) >= 2:  # heads chosen on one fold, used on the other
            targets = [np.array([shipped.evidence_inside(it.example, it.segments, [i]) > 0.5 for i in range(len(it.texts))])
                       for it in items]
            order = np.random.default_rng(args.seed).permutation(len(items))
            folds = [order[: len(items) // 2], order[len(items) // 2:]]
            for chosen, other in (folds, folds[::-1]):
                usable = [i for i in other if targets[i].any()]
                best = probes.best_heads([heads[i] for i in usable], [targets[i] for i in usable], args.heads)
                for i in chosen:
                    score = probes.heads_score(heads[i], best)
                    add(items[i], f"attention, {args.heads} best heads", shipped.ranking_of(-score))
                    add(items[i], "default + attention", with_default(fused[i], score))
        print(json.dumps({"dataset": dataset, "examples": len(examples), "seconds": round(time.perf_counter() - started)}),
              file=sys.stderr, flush=True)
    table, summary = shipped.summary_table(rows, args.datasets)
    save("evidence-probes", vars(args) | {"config": repr(DEFAULT), "data": str(root)}, rows, table, extra={"summary": summary})
