"""Answer accuracy: the shipped selection, then the model answers from the whole key context or
from its focus (the key context's best sentences, ``answer_focus``).

Each example is a ~4k-token document of the evidence suite's sets (``benchmarks.multihop``,
the same halves and seed). The reader selects once with every default; each answer stage then
answers from that one key context, through the reader's own prompt and answering model. An
answer counts when it holds the expected answer (any of its aliases), case aside. The table
gives, per set, how many were answered, and how many of those whose key context held all the
evidence; "read" counts how often the expected answer's words were in what the model read.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Callable

from benchmarks.common import progress, save

HELP = "answer accuracy: whole key context against the answer focus, on the evidence sets' halves"
DATASETS = ("lowoverlap", "lowoverlap_control", "twowiki", "musique", "babi3")


def add_arguments(p) -> None:
    p.add_argument("--split", default="test", choices=["dev", "test"], help="which half of every data set (default test)")
    p.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    p.add_argument("--n", type=int, default=24, help="examples per data set (default 24)")
    p.add_argument("--focus", type=int, nargs="+", default=[0, 3],
                   help="answer stages to compare: 0 answers from the whole key context, N from its N best sentences")
    p.add_argument("--max-new-tokens", type=int, default=32)
    p.add_argument("--window-tokens", type=int, default=4096, help="document length in tokens")
    p.add_argument("--seed", type=int, default=0, help="the split and the documents' seed")
    p.add_argument("--data", default=None, help="evaluation data folder (default: $ENTROPY_RETRIEVER_DATA or ../shared/data)")
    p.add_argument("--model", default=None)


def expected_answers(root: Path, dataset: str) -> Callable[[str], list[str]]:
    """Each example id's accepted answers, read from the data files (the needles' from ``benchmarks.lowoverlap``)."""
    from benchmarks.lowoverlap import ALL_PAIRS
    from benchmarks.multihop import babi3_answers

    if dataset in ("lowoverlap", "lowoverlap_control"):
        return lambda example_id: [ALL_PAIRS[int(example_id.split(".")[0])].answer]  # the id begins with its pair
    if dataset == "twowiki":
        rows = [json.loads(line) for line in open(root / "multihop" / "2wikimultihopqa_dev_200.jsonl", encoding="utf-8")]
        table = {r["id"]: list(r["golden_answers"]) for r in rows}
    elif dataset == "musique":
        rows = json.loads((root / "multihop" / "musique_ans_dev_100.json").read_text(encoding="utf-8"))
        table = {r["id"]: [r["answer"], *r.get("answer_aliases", [])] for r in rows}
    else:  # babi3: an example's id is its story's index
        table = {str(i): [answer] for i, answer in enumerate(babi3_answers(root))}
    return table.__getitem__


def run(args) -> None:
    if any(n < 0 for n in args.focus) or len(set(args.focus)) != len(args.focus):
        raise SystemExit(f"--focus takes distinct sizes of at least 0 (0 = the whole key context), got {args.focus}")
    from benchmarks import evidence as ev
    from benchmarks import multihop
    from entropy_retriever import LongContextReader, load_model

    root = ev.data_dir(args.data)
    model, tokenizer = load_model(args.model)
    readers = {(f"focus {n}" if n else "whole"): LongContextReader(model, tokenizer, answer_focus=n or None, progress=False)
               for n in args.focus}
    selector = next(iter(readers.values()))
    rows = []
    for dataset in args.datasets:
        answers = expected_answers(root, dataset)
        examples = multihop.load(root, tokenizer, dataset, args.split, args.n, args.window_tokens, args.seed)
        for example in progress(examples, desc=dataset, unit="example"):
            key = selector.select(example.context, example.question)
            expected = answers(example.id)
            held = sum(example.context[a:b] in key.text for a, b in example.evidence) / max(len(example.evidence), 1)
            row = {"dataset": dataset, "id": example.id, "question": example.question, "answers": expected,
                   "evidence_kept": held, "output": {}, "correct": {}, "read": {}}
            for label, reader in readers.items():
                text = reader.answer_text(key, example.question)
                output = reader._generate(key, example.question, args.max_new_tokens, text).text  # the reader's own answer path
                row["output"][label] = output
                row["correct"][label] = any(a.lower() in output.lower() for a in expected)
                row["read"][label] = any(a.lower() in text.lower() for a in expected)
            rows.append(row)
            print(json.dumps(row), flush=True)
    labels = list(readers)
    lines = ["| set | n | all evidence kept | " + " | ".join(f"{label}: answered (where all kept); read" for label in labels) + " |",
             "|---|---|---|" + "---|" * len(labels)]
    for dataset in args.datasets:
        mine = [r for r in rows if r["dataset"] == dataset]
        full = [r for r in mine if r["evidence_kept"] > 0.999]
        cells = [f"{sum(r['correct'][lb] for r in mine)} ({sum(r['correct'][lb] for r in full)}); "
                 f"{sum(r['read'][lb] for r in mine)}" for lb in labels]
        lines.append(f"| {dataset} | {len(mine)} | {len(full)} | " + " | ".join(cells) + " |")
    table = (f"Answer accuracy, {args.split} halves, the shipped selection; "
             f"{args.max_new_tokens} new tokens at most\n\n" + "\n".join(lines)
             + "\n\nanswered: the answer holds the expected one; (where all kept): of those whose key context held "
               "all the evidence; read: the expected answer was in what the model read.")
    save("answers", vars(args) | {"command": "python -m benchmarks " + " ".join(sys.argv[1:])}, rows, table)
