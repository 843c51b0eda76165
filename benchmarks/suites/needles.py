"""Needles in long documents (20k tokens unless told) through the product: is the needle in the key context?

Each trial hides one sentence at a depth of a ~20k-token document made of Python's pydoc topics
and Paul Graham's essays, and asks for it. ``LongContextReader().select`` runs with every default
(the shipped configuration: segment size, budget, signals, fusion, hops), exactly as ``select``
and ``ask`` do. The score is whether the needle sentence is whole in the key context.

- ``--kind lexical`` (the default): the question reuses the needle's words ("Margarethe's cat is
  named Professor Whiskerbottom." / "What is the name of Margarethe's cat?").
- ``--kind lowoverlap``: the low-overlap needle pairs (``benchmarks.lowoverlap``) of the test half,
  the half ``python -m benchmarks evidence`` reports (``--split dev``: the development half), asked without a shared content word
  ("Which person is a dentist?"), one trial a pair, the word orders alternating: the same needles
  as the evidence suite's ~4k-token documents, in documents five times as long.

Beside the product's own answer, the no-model baselines (BM25, MiniLM, their reciprocal-rank
hybrid) and the model's certainty alone rank the very same segments, from each segment's own
signal scores in the key context's table, and keep what fits the same budget by the product's rule.
"""

from __future__ import annotations

import random
import sys
import time

import numpy as np

from benchmarks.common import progress, save

HELP = "needles in 20k-token documents (lexical or low-overlap) through LongContextReader().select with every default: kept or not"

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

KINDS = ("lexical", "lowoverlap")
# The methods ranked beside the product, from the same segments' own signal scores.
BASELINES = ("certainty", "bm25", "minilm", "bm25+minilm rrf")


def add_arguments(p) -> None:
    p.add_argument("--tokens", type=int, default=20000, help="document length in tokens (default 20000)")
    p.add_argument("--depths", type=float, nargs="+", default=[0.1, 0.5, 0.9])
    p.add_argument("--trials", type=int, default=10,
                   help="trials per depth, one needle each (default 10; lowoverlap: one a pair of the half, 26 at most)")
    p.add_argument("--kind", choices=KINDS, default="lexical",
                   help="lexical: asked in the needle's own words; lowoverlap: the low-overlap needle pairs of --split's half")
    p.add_argument("--split", choices=("test", "dev"), default="test",
                   help="lowoverlap: which half of the needle pairs (default test; choose methods on dev)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--data", default=None, help="evaluation data folder, for the essays (default: ../shared/data)")
    p.add_argument("--model", default=None)


def trials_of(kind: str, trials: int, depths: list[float], split: str = "test") -> list[tuple[float, int, str, str]]:
    """(depth, trial, needle, question) for each trial, every depth early on: each lexical needle
    in turn at every depth (``trials`` a depth), or the low-overlap pairs of the ``split`` half,
    each once (so at most 26), at the depths in turn, the person first and the fact first in turn."""
    if kind == "lexical":
        return [(depth, t, *NEEDLES[t % len(NEEDLES)]) for t in range(trials) for depth in depths]
    from benchmarks.lowoverlap import ALL_PAIRS
    from benchmarks.multihop import needle_pairs

    pairs = [ALL_PAIRS[p] for p in needle_pairs(split, 0)][: trials * len(depths)]  # the evidence suite's halves (its seed 0)
    return [(depths[t % len(depths)], t, pair.fact_first if t % 2 else pair.person_first, pair.question)
            for t, pair in enumerate(pairs)]


def segment_table(key, text: str, tokenizer, needle_at: tuple[int, int]) -> list[dict]:
    """Every segment of the key context's table: its tokens, how many of the needle's characters
    it holds, and each signal's score (so that other rankings can be computed from a saved run)."""
    return [{"tokens": len(tokenizer(text[s.start:s.end], add_special_tokens=False)["input_ids"]),
             "needle_chars": max(0, min(needle_at[1], s.end) - max(needle_at[0], s.start)), **s.signals}
            for s in key.segments]


def baseline_kept(table: list[dict], gap: int, needle_length: int) -> dict[str, bool]:
    """Whether each baseline, ranking the key context's own segments by their signal scores
    (``table``, from :func:`segment_table`) and keeping what fits the product's budget by its
    rule, keeps the whole needle."""
    from entropy_retriever.config import DEFAULT
    from entropy_retriever.fusion import RRF
    from entropy_retriever.selection import Selection

    sizes = [row["tokens"] for row in table]
    signal = {name: np.array([row[name] for row in table], dtype=np.float64) for name in ("certainty", "bm25", "dense")}
    scores = {"certainty": signal["certainty"], "bm25": signal["bm25"], "minilm": signal["dense"],
              "bm25+minilm rrf": RRF().fuse({"bm25": signal["bm25"], "dense": signal["dense"]})}
    out = {}
    for name in BASELINES:
        kept = Selection(token_budget=DEFAULT.token_budget).choose_order(sizes, np.argsort(scores[name], kind="stable"), gap)
        out[name] = holds(table, kept, needle_length)
    return out


