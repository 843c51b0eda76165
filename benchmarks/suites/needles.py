"""Lexical needles at 20k tokens through the product: is the needle in the key context?

Each trial hides one sentence ("Margarethe's cat is named Professor Whiskerbottom.") at a depth
of a ~20k-token document made of Python's pydoc topics and Paul Graham's essays, and asks for
it in the needle's own words. ``LongContextReader().select`` runs with every default (the
shipped configuration: segment size, budget, signals, fusion, hops), exactly as ``select`` and
``ask`` do. The score is whether the needle sentence is whole in the key context.
"""

from __future__ import annotations

import random
import sys
import time

from benchmarks.common import progress, save

HELP = "lexical needles at 20k tokens through LongContextReader().select with every default: kept or not"

# (needle, question): the question reuses the needle's words, as a user would ask.
NEEDLES = (
    ("Margarethe's cat is named Professor Whiskerbottom.", "What is the name of Margarethe's cat?"),
    ("The spare key to the boathouse is hidden under the blue flowerpot.", "Where is the spare key to the boathouse hidden?"),
    ("Oskar's favourite tea is a smoky lapsang souchong from Fujian.", "What is Oskar's favourite tea?"),
    ("The quarterly audit found that the Lisbon office overspent by 14,300 euros.", "By how much did the Lisbon office overspend?"),
    ("Ingrid parked the rental van on level four of the Harbourside garage.", "Where did Ingrid park the rental van?"),
    ("The wifi password for the studio is marmalade-orbit-77.", "What is the wifi password for the studio?"),
    ("Professor Adeyemi's lecture on glaciers was moved to room 2.14.", "Which room was Professor Adeyemi's lecture on glaciers moved to?"),
    ("The bakery on Fenwick Street sells its last cardamom buns at four o'clock.", "When does the bakery on Fenwick Street sell its last cardamom buns?"),
    ("Tobias keeps the seed catalogue in the bottom drawer of the greenhouse desk.", "Where does Tobias keep the seed catalogue?"),
    ("The ferry to Inishmore leaves from pier seven at twenty past nine.", "When does the ferry to Inishmore leave?"),
)


def add_arguments(p) -> None:
    p.add_argument("--tokens", type=int, default=20000, help="document length in tokens (default 20000)")
    p.add_argument("--depths", type=float, nargs="+", default=[0.1, 0.5, 0.9])
    p.add_argument("--trials", type=int, default=10, help="trials per depth, one needle each (default 10)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--data", default=None, help="evaluation data folder, for the essays (default: ../shared/data)")
    p.add_argument("--model", default=None)


def haystack(tokenizer, essays: str, n_tokens: int, rng: random.Random) -> list[str]:
    """Paragraphs of pydoc topics and essays, in a random order, about ``n_tokens`` long."""
    from pydoc_data.topics import topics

    pool = [t.strip() for t in topics.values() if t.strip()] + [p.strip() for p in essays.split("\n\n") if len(p.strip()) > 200]
    rng.shuffle(pool)
    out, total = [], 0
    for paragraph in pool:
        if total >= n_tokens:
            break
        out.append(paragraph)
        total += len(tokenizer(paragraph, add_special_tokens=False)["input_ids"])
    return out


def run(args) -> None:
    from benchmarks import evidence as ev
    from entropy_retriever import LongContextReader, load_model
    from entropy_retriever.config import DEFAULT

    model, tokenizer = load_model(args.model)
    reader = LongContextReader(model, tokenizer, progress=False)
    if reader.config != DEFAULT:
        raise SystemExit(f"the reader's configuration {reader.config} is not the shipped one {DEFAULT}")
    essays = ev.EssayFiller(ev.data_dir(args.data), tokenizer).text
    rng = random.Random(args.seed)
    rows = []
    trials = [(depth, t) for t in range(args.trials) for depth in args.depths]  # every depth early on
    for depth, t in progress(trials, desc="needles", unit="trial"):
        needle, question = NEEDLES[t % len(NEEDLES)]
        paragraphs = haystack(tokenizer, essays, args.tokens, rng)
        at = round(depth * len(paragraphs))
        text = "\n\n".join(paragraphs[:at] + [needle] + paragraphs[at:])
        started = time.perf_counter()
        key = reader.select(text, question)
        rows.append({"depth": depth, "trial": t, "needle": needle, "kept": needle in key.text,
                     "tokens": key.meta["context_tokens"], "segments": key.meta["n_segments"],
                     "seconds": round(time.perf_counter() - started, 1)})
        print(f"depth {depth} trial {t}: {'kept' if rows[-1]['kept'] else 'LOST'} ({rows[-1]['seconds']} s)",
              file=sys.stderr, flush=True)
    kept = sum(r["kept"] for r in rows)
    lines = [f"Lexical needles at {args.tokens:,} tokens, {len(args.depths)} depths x {args.trials} trials, "
             f"`LongContextReader().select` with every default ({DEFAULT.label}, budget {DEFAULT.token_budget}):", "",
             "| depth | kept |", "|---|---|"]
    for depth in args.depths:
        mine = [r for r in rows if r["depth"] == depth]
        lines.append(f"| {depth:g} | {sum(r['kept'] for r in mine)} / {len(mine)} |")
    lines.append(f"| all | **{kept} / {len(rows)}** |")
    save("needles", vars(args) | {"config": repr(DEFAULT)}, rows, "\n".join(lines))
