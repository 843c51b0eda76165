"""``python -m entropy_retriever.bench SUITE``: benchmarks that print and save their numbers.

Suites:
  rank            rank of the needle's segment per metric and template (chooses the default metric)
  reader-passkey  passkey retrieval through LongContextReader.answer at several lengths
  scoring-speed   CertaintyScorer vs plain batched forward passes, and linear scaling
  attention-passkey  passkey read whole by the model: bare, SelfExtend, LM-Infinite
  attention-speed SelfExtend / LM-Infinite vs plain SDPA: prefill, decode, peak memory
  passkey         landmark passkey, lengths x depths: bare, SelfExtend, LM-Infinite, XL3M reader
  niah            needle in a haystack (single, pizza): a heatmap per method
  evidence        evidence recall at equal segment budgets: certainty metrics, fusions, BM25, MiniLM, LongLLMLingua
  rerank          reranking in RAG: 20 candidates from a vector store, each method keeps 3
  lminfinite-cache  LM-Infinite's cache bytes on the real model, short run vs long run
  report          rewrite the README's results section from bench-results/ (make bench ends with it)

Every suite writes ``bench-results/<suite>.json`` (machine, versions, settings, raw trials)
and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from ..models import load_model
from ..reader import LongContextReader
from ..scoring import CertaintyScorer
from .evidence import DATASETS as DATASETS_ALL
from .methods import METHODS

DATASETS_DEFAULT = ("babi", "lowoverlap", "loogle_long", "lowoverlap_control", "loogle", "kv", "lines", "ruler")
from .passkey import make_passkey, passkey_correct, spread_depths

RESULTS = Path("bench-results")


def environment() -> dict:
    import transformers

    return {
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def save(suite: str, settings: dict, rows: list, table: str, extra: dict | None = None) -> None:
    RESULTS.mkdir(exist_ok=True)
    settings = settings | {"command": "python -m entropy_retriever.bench " + " ".join(sys.argv[1:])}
    payload = {"suite": suite, "environment": environment(), "settings": settings, "rows": rows, "table": table}
    payload |= extra or {}
    (RESULTS / f"{suite}.json").write_text(json.dumps(payload, indent=1))
    (RESULTS / f"{suite}.md").write_text(table + "\n")
    print(table)
    print(f"\n(saved {RESULTS / suite}.json and .md)")


def progress(iterable, **kwargs):
    from tqdm.auto import tqdm

    return tqdm(iterable, disable=not sys.stderr.isatty(), **kwargs)


# ------------------------------------------------------------------------------ rank
def cmd_rank(args) -> None:
    from ..demo import make_demo_document

    model, tokenizer = load_model(args.model)
    reader = LongContextReader(model, tokenizer, progress=False)
    rows = []
    for n_tokens in args.lengths:
        for depth in args.depths:
            doc = make_demo_document(tokenizer, n_tokens, depth)
            segments = list(reader.segmenter.split(doc.text))
            needle = next(i for i, s in enumerate(segments) if doc.expected in s.text)
            for template in ("plain", "chat"):
                for metric in ("entropy_last", "entropy_mean", "question_nll"):
                    scores = CertaintyScorer(model, tokenizer, metric=metric, template=template).score(segments, doc.question)
                    order = sorted(range(len(segments)), key=lambda i: (scores[i], i))
                    others = [scores[i] for i in range(len(segments)) if i != needle]
                    rows.append({
                        "tokens": doc.n_tokens, "depth": depth, "template": template, "metric": metric,
                        "rank": order.index(needle), "margin": min(others) - scores[needle],
                    })
                    print(rows[-1], flush=True)
    lines = ["| template | metric | needle ranked first | mean margin (nats) |", "|---|---|---|---|"]
    for template in ("plain", "chat"):
        for metric in ("entropy_last", "entropy_mean", "question_nll"):
            mine = [r for r in rows if r["template"] == template and r["metric"] == metric]
            first = sum(r["rank"] == 0 for r in mine)
            lines.append(f"| {template} | {metric} | {first}/{len(mine)} | {statistics.mean(r['margin'] for r in mine):+.3f} |")
    save("rank", vars(args) | {"command": " ".join(sys.argv)}, rows, "\n".join(lines))


# -------------------------------------------------------------------- reader passkey
def cmd_reader_passkey(args) -> None:
    model, tokenizer = load_model(args.model)
    reader = LongContextReader(model, tokenizer, progress=False)
    rows = []
    for n_tokens in args.lengths:
        for trial, depth in enumerate(progress(spread_depths(args.trials), desc=f"{n_tokens} tokens")):
            sample = make_passkey(tokenizer, n_tokens, depth, seed=1000 * n_tokens + trial)
            started = time.perf_counter()
            answer = reader.answer(sample.context, args.question)
            rows.append({
                "tokens": sample.n_tokens, "target": n_tokens, "depth": round(depth, 3), "key": sample.key,
                "answer": answer.text, "correct": passkey_correct(answer.text, sample.key),
                "key_in_context": sample.key in answer.key_context.text, "seconds": time.perf_counter() - started,
            })
            print(json.dumps(rows[-1]), flush=True)
    lines = ["| length (tokens) | trials | correct | key in key context | mean seconds |", "|---|---|---|---|---|"]
    for n_tokens in args.lengths:
        mine = [r for r in rows if r["target"] == n_tokens]
        lines.append(
            f"| {statistics.mean(r['tokens'] for r in mine):,.0f} | {len(mine)} | {sum(r['correct'] for r in mine)}/{len(mine)} "
            f"| {sum(r['key_in_context'] for r in mine)}/{len(mine)} | {statistics.mean(r['seconds'] for r in mine):.1f} |"
        )
    save("reader-passkey", vars(args) | {"command": " ".join(sys.argv)}, rows, "\n".join(lines))


# --------------------------------------------------------------------- scoring speed
def _plain_forward(model, rows, pad_id):
    """Plain batched forward over the same left-padded rows: full logits, no slicing."""
    length = max(len(r) for r in rows)
    ids = torch.full((len(rows), length), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for b, r in enumerate(rows):
        ids[b, length - len(r):] = torch.tensor(r)
        mask[b, length - len(r):] = 1
    with torch.inference_mode():
        model(input_ids=ids.to(model.device), attention_mask=mask.to(model.device), use_cache=False)


def cmd_scoring_speed(args) -> None:
    from ..demo import make_demo_document
    from ..segments import Segmenter

    model, tokenizer = load_model(args.model)
    scorer = CertaintyScorer(model, tokenizer, metric="question_nll", progress=False)
    doc = make_demo_document(tokenizer, 2 * args.tokens + 2000, 0.5)
    segments = list(Segmenter(tokenizer, args.segment_tokens).split(doc.text))
    question = doc.question
    q_ids = scorer.encode_question(question)

    def take(n_tokens):
        chosen, total = [], 0
        for s in segments:
            if total >= n_tokens:
                break
            chosen.append(s)
            total += s.n_tokens
        return chosen

    half, full = take(args.tokens), take(2 * args.tokens)
    scorer.score(half[:2], question)  # warm-up

    def time_scorer(segs):
        started = time.perf_counter()
        scorer.score(segs, question)
        return time.perf_counter() - started

    def time_plain(segs):
        rows = [scorer.encode_segment(s.text, len(q_ids)) + q_ids for s in segs]
        order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
        started = time.perf_counter()
        for batch in scorer._batches(order, [(None, rows[i][: -len(q_ids)]) for i in range(len(rows))], len(q_ids)):
            _plain_forward(model, [rows[i] for i in batch], scorer.pad_id)
        return time.perf_counter() - started

    samples = {"scorer_N": [], "plain_N": [], "scorer_2N": []}
    for _ in progress(range(args.repeats), desc="repeats"):  # interleaved, so drift hits all alike
        samples["plain_N"].append(time_plain(half))
        samples["scorer_N"].append(time_scorer(half))
        samples["scorer_2N"].append(time_scorer(full))
    med = {k: statistics.median(v) for k, v in samples.items()}
    n_half = sum(s.n_tokens + len(q_ids) for s in half)
    n_full = sum(s.n_tokens + len(q_ids) for s in full)
    throughput_ratio = (n_half / med["scorer_N"]) / (n_half / med["plain_N"])
    linear_ratio = med["scorer_2N"] / med["scorer_N"]
    tok_s = n_full / med["scorer_2N"]
    table = "\n".join([
        "| measure | value |", "|---|---|",
        f"| scorer throughput / plain forward throughput (same sub-contexts, {n_half:,} tokens) | **{throughput_ratio:.2f}** |",
        f"| time for 2N / time for N (N = {n_half:,}, 2N = {n_full:,} tokens) | **{linear_ratio:.2f}** (token ratio {n_full / n_half:.2f}) |",
        f"| scoring throughput | {tok_s:,.0f} tokens/s |",
        f"| projected time to score 20M tokens on this machine | {20e6 / tok_s / 3600:,.1f} h |",
    ])
    save("scoring-speed", vars(args) | {"command": " ".join(sys.argv)}, [samples | {"tokens_N": n_half, "tokens_2N": n_full}], table)


# -------------------------------------------------------------------- evidence recall
def _count_option(value: str):
    name, _, count = value.rpartition("=")
    if not count.isdigit() or int(count) < 1:
        raise argparse.ArgumentTypeError(f"{value!r}: give a positive count, or NAME=COUNT for one data set")
    return (name or None, int(count))


def _examples(ev, root, tokenizer, datasets, n, window_tokens, seed) -> list:
    """The examples of each data set, ``n`` as ``--n`` gives it: ``[(None, default), (name, count), ...]``."""
    counts = {name: c for name, c in n}
    default = counts.pop(None, 8)
    return [e for d in datasets for e in ev.load_examples(root, tokenizer, [d], counts.get(d, default), window_tokens, seed)]


def cmd_evidence(args) -> None:
    from . import evidence as ev

    if args.scores:
        return _evidence_from_scores(args)
    root = ev.data_dir(args.data)
    model, tokenizer = load_model(args.model)
    examples = _examples(ev, root, tokenizer, args.datasets, args.n, args.window_tokens, args.seed)
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
    save("evidence", vars(args) | {"command": " ".join(sys.argv), "data": str(root)}, rows, table + "\n\n" + cost,
         extra={"scores": raw, "seconds": signal_seconds, "readme_table": readme_table})


def _evidence_from_scores(args) -> None:
    """Recompute every ranking, fusion and table from the per-segment scores an earlier run saved.

    No model runs: the loaders rebuild the same documents (the run's settings and seed), and each
    document's segment spans and evidence are checked against the saved ones before use.
    """
    from . import evidence as ev
    from ..segments import Segment

    earlier = json.loads(Path(args.scores).read_text())
    settings = earlier["settings"]
    root = ev.data_dir(args.data or settings.get("data"))
    _, tokenizer = load_model(args.model)
    examples = {(e.dataset, str(e.id)): e for e in _examples(
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
    command = f"{settings['command']}, then python -m entropy_retriever.bench " + " ".join(sys.argv[1:])
    payload = {"suite": "evidence", "environment": earlier["environment"],
               "settings": settings | {"command": command, "segments": args.segments, "recomputed_from": args.scores},
               "rows": rows, "table": table, "readme_table": readme_table, "scores": earlier["scores"]}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "evidence.json").write_text(json.dumps(payload, indent=1))
    (RESULTS / "evidence.md").write_text(table + "\n")
    print(table)
    print(f"\n(recomputed from {args.scores}; saved {RESULTS / 'evidence'}.json and .md)")


def cmd_rerank(args) -> None:
    """Reranking in RAG: a vector store gives 20 candidate passages; each method keeps 3."""
    from . import evidence as ev

    root = ev.data_dir(args.data)
    model, tokenizer = load_model(args.model)
    examples = _examples(ev, root, tokenizer, args.datasets, args.n, args.window_tokens, args.seed)
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


# ---------------------------------------------------------- passkey and needles, 4 methods
def _settings(args):
    from .methods import MethodSettings

    return MethodSettings(args.group_size, args.window, args.n_local, args.n_global, args.max_new_tokens)


def _grid_table(rows, methods, lengths, depths, labels, value) -> str:
    lines = ["| method | " + " | ".join(f"{n / 1000:g}k" for n in lengths) + " | all |", "|---|" + "---|" * (len(lengths) + 1)]
    for method in methods:
        cells = []
        for n in [*lengths, None]:
            mine = [r for r in rows if r["method"] == method and (n is None or r["target"] == n)]
            cells.append(value(mine) if mine else "-")
        lines.append(f"| {labels[method]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def cmd_passkey(args) -> None:
    """The landmark passkey, lengths x depths, for bare, SelfExtend, LM-Infinite and the XL3M reader."""
    from .methods import open_method
    from .passkey import QUESTION

    model, tokenizer = load_model(args.model)
    settings = _settings(args)
    rows = []
    for method in args.methods:
        with open_method(model, tokenizer, method, settings) as reader:
            cells = [(n, d) for n in args.lengths for d in args.depths]
            for n_tokens, depth in progress(cells, desc=settings.label(method), unit="trial"):
                sample = make_passkey(tokenizer, n_tokens, depth, seed=7 * n_tokens + round(1000 * depth))
                started = time.perf_counter()
                output = reader.raw(sample.prompt, sample.context, QUESTION)
                rows.append({"method": method, "target": n_tokens, "tokens": sample.n_tokens, "depth": depth,
                             "key": sample.key, "output": output, "correct": passkey_correct(output, sample.key),
                             "seconds": round(time.perf_counter() - started, 2)})
                print(json.dumps(rows[-1]), flush=True)
    labels = {m: settings.label(m) for m in args.methods}
    table = _grid_table(rows, args.methods, args.lengths, args.depths, labels,
                        lambda mine: f"{sum(r['correct'] for r in mine)}/{len(mine)}")
    table += f"\n\nCorrect / trials; depths {', '.join(f'{d:g}' for d in args.depths)} at each length."
    save("passkey", vars(args) | {"labels": labels}, rows, table)


def cmd_niah(args) -> None:
    """Needle in a haystack heatmaps: one PNG per method and needle variant."""
    from . import niah
    from .evidence import data_dir
    from .methods import open_method

    root = data_dir(args.data)
    model, tokenizer = load_model(args.model)
    settings = _settings(args)
    haystack = niah.Haystack(root, tokenizer)
    rows, plots = [], []
    for variant in args.variants:
        needles = niah.load_needles(root, variant)
        for method in args.methods:
            with open_method(model, tokenizer, method, settings) as reader:
                cells = [(n, d) for n in args.lengths for d in args.depths]
                for n_tokens, depth in progress(cells, desc=f"{variant} {settings.label(method)}", unit="cell"):
                    context = haystack.build(n_tokens, depth, needles)
                    started = time.perf_counter()
                    output = reader.ask(context, needles.question, niah.SYSTEM, niah.SUFFIX)
                    rows.append({"variant": variant, "method": method, "target": n_tokens, "depth": depth,
                                 "output": output, "score": niah.score(output, needles),
                                 "seconds": round(time.perf_counter() - started, 2)})
                    print(json.dumps(rows[-1]), flush=True)
            mine = [r for r in rows if r["variant"] == variant and r["method"] == method]
            path = RESULTS / f"niah-{variant}-{method}.png"
            title = f"{settings.label(method)}, {variant} needle: mean {statistics.fmean(r['score'] for r in mine):.2f}"
            niah.heatmap({(r["target"], r["depth"]): r["score"] for r in mine}, args.lengths, args.depths, title, path)
            plots.append(path.name)
    labels = {m: settings.label(m) for m in args.methods}
    tables = []
    for variant in args.variants:
        mine = [r for r in rows if r["variant"] == variant]
        tables.append(f"**{variant} needle** (mean score over depths {', '.join(f'{d:g}' for d in args.depths)})\n\n"
                      + _grid_table(mine, args.methods, args.lengths, args.depths, labels,
                                    lambda m: f"{statistics.fmean(r['score'] for r in m):.2f}"))
    save("niah", vars(args) | {"labels": labels, "plots": plots, "data": str(root)}, rows, "\n\n".join(tables))


def cmd_attention_passkey(args) -> None:
    """Landmark passkey read whole by the model: bare (truncated to its window), SelfExtend, LM-Infinite."""
    from ..attention import LMInfinite, SelfExtend, remove_policy
    from ..llm import LongContextLM

    model, tokenizer = load_model(args.model)
    window = model.config.max_position_embeddings
    methods = {
        "bare": ("bare (truncated)", None),
        "selfextend": (f"SelfExtend({args.group_size}, {args.window})", SelfExtend(args.group_size, args.window)),
        "lminfinite": (f"LMInfinite({args.n_local}, {args.n_global})", LMInfinite(args.n_local, args.n_global)),
    }
    methods = dict(labelled for key, labelled in methods.items() if key in args.methods)  # label -> policy
    rows = []
    for n_tokens in args.lengths:
        for name, policy in methods.items():
            trials = args.trials_selfextend if isinstance(policy, SelfExtend) and n_tokens >= 16000 else args.trials
            lm = LongContextLM(model, tokenizer, policy, max_new_tokens=8)
            try:
                for trial, depth in enumerate(progress(spread_depths(trials), desc=f"{name} {n_tokens}")):
                    sample = make_passkey(tokenizer, n_tokens, depth, seed=7 * n_tokens + trial)
                    ids = tokenizer(sample.prompt)["input_ids"]
                    if policy is None and len(ids) + 8 > window:
                        ids = ids[: 1] + ids[-(window - 9):]  # keep BOS and the newest tokens
                    started = time.perf_counter()
                    out = lm.generate_ids(ids, 8)
                    rows.append({"method": name, "target": n_tokens, "tokens": sample.n_tokens, "depth": round(depth, 3),
                                 "key": sample.key, "output": out.text, "correct": passkey_correct(out.text, sample.key),
                                 "seconds": time.perf_counter() - started})
                    print(json.dumps(rows[-1]), flush=True)
            finally:
                remove_policy(model)
    lines = ["| method | " + " | ".join(f"{n // 1000}k" for n in args.lengths) + " |", "|---|" + "---|" * len(args.lengths)]
    for name in methods:
        cells = []
        for n_tokens in args.lengths:
            mine = [r for r in rows if r["method"] == name and r["target"] == n_tokens]
            cells.append(f"{sum(r['correct'] for r in mine)}/{len(mine)}" if mine else "-")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    save("attention-passkey", vars(args) | {"command": " ".join(sys.argv)}, rows, "\n".join(lines))


def cmd_lminfinite_cache(args) -> None:
    """LM-Infinite's bounded cache on the real model: bytes after a short and after a long run."""
    from ..attention import LMInfinite, extend_context

    model, tokenizer = load_model(args.model)
    policy = LMInfinite(args.n_local, args.n_global)
    # The cache is full from n_global + n_local - 1 keys on: the short run starts there.
    short = args.short or args.n_global + args.n_local
    rows = []
    with extend_context(model, policy):
        for prefill, generate in ((short, 0), (args.long, args.generate)):
            sample = make_passkey(tokenizer, prefill + 200, 0.5, seed=prefill)
            ids = tokenizer(sample.prompt)["input_ids"][-prefill:]
            cache = policy.make_cache(model)
            started = time.perf_counter()
            with torch.inference_mode():  # max_new_tokens = generate + 1: the last new token is not fed back
                out = model.generate(input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                     past_key_values=cache, max_new_tokens=generate + 1, min_new_tokens=generate + 1,
                                     do_sample=False, pad_token_id=tokenizer.pad_token_id)
            config = model.config
            full = (2 * config.num_hidden_layers * config.num_key_value_heads
                    * (config.hidden_size // config.num_attention_heads) * (prefill + generate) * model.dtype.itemsize)
            rows.append({"prefill": prefill, "generated": int(out.shape[1] - len(ids)) - 1, "seen": cache.get_seq_length(),
                         "cache_bytes": cache.stored_bytes(), "full_cache_bytes": full,
                         "seconds": round(time.perf_counter() - started, 1)})
            print(json.dumps(rows[-1]), flush=True)
    a, b = rows
    table = "\n".join([
        "| run | tokens through the cache | LambdaCache bytes | a full cache would hold |", "|---|---|---|---|",
        *(f"| prefill {r['prefill']:,}, generate {r['generated']} | {r['prefill'] + r['generated']:,} "
          f"| {r['cache_bytes']:,} | {r['full_cache_bytes']:,} |" for r in rows),
        "", f"Same bytes after both runs: **{a['cache_bytes'] == b['cache_bytes']}** "
        f"({policy}, {model.dtype}; it keeps the first n_global and the last n_local - 1 keys of each layer; "
        "the full-cache column is computed from the config).",
    ])
    save("lminfinite-cache", vars(args), rows, table)


def cmd_attention_speed(args) -> None:
    from .attention_speed import run

    rows, table = run(lengths=tuple(args.lengths), lmi_length=args.lmi_length, shape=args.shape, repeats=args.repeats)
    save("attention-speed", vars(args) | {"command": " ".join(sys.argv)}, rows, table)


def cmd_report(args) -> None:
    from .report import rewrite_readme

    readme = Path(args.readme).resolve()
    rewrite_readme(readme, RESULTS.resolve(), readme.parent / "docs" / "results", only=args.only)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m entropy_retriever.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="suite", required=True)
    p = sub.add_parser("rank", help="needle rank per metric and template")
    p.add_argument("--lengths", type=int, nargs="+", default=[12000, 28000])
    p.add_argument("--depths", type=float, nargs="+", default=[0.1, 0.3, 0.6, 0.9])
    p.add_argument("--model", default=None)
    p.set_defaults(run=cmd_rank)
    p = sub.add_parser("reader-passkey", help="passkey through LongContextReader.answer")
    p.add_argument("--lengths", type=int, nargs="+", default=[16000, 32000])
    p.add_argument("--trials", type=int, default=10)
    p.add_argument("--question", default="What is the pass key?")
    p.add_argument("--model", default=None)
    p.set_defaults(run=cmd_reader_passkey)
    p = sub.add_parser("scoring-speed", help="scorer vs plain forward; linear scaling")
    p.add_argument("--tokens", type=int, default=8000, help="N; the scaling check also scores 2N")
    p.add_argument("--segment-tokens", type=int, default=512)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--model", default=None)
    p.set_defaults(run=cmd_scoring_speed)
    p = sub.add_parser("evidence", help="evidence recall at equal segment budgets: certainty metrics, fusions, BM25, MiniLM, LongLLMLingua, random, begin, end")
    p.add_argument("--datasets", nargs="+", default=list(DATASETS_DEFAULT), choices=list(DATASETS_ALL))
    p.add_argument("--n", nargs="+", default=["8"], type=_count_option,
                   help="examples per data set: a number for all, then NAME=COUNT for some (loogle_long has 9 usable questions)")
    p.add_argument("--segments", type=int, nargs="+", default=[1, 2, 4], help="budgets: how many segments each method keeps")
    p.add_argument("--segment-tokens", type=int, default=256)
    p.add_argument("--window-tokens", type=int, default=3072, help="document length for LooGLE windows and the essay haystacks")
    p.add_argument("--templates", nargs="+", default=["plain"], help="templates for our certainty metrics (LongLLMLingua's is always run as a baseline)")
    p.add_argument("--scores", default=None, help="recompute the tables from the per-segment scores saved by an earlier run (no model runs)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", default=None, help="evaluation data folder (default: $ENTROPY_RETRIEVER_DATA or ../shared/data)")
    p.add_argument("--model", default=None)
    p.set_defaults(run=cmd_evidence)
    p = sub.add_parser("rerank", help="reranking in RAG: 20 candidates from all-MiniLM-L6-v2, each method keeps 3")
    p.add_argument("--datasets", nargs="+", default=["babi", "lowoverlap", "loogle_long", "lowoverlap_control"], choices=list(DATASETS_ALL))
    p.add_argument("--n", nargs="+", default=["8"], type=_count_option, help="examples per data set, as for evidence")
    p.add_argument("--passage-tokens", type=int, default=96, help="passage size of the vector store")
    p.add_argument("--candidates", type=int, default=20, help="passages the first stage retrieves")
    p.add_argument("--keep", type=int, default=3, help="passages the reranker keeps")
    p.add_argument("--window-tokens", type=int, default=3072)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", default=None)
    p.add_argument("--model", default=None)
    p.set_defaults(run=cmd_rerank)
    def method_options(p, lengths, depths):
        p.add_argument("--lengths", type=int, nargs="+", default=lengths)
        p.add_argument("--depths", type=float, nargs="+", default=depths)
        p.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
        p.add_argument("--group-size", type=int, default=4)
        p.add_argument("--window", type=int, default=1024)
        p.add_argument("--n-local", type=int, default=4096)
        p.add_argument("--n-global", type=int, default=64)
        p.add_argument("--max-new-tokens", type=int, default=32)
        p.add_argument("--model", default=None)

    p = sub.add_parser("passkey", help="landmark passkey, lengths x depths: bare, SelfExtend, LM-Infinite, XL3M reader")
    method_options(p, [4000, 12000], [0.1, 0.5, 0.9])
    p.set_defaults(run=cmd_passkey)
    p = sub.add_parser("niah", help="needle in a haystack heatmaps (single and pizza) per method")
    method_options(p, [3000, 12000], [0.1, 0.5, 0.9])
    p.add_argument("--variants", nargs="+", default=["single", "pizza"], choices=["single", "pizza"])
    p.add_argument("--data", default=None, help="evaluation data folder (default: $ENTROPY_RETRIEVER_DATA or ../shared/data)")
    p.set_defaults(run=cmd_niah)
    p = sub.add_parser("attention-passkey", help="passkey read whole: bare, SelfExtend, LM-Infinite")
    p.add_argument("--lengths", type=int, nargs="+", default=[12000, 16000, 24000])
    p.add_argument("--trials", type=int, default=5)
    p.add_argument("--trials-selfextend", type=int, default=10, help="trials for SelfExtend at 16k and beyond")
    p.add_argument("--group-size", type=int, default=4)
    p.add_argument("--window", type=int, default=1024)
    p.add_argument("--n-local", type=int, default=4096, help="SmolLM2 reads 4k reliably, not 6k-8k: see README")
    p.add_argument("--methods", nargs="+", default=["bare", "selfextend", "lminfinite"], choices=["bare", "selfextend", "lminfinite"])
    p.add_argument("--n-global", type=int, default=64)
    p.add_argument("--model", default=None)
    p.set_defaults(run=cmd_attention_passkey)
    p = sub.add_parser("attention-speed", help="SelfExtend / LM-Infinite vs plain SDPA: prefill, decode, memory")
    p.add_argument("--lengths", type=int, nargs="+", default=[8192, 16384])
    p.add_argument("--lmi-length", type=int, default=32768)
    p.add_argument("--shape", default="smollm2", choices=["smollm2", "llama2-7b"])
    p.add_argument("--repeats", type=int, default=3)
    p.set_defaults(run=cmd_attention_speed)
    p = sub.add_parser("lminfinite-cache", help="LM-Infinite's bounded cache on the real model: 4k vs 32k + 32 generated")
    p.add_argument("--short", type=int, default=None, help="default: n_global + n_local, the first length at which the cache is full")
    p.add_argument("--long", type=int, default=32768)
    p.add_argument("--generate", type=int, default=32)
    p.add_argument("--n-local", type=int, default=4096)
    p.add_argument("--n-global", type=int, default=64)
    p.add_argument("--model", default=None)
    p.set_defaults(run=cmd_lminfinite_cache)
    p = sub.add_parser("report", help="rewrite the README's results section from bench-results/")
    p.add_argument("--readme", default="README.md")
    p.add_argument("--only", nargs="+", default=None, help="rewrite these suites' parts only; keep the others as they are")
    p.set_defaults(run=cmd_report)
    args = parser.parse_args(argv)
    run = args.run
    del args.run
    run(args)


if __name__ == "__main__":
    main()
