"""CertaintyScorer against plain batched forward passes over the same rows, and linear scaling."""

from __future__ import annotations

import statistics
import sys
import time

import torch

from entropy_retriever import load_model
from entropy_retriever.scoring import CertaintyScorer

from benchmarks.common import progress, save

HELP = "scorer vs plain forward; linear scaling"


def add_arguments(p) -> None:
    p.add_argument("--tokens", type=int, default=8000, help="N; the scaling check also scores 2N")
    p.add_argument("--segment-tokens", type=int, default=512)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--model", default=None)


def plain_forward(model, rows, pad_id):
    """Plain batched forward over the same left-padded rows: full logits, no slicing."""
    length = max(len(r) for r in rows)
    ids = torch.full((len(rows), length), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for b, r in enumerate(rows):
        ids[b, length - len(r):] = torch.tensor(r)
        mask[b, length - len(r):] = 1
    with torch.inference_mode():
        model(input_ids=ids.to(model.device), attention_mask=mask.to(model.device), use_cache=False)


def run(args) -> None:
    from entropy_retriever.demo import make_demo_document
    from entropy_retriever.segments import Segmenter

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
        started = time.perf_counter()
        for batch in scorer.batch_plan([len(r) - len(q_ids) for r in rows], len(q_ids)):
            plain_forward(model, [rows[i] for i in batch], scorer.pad_id)
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
