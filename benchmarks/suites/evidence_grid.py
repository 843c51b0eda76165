"""A diagnostic grid: evidence recall at 1, 2 or 4 segments of 256 tokens for every certainty metric, rank fusion and baseline.

The shipped configuration is measured by the ``evidence`` suite; this grid compares metrics and templates on one forward pass."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from benchmarks.common import RESULTS, count_option, examples_of, progress, save
from benchmarks.evidence import DATASETS, EVIDENCE_DATASETS
from entropy_retriever import load_model
from entropy_retriever.scoring import CertaintyScorer

HELP = "diagnostic grid: evidence recall at 1, 2 or 4 segments for every certainty metric, fusion and baseline"


def add_arguments(p) -> None:
    p.add_argument("--datasets", nargs="+", default=list(EVIDENCE_DATASETS), choices=list(DATASETS))
    p.add_argument("--n", nargs="+", default=["8"], type=count_option,
                   help="examples per data set: a number for all, then NAME=COUNT for some (loogle_long has 9 usable questions)")
    p.add_argument("--segments", type=int, nargs="+", default=[1, 2, 4], help="budgets: how many segments each method keeps")
    p.add_argument("--segment-tokens", type=int, default=256)
    p.add_argument("--window-tokens", type=int, default=3072, help="document length for LooGLE windows and the essay haystacks")
    p.add_argument("--templates", nargs="+", default=["plain"], help="templates for our certainty metrics (LongLLMLingua's is always run as a baseline)")
    p.add_argument("--scores", default=None, help="recompute the tables from the per-segment scores saved by an earlier run (no model runs)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", default=None, help="evaluation data folder (default: $ENTROPY_RETRIEVER_DATA or ../shared/data)")
    p.add_argument("--model", default=None)


def run(args) -> None:
    from benchmarks import evidence as ev

    if args.scores:
        return from_scores(args)
    root = ev.data_dir(args.data)
    model, tokenizer = load_model(args.model)
    examples = examples_of(ev, root, tokenizer, args.datasets, args.n, args.window_tokens, args.seed)
    scorers = {t: CertaintyScorer(model, tokenizer, template=t, progress=False)
               for t in (*args.templates, "longllmlingua")}
    minilm = ev.MiniLM()
    rows, raw, signal_seconds = [], [], {}
    minilm.scores(ev.segment_example(examples[0], tokenizer, args.segment_tokens)[:1], "warm up")
    for example in progress(examples, desc="evidence recall", unit="doc"):
        segments = ev.segment_example(example, tokenizer, args.segment_tokens)
        started = time.perf_counter()
        scores = ev.method_scores(example, segments, scorers, minilm, signal_seconds)
        rankings = ev.rankings_for(example, segments, scores, args.seed)
        seconds = time.perf_counter() - started
        for method, ranking in rankings.items():
            for k in args.segments:
                rows.append({"dataset": example.dataset, "id": example.id, "method": method, "budget": k,
                             "recall": ev.recall(example, segments, ev.keep_top(ranking, segments, k)),
                             "rank": ev.evidence_rank(example, segments, ranking), "segments": len(segments),
                             "tokens": sum(s.n_tokens for s in segments)})
        raw.append({"dataset": example.dataset, "id": example.id, "question": example.question,
                    "evidence": example.evidence, "spans": [(s.start, s.end) for s in segments],
                    "scores": {m: [round(v, 5) for v in values] for m, values in scores.items()}})
        print(json.dumps({"dataset": example.dataset, "id": example.id, "segments": len(segments),
                          "seconds": round(seconds, 1)}), flush=True)
    datasets = ev.datasets_present(args.datasets, rows)
    table, means = ev.summarise(rows, args.segments, datasets)
    cost = ev.signal_cost_table(signal_seconds, sum(r["tokens"] for r in rows if r["method"] == "random" and r["budget"] == args.segments[0]))
    readme_table = ev.readme_summary(rows, args.segments, datasets) + "\n\n" + cost
    save("evidence-grid", vars(args) | {"command": " ".join(sys.argv), "data": str(root)}, rows, table + "\n\n" + cost,
         extra={"scores": raw, "seconds": signal_seconds, "readme_table": readme_table})


def from_scores(args) -> None:
    """Recompute every ranking, fusion and table from the per-segment scores an earlier run saved.

    No model runs: the loaders rebuild the same documents (the run's settings and seed), and each
    document's segment spans and evidence are checked against the saved ones before use.
    """
    from benchmarks import evidence as ev
    from entropy_retriever.segments import Segment

    earlier = json.loads(Path(args.scores).read_text())
    settings = earlier["settings"]
    root = ev.data_dir(args.data or settings.get("data"))
    _, tokenizer = load_model(args.model)
    examples = {(e.dataset, str(e.id)): e for e in examples_of(
        ev, root, tokenizer, settings["datasets"], settings["n"], settings["window_tokens"], settings["seed"])}
    rows = []
    for saved in earlier["scores"]:
        example = examples.get((saved["dataset"], str(saved["id"])))
        if example is None or [list(x) for x in example.evidence] != [list(x) for x in saved["evidence"]]:
            raise SystemExit(f"{args.scores}: {saved['dataset']} {saved['id']} is not the document these loaders build; "
                             "rerun the suite instead of reusing its scores")
        segments = [Segment(i, "", a, b, example.context[a:b], 0) for i, (a, b) in enumerate(saved["spans"])]
        for method, ranking in ev.rankings_for(example, segments, saved["scores"], settings["seed"]).items():
            for k in args.segments:
                rows.append({"dataset": example.dataset, "id": example.id, "method": method, "budget": k,
                             "recall": ev.recall(example, segments, ev.keep_top(ranking, segments, k)),
                             "rank": ev.evidence_rank(example, segments, ranking), "segments": len(segments)})
    datasets = ev.datasets_present(settings["datasets"], rows)
    table, _ = ev.summarise(rows, args.segments, datasets)
    readme_table = ev.readme_summary(rows, args.segments, datasets)
    command = f"{settings['command']}, then python -m benchmarks " + " ".join(sys.argv[1:])
    payload = {"suite": "evidence-grid", "environment": earlier["environment"],
               "settings": settings | {"command": command, "segments": args.segments, "recomputed_from": args.scores},
               "rows": rows, "table": table, "readme_table": readme_table, "scores": earlier["scores"]}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "evidence-grid.json").write_text(json.dumps(payload, indent=1))
    (RESULTS / "evidence-grid.md").write_text(table + "\n")
    print(table)
    print(f"\n(recomputed from {args.scores}; saved {RESULTS / 'evidence-grid'}.json and .md)")