def holds(table: list[dict], indices, needle_length: int) -> bool:
    """Whether the segments at ``indices`` of ``table`` hold every character of the needle."""
    return sum(table[i]["needle_chars"] for i in indices) == needle_length


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
    from benchmarks.shipped import gap_tokens
    from entropy_retriever import LongContextReader, load_model
    from entropy_retriever.config import DEFAULT

    if args.kind == "lexical" and args.split != "test":
        raise SystemExit("--split chooses a half of the low-overlap needle pairs: use it with --kind lowoverlap")
    model, tokenizer = load_model(args.model)
    reader = LongContextReader(model, tokenizer, progress=False)
    if reader.config != DEFAULT:
        raise SystemExit(f"the reader's configuration {reader.config} is not the shipped one {DEFAULT}")
    essays = ev.EssayFiller(ev.data_dir(args.data), tokenizer).text
    rng = random.Random(args.seed)
    gap = gap_tokens(tokenizer)
    rows = []
    for depth, t, needle, question in progress(trials_of(args.kind, args.trials, args.depths, args.split), desc="needles", unit="trial"):
        paragraphs = haystack(tokenizer, essays, args.tokens, rng)
        at = round(depth * len(paragraphs))
        text = "\n\n".join(paragraphs[:at] + [needle] + paragraphs[at:])
        started = time.perf_counter()
        key = reader.select(text, question)
        seconds = round(time.perf_counter() - started, 1)
        start = text.index(needle)
        table = segment_table(key, text, tokenizer, (start, start + len(needle)))
        selected = [i for i, s in enumerate(key.segments) if s.selected]
        rows.append({"depth": depth, "trial": t, "needle": needle, "question": question, "kept": needle in key.text,
                     "kept_by_table": holds(table, selected, len(needle)),  # the same, from the table
                     "baselines": baseline_kept(table, gap, len(needle)), "table": table,
                     "tokens": key.meta["context_tokens"], "segments": key.meta["n_segments"], "seconds": seconds})
        others = ", ".join(f"{name} {'kept' if k else 'lost'}" for name, k in rows[-1]["baselines"].items())
        print(f"depth {depth} trial {t}: {'kept' if rows[-1]['kept'] else 'LOST'} ({seconds} s; {others})", file=sys.stderr, flush=True)
    name = "needles" if args.kind == "lexical" else f"needles-{args.kind}" + ("-dev" if args.split == "dev" else "")
    save(name, vars(args) | {"config": repr(DEFAULT)}, rows,
         needles_table(rows, args, DEFAULT))


def needles_table(rows: list[dict], args, config) -> str:
    """Kept / trials by depth: the product's default, then each baseline on the same segments."""
    what = {"lexical": "Lexical needles",
            "lowoverlap": f"Low-overlap needles (the {args.split} half's pairs, one trial each)"}[args.kind]
    depths = [d for d in args.depths if any(r["depth"] == d for r in rows)]
    lines = [f"{what} at {args.tokens:,} tokens, {len(rows)} trials over depths {', '.join(f'{d:g}' for d in depths)}, "
             f"`LongContextReader().select` with every default ({config.label}, budget {config.token_budget}); "
             "the baselines rank the same segments and keep what fits the same budget:", "",
             "| kept | " + " | ".join(f"depth {d:g}" for d in depths) + " | all |",
             "|---|" + "---|" * (len(depths) + 1)]
    labels = {"default": "**default**", "certainty": "the model alone", "bm25": "BM25", "minilm": "MiniLM, sentence by sentence",
              "bm25+minilm rrf": "BM25 + MiniLM, reciprocal rank (no model)"}
    for method, label in labels.items():
        kept = [(r["depth"], r["kept"] if method == "default" else r["baselines"][method]) for r in rows]
        cells = [f"{sum(k for at, k in kept if at == d)} / {sum(at == d for at, _ in kept)}" for d in depths]
        bold = "**" if method == "default" else ""
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {bold}{sum(k for _, k in kept)} / {len(rows)}{bold} |")
    return "\n".join(lines)
