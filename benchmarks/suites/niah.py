"""Needle in a haystack (single, pizza): a heatmap per method."""

from __future__ import annotations

import json
import statistics
import time

from benchmarks.common import RESULTS, add_method_options, grid_table, method_settings, progress, save
from entropy_retriever import load_model

HELP = "needle in a haystack heatmaps (single and pizza) per method"


def add_arguments(p) -> None:
    add_method_options(p, lengths=[3000, 12000], depths=[0.1, 0.5, 0.9])
    p.add_argument("--variants", nargs="+", default=["single", "pizza"], choices=["single", "pizza"])
    p.add_argument("--data", default=None, help="evaluation data folder (default: $ENTROPY_RETRIEVER_DATA or ../shared/data)")


def run(args) -> None:
    """Needle in a haystack heatmaps: one PNG per method and needle variant."""
    from benchmarks import niah
    from benchmarks.evidence import data_dir
    from benchmarks.methods import open_method

    root = data_dir(args.data)
    model, tokenizer = load_model(args.model)
    settings = method_settings(args)
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
                      + grid_table(mine, args.methods, args.lengths, args.depths, labels,
                                    lambda m: f"{statistics.fmean(r['score'] for r in m):.2f}"))
    save("niah", vars(args) | {"labels": labels, "plots": plots, "data": str(root)}, rows, "\n\n".join(tables))
