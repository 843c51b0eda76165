"""The opt-in cascade (``prefilter=``): its speed-up and its recall cost, side by side with the full reader.

Needles: a lexical needle hidden in a haystack of Python's pydoc topics and essays (as the
``needles`` suite builds it, repeated in a new order when a length needs more text), asked in
its own words. At each length the full reader (the model reads every segment) and the cascade
(BM25 and the embedder rank every segment; the model reads the shortlist) run on the same
document, one after the other, with every other option at its default. Above ``--full-up-to``
tokens only the cascade runs, and the full reader's time is projected from its tokens/s at the
longest length it ran (the table says which numbers are projected).

Evidence: the recall of the default and of the cascade on the evidence test halves, ranked from
the cached model statistics by the same functions the reader calls (``pipeline.shortlist`` and
``pipeline.rank``). These documents are ~4k tokens (8 segments), so the shortlist holds nearly
all of them: this part checks that nothing is lost on short inputs, not the cascade's reach.

Reach (``--parts reach``): the same test halves built as longer documents (32k tokens, 64
segments, by default), where the shortlist is a small share. No model is needed to see what
the cascade can lose: the share of the evidence's characters inside the segments the model
would read (the cheap signals' shortlist), against the share the same number of segments
would hold if taken at random. Evidence outside the shortlist is never read by the model, so
``1 - reach`` bounds the cascade's recall cost from above.
"""

from __future__ import annotations

import random
import statistics
import sys
import time

import numpy as np

from benchmarks.common import save

HELP = "the cascade (prefilter=) against the full reader: needles at 100k+ tokens, time and recall"


def add_arguments(p) -> None:
    p.add_argument("--lengths", type=int, nargs="+", default=[100_000, 1_000_000])
    p.add_argument("--depths", type=float, nargs="+", default=[0.1, 0.5, 0.9], help="needle depths at the first length")
    p.add_argument("--prefilter", type=float, default=0.1)
    p.add_argument("--full-up-to", type=int, default=100_000, help="run the full reader up to this length; project above")
    p.add_argument("--parts", nargs="+", default=["needles"], choices=["needles", "evidence", "reach"],
                   help="needles: speed and recall at --lengths (timed; saved as cascade); evidence: recall on the "
                        "evidence test halves from the cached statistics; reach: the shortlist's share of the evidence "
                        "at --reach-tokens (these two save cascade-recall)")
    p.add_argument("--reach-tokens", type=int, default=32768, help="the reach part's document length")
    p.add_argument("--reach-n", type=int, default=25, help="documents per data set for the reach part")
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--data", default=None)
    p.add_argument("--model", default=None)


