"""The passkey read whole by the model: bare (truncated), SelfExtend, LM-Infinite."""

from __future__ import annotations

import json
import sys
import time

from benchmarks.common import progress, save
from entropy_retriever import load_model
from entropy_retriever.passkey import make_passkey, passkey_correct, spread_depths

HELP = "passkey read whole: bare, SelfExtend, LM-Infinite"


def add_arguments(p) -> None:
    p.add_argument("--lengths", type=int, nargs="+", default=[12000, 16000, 24000])
    p.add_argument("--trials", type=int, default=5)
    p.add_argument("--trials-selfextend", type=int, default=10, help="trials for SelfExtend at 16k and beyond")
    p.add_argument("--group-size", type=int, default=4)
    p.add_argument("--window", type=int, default=1024)
    p.add_argument("--n-local", type=int, default=4096, help="SmolLM2 reads 4k reliably, not 6k-8k: see docs/guide/attention.md")
    p.add_argument("--methods", nargs="+", default=["bare", "selfextend", "lminfinite"], choices=["bare", "selfextend", "lminfinite"])
    p.add_argument("--n-global", type=int, default=64)
    p.add_argument("--model", default=None)


def run(args) -> None:
    """Landmark passkey read whole by the model: bare (truncated to its window), SelfExtend, LM-Infinite."""
    from entropy_retriever.attention import LMInfinite, SelfExtend
    from entropy_retriever.llm import LongContextLM

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
    lines = ["| method | " + " | ".join(f"{n // 1000}k" for n in args.lengths) + " |", "|---|" + "---|" * len(args.lengths)]
    for name in methods:
        cells = []
        for n_tokens in args.lengths:
            mine = [r for r in rows if r["method"] == name and r["target"] == n_tokens]
            cells.append(f"{sum(r['correct'] for r in mine)}/{len(mine)}" if mine else "-")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    save("attention-passkey", vars(args) | {"command": " ".join(sys.argv)}, rows, "\n".join(lines))
