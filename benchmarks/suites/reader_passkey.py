"""Passkey retrieval through LongContextReader.answer at several lengths."""

from __future__ import annotations

import json
import statistics
import sys
import time

from benchmarks.common import progress, save
from entropy_retriever import LongContextReader, load_model
from entropy_retriever.passkey import make_passkey, passkey_correct, spread_depths

HELP = "passkey through LongContextReader.answer"


def add_arguments(p) -> None:
    p.add_argument("--lengths", type=int, nargs="+", default=[16000, 32000])
    p.add_argument("--trials", type=int, default=10)
    p.add_argument("--question", default="What is the pass key?")
    p.add_argument("--model", default=None)


def run(args) -> None:
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
