"""The landmark passkey, lengths x depths: bare, SelfExtend, LM-Infinite, the XL3M reader."""

from __future__ import annotations

import json
import time

from benchmarks.common import add_method_options, grid_table, method_settings, progress, save
from entropy_retriever import load_model
from entropy_retriever.passkey import make_passkey, passkey_correct, spread_depths

HELP = "landmark passkey, lengths x depths: bare, SelfExtend, LM-Infinite, XL3M reader"


def add_arguments(p) -> None:
    add_method_options(p, lengths=[4000, 12000], depths=[0.1, 0.5, 0.9])
    p.add_argument("--trials", type=int, default=None,
                   help="instead of --depths: this many depths spread evenly over (0, 1) at each length")


def run(args) -> None:
    """The landmark passkey, lengths x depths, for bare, SelfExtend, LM-Infinite and the XL3M reader."""
    from benchmarks.methods import open_method
    from entropy_retriever.passkey import QUESTION

    if args.trials:
        args.depths = [round(d, 3) for d in spread_depths(args.trials)]
    model, tokenizer = load_model(args.model)
    settings = method_settings(args)
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
    table = grid_table(rows, args.methods, args.lengths, args.depths, labels,
                        lambda mine: f"{sum(r['correct'] for r in mine)}/{len(mine)}")
    table += f"\n\nCorrect / trials; depths {', '.join(f'{d:g}' for d in args.depths)} at each length."
    save("passkey", vars(args) | {"labels": labels}, rows, table)
