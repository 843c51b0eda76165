"""``python -m benchmarks SUITE``: benchmarks that print and save their numbers.

Suites:
  rank            rank of the needle's segment per metric and template (chooses the default metric)
  scoring-speed   CertaintyScorer vs plain batched forward passes, linear scaling, float32 vs int8 with a roofline
  attention-passkey  passkey read whole by the model: bare, SelfExtend, LM-Infinite
  attention-speed SelfExtend / LM-Infinite vs plain SDPA: prefill, decode, peak memory
  passkey         landmark passkey, lengths x depths: bare, SelfExtend, LM-Infinite, XL3M reader
  niah            needle in a haystack (single, pizza): a heatmap per method
  evidence        evidence recall at the shipped configuration, on held-out test halves: the default vs baselines
  needles         lexical or low-overlap needles at 20k tokens through select with every default, beside baselines
  answers         answer accuracy: whole key context against the answer focus, on the evidence sets' halves
  cascade         the cascade (prefilter=) against the full reader: needles at 100k+ tokens, time and recall
  evidence-probes other model signals (attention, half-segment certainty, question-first gain) vs the default, dev halves
  evidence-grid   diagnostic: recall at 1, 2 or 4 segments for every certainty metric, rank fusion and baseline
  rerank          reranking in RAG: 20 candidates from a vector store, each method keeps 3
  lminfinite-cache  LM-Infinite's cache bytes on the real model, short run vs long run
  scale           select at 1M-16M tokens (peak RSS), resume after a kill, 2 gloo ranks vs 1, float32 vs bfloat16
  gpu             on a CUDA GPU, in one command: backends vs the oracle, policies vs SDPA on a 7B shape, scoring (--tiny: CPU)
  report          rewrite the results page (docs/results.md) from bench-results/ (make bench ends with it)

Every suite writes ``bench-results/<suite>.json`` (machine, versions, settings, raw trials)
and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import importlib

SUITES = {
    "rank": "rank",
    "scoring-speed": "scoring_speed",
    "attention-passkey": "attention_passkey",
    "attention-speed": "attention_speed",
    "passkey": "passkey",
    "niah": "niah",
    "evidence": "evidence",
    "evidence-grid": "evidence_grid",
    "evidence-probes": "probes",
    "needles": "needles",
    "answers": "answers",
    "cascade": "cascade",
    "rerank": "rerank",
    "lminfinite-cache": "lminfinite_cache",
    "scale": "scale",
    "gpu": "gpu",
    "report": "report",
}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="suite", required=True)
    for name, module_name in SUITES.items():
        module = importlib.import_module(f"benchmarks.suites.{module_name}")
        p = sub.add_parser(name, help=module.HELP, description=module.__doc__)
        module.add_arguments(p)
        p.set_defaults(run=module.run)
    args = parser.parse_args(argv)
    run = args.run
    del args.run, args.suite
    run(args)


if __name__ == "__main__":
    main()