def long_haystack(tokenizer, essays: str, n_tokens: int, rng: random.Random) -> list[str]:
    """The needles suite's haystack, its paragraphs repeated in new orders until ``n_tokens`` long."""
    from benchmarks.suites.needles import haystack

    out: list[str] = []
    total = 0
    while total < n_tokens:
        more = haystack(tokenizer, essays, n_tokens - total, rng)
        out += more
        total += sum(len(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in more)
    return out


def needle_rows(args, model, tokenizer) -> list[dict]:
    from benchmarks import evidence as ev
    from benchmarks.suites.needles import NEEDLES
    from entropy_retriever import LongContextReader

    essays = ev.EssayFiller(ev.data_dir(args.data), tokenizer).text
    rng = random.Random(args.seed)
    readers = {"full": LongContextReader(model, tokenizer, progress=False),
               "cascade": LongContextReader(model, tokenizer, progress=False, prefilter=args.prefilter)}
    rows = []
    for n, length in enumerate(args.lengths):
        depths = args.depths if n == 0 else [0.5]
        for t, depth in enumerate(depths):
            needle, question = NEEDLES[(n * 3 + t) % len(NEEDLES)]
            paragraphs = long_haystack(tokenizer, essays, length, rng)
            at = round(depth * len(paragraphs))
            text = "\n\n".join(paragraphs[:at] + [needle] + paragraphs[at:])
            for name, reader in readers.items():
                if name == "full" and length > args.full_up_to:
                    continue
                started = time.perf_counter()
                key = reader.select(text, question)
                seconds = time.perf_counter() - started
                read = sum(1 for s in key.segments if "certainty" in s.signals)
                rows.append({"length": length, "depth": depth, "method": name, "kept": needle in key.text,
                             "tokens": key.meta["context_tokens"], "segments": key.meta["n_segments"],
                             "model_read": read, "seconds": round(seconds, 1)})
                print(f"{length:,} tokens, depth {depth}, {name}: {'kept' if rows[-1]['kept'] else 'LOST'}, "
                      f"model read {read} of {key.meta['n_segments']} segments, {seconds:.0f} s", file=sys.stderr, flush=True)
    return rows


def evidence_rows(args, model, tokenizer) -> list[dict]:
    from benchmarks import evidence as ev
    from benchmarks import multihop, shipped
    from benchmarks.signal_cache import StatsCache
    from benchmarks.suites.evidence import DATASETS, DEFAULT_N
    from entropy_retriever.config import DEFAULT
    from entropy_retriever.pipeline import is_cheap, rank, shortlist
    from entropy_retriever.signals import DenseEmbedder

    cache, embedder, gap = StatsCache(model, tokenizer, DEFAULT), DenseEmbedder.shared(), shipped.gap_tokens(tokenizer)
    rows = []
    for dataset in DATASETS:
        for example in multihop.load(ev.data_dir(args.data), tokenizer, dataset, "test", DEFAULT_N[dataset], 4096, 0):
            segments, stats = cache.stats(example, compute=False)
            if stats is None:
                raise SystemExit("the evidence statistics are not cached: run `python -m benchmarks evidence` first")
            item = shipped.Scored(example, segments, stats, embedder)
            values = {k: np.asarray(v, dtype=np.float64) for k, v in item.signals(DEFAULT).items()}
            candidates = shortlist({k: v for k, v in values.items() if is_cheap(k)}, args.prefilter, DEFAULT.fusion)
            masked = {k: (v if is_cheap(k) else np.where(np.isin(np.arange(len(v)), candidates), v, np.nan))
                      for k, v in values.items()}
            texts = lambda idx, item=item: [item.texts[i] for i in idx]  # noqa: E731
            for name, order in (("default", shipped.default_ranking(item, DEFAULT)),
                                ("cascade", rank(masked, example.question, DEFAULT, texts, candidates).order)):
                rows.append({"dataset": dataset, "method": name, "recall": item.recall(order, DEFAULT.token_budget, gap),
                             "segments": len(segments), "model_read": len(candidates) if name == "cascade" else len(segments)})
    return rows


def reach_rows(args, tokenizer) -> list[dict]:
    from benchmarks import evidence as ev
    from benchmarks import multihop
    from benchmarks.shipped import evidence_inside
    from benchmarks.suites.evidence import DATASETS
    from entropy_retriever.config import DEFAULT
    from entropy_retriever.pipeline import shortlist
    from entropy_retriever.segments import Segmenter
    from entropy_retriever.signals import DenseEmbedder, bm25_scores

    segmenter, embedder = Segmenter(tokenizer, DEFAULT.segment_tokens, DEFAULT.overlap_tokens), DenseEmbedder.shared()
    rows = []
    for dataset in DATASETS:
        examples = multihop.load(ev.data_dir(args.data), tokenizer, dataset, "test", args.reach_n, args.reach_tokens, 0)
        for example in examples:
            segments = list(segmenter.split(example.context))
            texts = [s.text for s in segments]
            cheap = {"bm25": np.asarray(bm25_scores(texts, example.question)),
                     "dense": np.asarray(embedder.scores(texts, example.question))}
            chosen = shortlist(cheap, args.prefilter, DEFAULT.fusion)
            # a random shortlist of the same size holds, on average, the evidence's share of the segments it takes
            rows.append({"dataset": dataset, "id": example.id, "segments": len(segments), "model_read": len(chosen),
                         "reach": evidence_inside(example, segments, chosen), "random": len(chosen) / len(segments)})
        print(f"reach, {dataset}: {len(examples)} documents", file=sys.stderr, flush=True)
    return rows


def run(args) -> None:
    from entropy_retriever import load_model

    model, tokenizer = load_model(args.model, dtype="float32")
    if "needles" in args.parts:  # timed: run it alone on the machine
        rows = needle_rows(args, model, tokenizer)
        save("cascade", vars(args), rows, needle_table(args, rows))
    recall = [part for part in ("evidence", "reach") if part in args.parts]
    if recall:  # recall only, no timing: these can share the machine
        lines, extra = [f"The cascade's recall (`prefilter={args.prefilter:g}`), against the default reading every segment."], {}
        if "evidence" in recall:
            extra["evidence"] = evidence_rows(args, model, tokenizer)
            lines += ["", evidence_table(extra["evidence"])]
        if "reach" in recall:
            extra["reach"] = reach_rows(args, tokenizer)
            lines += ["", reach_table(args, extra["reach"])]
        save("cascade-recall", vars(args), [], "\n".join(lines), extra=extra)


def needle_table(args, rows: list[dict]) -> str:
    lines = [f"The cascade (`prefilter={args.prefilter:g}`) against the full reader, lexical needles, every other "
             "option at its default (one process, one after the other on the same document):", "",
             "| tokens | method | needle kept | segments the model read | seconds | speed-up |", "|---|---|---|---|---|---|"]
    full_rate = None
    for length in args.lengths:
        mine = {m: [r for r in rows if r["length"] == length and r["method"] == m] for m in ("full", "cascade")}
        if mine["full"]:
            full_rate = sum(r["tokens"] for r in mine["full"]) / sum(r["seconds"] for r in mine["full"])
        cascade_s = statistics.fmean(r["seconds"] for r in mine["cascade"])
        tokens = statistics.fmean(r["tokens"] for r in mine["cascade"])
        full_s = statistics.fmean(r["seconds"] for r in mine["full"]) if mine["full"] else tokens / full_rate
        said = "" if mine["full"] else " (projected)"
        for m in ("full", "cascade"):
            if m == "full" and not mine["full"]:
                lines.append(f"| {tokens:,.0f} | full | not run | all | {full_s:,.0f}{said} | |")
                continue
            kept = sum(r["kept"] for r in mine[m])
            read = statistics.fmean(r["model_read"] / r["segments"] for r in mine[m])
            seconds = statistics.fmean(r["seconds"] for r in mine[m])
            speed = f"**{full_s / cascade_s:.1f}x**{said}" if m == "cascade" else ""
            lines.append(f"| {tokens:,.0f} | {m} | {kept} / {len(mine[m])} | {read:.0%} | {seconds:,.0f} | {speed} |")
    longest = [r for r in rows if r["length"] == max(args.lengths) and r["method"] == "cascade"]
    cascade_rate = sum(r["tokens"] for r in longest) / sum(r["seconds"] for r in longest)
    lines += ["", f"20M tokens on this CPU: full reader {20e6 / full_rate / 3600:.1f} h (at its measured "
                  f"{full_rate:,.0f} tokens/s), cascade {20e6 / cascade_rate / 3600:.1f} h (at its {cascade_rate:,.0f} "
                  f"tokens/s at {longest[0]['tokens']:,} tokens)."]
    return "\n".join(lines)


def evidence_table(rows: list[dict]) -> str:
    lines = ["Evidence test halves (recall of the evidence; ~4k-token documents):", "",
             "| data set | default | cascade | segments the model read |", "|---|---|---|---|"]
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        get = lambda m: [r for r in rows if r["dataset"] == dataset and r["method"] == m]  # noqa: E731,B023
        lines.append(f"| {dataset} | {statistics.fmean(r['recall'] for r in get('default')):.3f} | "
                     f"{statistics.fmean(r['recall'] for r in get('cascade')):.3f} | "
                     f"{statistics.fmean(r['model_read'] / r['segments'] for r in get('cascade')):.0%} |")
    return "\n".join(lines)


def reach_table(args, rows: list[dict]) -> str:
    lines = [f"Reach: the evidence test halves as ~{args.reach_tokens:,}-token documents; the share of the "
             "evidence inside the segments the cascade's model reads (what it can keep at most), against a "
             "random shortlist of the same size:", "",
             "| data set | documents | segments the model reads | evidence inside them | random shortlist |",
             "|---|---|---|---|---|"]
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        mine = [r for r in rows if r["dataset"] == dataset]
        lines.append(f"| {dataset} | {len(mine)} | {statistics.fmean(r['model_read'] / r['segments'] for r in mine):.0%} | "
                     f"{statistics.fmean(r['reach'] for r in mine):.3f} | {statistics.fmean(r['random'] for r in mine):.3f} |")
    return "\n".join(lines)
