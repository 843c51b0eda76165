"""LM-Infinite's bounded cache on the real model: bytes after a short and after a long run."""

from __future__ import annotations

import json
import time

import torch

from benchmarks.common import save
from entropy_retriever import load_model
from entropy_retriever.passkey import make_passkey

HELP = "LM-Infinite's bounded cache on the real model: 4k vs 32k + 32 generated"


def add_arguments(p) -> None:
    p.add_argument("--short", type=int, default=None, help="default: n_global + n_local, the first length at which the cache is full")
    p.add_argument("--long", type=int, default=32768)
    p.add_argument("--generate", type=int, default=32)
    p.add_argument("--n-local", type=int, default=4096)
    p.add_argument("--n-global", type=int, default=64)
    p.add_argument("--model", default=None)


def run(args) -> None:
    """LM-Infinite's bounded cache on the real model: bytes after a short and after a long run."""
    from entropy_retriever.attention import LMInfinite, extend_context
    from entropy_retriever.attention.cache import make_cache

    model, tokenizer = load_model(args.model)
    policy = LMInfinite(args.n_local, args.n_global)
    # The cache is full from n_global + n_local - 1 keys on: the short run starts there.
    short = args.short or args.n_global + args.n_local
    rows = []
    with extend_context(model, policy):
        for prefill, generate in ((short, 0), (args.long, args.generate)):
            sample = make_passkey(tokenizer, prefill + 200, 0.5, seed=prefill)
            ids = tokenizer(sample.prompt)["input_ids"][-prefill:]
            cache = make_cache(model, policy)
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
