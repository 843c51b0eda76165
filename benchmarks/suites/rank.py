"""The rank of the needle's segment per metric and template (how the first default metric was chosen)."""

from __future__ import annotations

import statistics
import sys

from benchmarks.common import save
from entropy_retriever import LongContextReader, load_model
from entropy_retriever.scoring import CertaintyScorer

HELP = "needle rank per metric and template"


def add_arguments(p) -> None:
    p.add_argument("--lengths", type=int, nargs="+", default=[12000, 28000])
    p.add_argument("--depths", type=float, nargs="+", default=[0.1, 0.3, 0.6, 0.9])
    p.add_argument("--model", default=None)


def run(args) -> None:
    from entropy_retriever.demo import make_demo_document

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
