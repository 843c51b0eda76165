"""Reranking in RAG: a vector store gives candidate passages; each method keeps a few."""

from __future__ import annotations

import json
import statistics
import time

from benchmarks.common import count_option, examples_of, progress, save
from benchmarks.evidence import DATASETS
from entropy_retriever import load_model
from entropy_retriever.scoring import CertaintyScorer

HELP = "reranking in RAG: 20 candidates from all-MiniLM-L6-v2, each method keeps 3"


def add_arguments(p) -> None:
    p.add_argument("--datasets", nargs="+", default=["babi", "lowoverlap", "loogle_long", "lowoverlap_control"], choices=list(DATASETS))
    p.add_argument("--n", nargs="+", default=["8"], type=count_option, help="examples per data set, as for evidence")
    p.add_argument("--passage-tokens", type=int, default=96, help="passage size of the vector store")
    p.add_argument("--candidates", type=int, default=20, help="passages the first stage retrieves")
    p.add_argument("--keep", type=int, default=3, help="passages the reranker keeps")
    p.add_argument("--window-tokens", type=int, default=3072)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", default=None)
    p.add_argument("--model", default=None)


def run(args) -> None:
    """Reranking in RAG: a vector store gives 20 candidate passages; each method keeps 3."""
    from benchmarks import evidence as ev

    root = ev.data_dir(args.data)
    model, tokenizer = load_model(args.model)
    examples = examples_of(ev, root, tokenizer, args.datasets, args.n, args.window_tokens, args.seed)
    scorers = {t: CertaintyScorer(model, tokenizer, template=t, progress=False) for t in ("plain", "longllmlingua")}
    minilm = ev.MiniLM()
    rows = []
    for example in progress(examples, desc="reranking", unit="doc"):
        started = time.perf_counter()
        candidates = ev.first_stage(example, tokenizer, args.passage_tokens, minilm, args.candidates)
        ceiling = ev.recall(example, candidates, list(range(len(candidates))))
        for method, ranking in ev.rerank_rankings(example, candidates, scorers, minilm, args.seed).items():
            rows.append({"dataset": example.dataset, "id": example.id, "method": method, "budget": args.keep,
                         "recall": ev.recall(example, candidates, ev.keep_top(ranking, candidates, args.keep)),
                         "ceiling": ceiling, "candidates": len(candidates)})
        print(json.dumps({"dataset": example.dataset, "id": example.id, "candidates": len(candidates),
                          "ceiling": round(ceiling, 2), "seconds": round(time.perf_counter() - started, 1)}), flush=True)
    datasets = ev.datasets_present(args.datasets, rows)
    table, _ = ev.summarise(rows, [args.keep], datasets)
    ceilings = " | ".join(f"{d} {statistics.fmean(r['ceiling'] for r in rows if r['dataset'] == d and r['method'] == 'random'):.2f}"
                          for d in datasets)
    table += f"\n\nRecall of all {args.candidates} candidates (the most any reranker can keep): {ceilings}."
    save("rerank", vars(args) | {"data": str(root)}, rows, table)
