"""Evidence recall: at an equal token budget, does the selected context contain the evidence?

Every example is a document with known evidence (character spans), a question, and the
segments our segmenter cuts it into. Every method ranks the same segments; the first
ranked segments are kept while they fit the token budget; recall is the share of the
evidence characters inside the kept segments (1.0 when the evidence was kept whole).

Data sets (read from the evaluation data folder, ``../shared/data`` in this repository):

- ``loogle``: LooGLE short-dependency QA; a window of ``window_tokens`` cut from the
  document around every evidence span of the question, the evidence at a random depth.
- ``kv``: lost-in-the-middle key-value retrieval (75 keys), the gold record as evidence.
- ``lines``: LongChat lines (200 lines), the queried line as evidence.
- ``ruler``: RULER niah_multikey_3 (4096), the queried needle sentence as evidence.

Methods: our certainty metrics under each scoring template, a rank fusion of two of them,
and baselines: BM25 (bm25s), dense retrieval with all-MiniLM-L6-v2, random, begin, end.
"""

from __future__ import annotations

import ast
import gzip
import json
import os
import random
import re
import statistics
from dataclasses import dataclass
from pathlib import Path

from entropy_retriever.errors import InputError
from entropy_retriever.segments import Segment, Segmenter
from entropy_retriever.signals import bm25_scores

DATASETS = ("loogle", "kv", "lines", "ruler", "babi", "lowoverlap", "lowoverlap_control", "loogle_long")
METRICS = ("entropy_last", "entropy_mean", "question_nll")
TEMPLATES = ("plain", "chat")
FUSION = ("question_nll", "entropy_last")  # rank fusion of these two, per template
BASELINES = ("bm25", "minilm", "random", "begin", "end")


@dataclass(frozen=True)
class Example:
    dataset: str
    id: str
    context: str
    question: str
    evidence: tuple[tuple[int, int], ...]  # character spans [start, end) in ``context``


# The suite's default data sets: the hard ones first, then the controls.
EVIDENCE_DATASETS = ("babi", "lowoverlap", "loogle_long", "lowoverlap_control", "loogle", "kv", "lines", "ruler")


def data_dir(path: str | os.PathLike | None = None) -> Path:
    """The evaluation data folder: ``path``, $ENTROPY_RETRIEVER_DATA, or ``../shared/data``."""
    candidates = [path, os.environ.get("ENTROPY_RETRIEVER_DATA"), Path(__file__).resolve().parents[1] / ".." / "shared" / "data"]
    for candidate in candidates:
        if candidate and Path(candidate).is_dir():
            return Path(candidate).resolve()
    raise InputError(
        "the evidence-recall and needle benchmarks read evaluation data that is not part of the "
        "package: pass --data DIR or set ENTROPY_RETRIEVER_DATA to a folder with loogle/, "
        "lost_in_the_middle/, longchat_lines/, ruler/ and niah/ (this repository's ../shared/data)"
    )


# ------------------------------------------------------------------------------ loaders
def _spans(text: str, pieces: list[str]) -> tuple[tuple[int, int], ...] | None:
    spans = []
    for piece in pieces:
        at = text.find(piece)
        if at < 0:
            return None
        spans.append((at, at + len(piece)))
    return tuple(spans)


def _loose_spans(text: str, pieces: list[str]) -> tuple[tuple[int, int], ...] | None:
    """Like ``_spans``, for evidence quoted loosely: any run of white space matches any other,
    a ``?`` stands for one character the quote lost (LooGLE writes ``Ad?yaman`` for ``Adıyaman``),
    and ``......`` separates pieces quoted from different places."""
    spans = []
    for piece in pieces:
        for part in re.split(r"\s*\.{4,}\s*", piece):
            words = part.split()
            if not words:
                continue
            pattern = r"\s+".join(re.escape(w).replace(r"\?", ".") for w in words)
            found = re.search(pattern, text)
            if found is None:
                return None
            spans.append(found.span())
    return tuple(spans) or None


def _evidence_pieces(value) -> list[str]:
    """LooGLE's ``S``: one string, a list, or a list written as a Python literal inside a string."""
    if isinstance(value, str) and value.lstrip().startswith("["):
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            pass
    pieces = [value] if isinstance(value, str) else list(value)
    return [p.strip() for p in pieces if isinstance(p, str) and p.strip()]


def load_loogle(root: Path, tokenizer, n: int, window_tokens: int, seed: int, task: str = "shortdep",
                max_spread: float = 0.5) -> list[Example]:
    """Questions whose evidence is in the document and spans at most ``max_spread`` of a window,
    round-robin over documents; the window is cut at a random depth around the evidence."""
    per_doc = []
    with open(root / "loogle" / f"{task}_qa.jsonl", encoding="utf-8") as f:
        for line in f:
            doc = json.loads(line)
            pairs = doc["qa_pairs"]
            pairs = ast.literal_eval(pairs) if isinstance(pairs, str) else pairs
            usable = []
            for j, pair in enumerate(pairs):
                evidence = _evidence_pieces(pair["S"])
                spans = (_spans(doc["input"], evidence) or _loose_spans(doc["input"], evidence)) if evidence else None
                if spans:
                    usable.append((j, pair["Q"], spans))
            per_doc.append((doc["title"] if "title" in doc else str(len(per_doc)), doc["input"], usable))
    rng = random.Random(seed)
    for _, _, usable in per_doc:  # questions follow the document; shuffle so depths spread
        rng.shuffle(usable)
    examples: list[Example] = []
    offsets_cache: dict[int, list[tuple[int, int]]] = {}
    for round_ in range(max(len(u) for _, _, u in per_doc)):
        for d, (title, text, usable) in enumerate(per_doc):
            if round_ >= len(usable) or len(examples) >= n:
                continue
            j, question, spans = usable[round_]
            if d not in offsets_cache:
                offsets_cache[d] = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
            offsets = offsets_cache[d]
            lo, hi = min(a for a, _ in spans), max(b for _, b in spans)
            first = next(i for i, (_, e) in enumerate(offsets) if e > lo)
            last = next((i for i, (s, _) in enumerate(offsets) if s >= hi), len(offsets)) - 1
            if last - first + 1 > max_spread * window_tokens:
                continue  # evidence too spread out for the window
            depth = rng.random()  # where the evidence should sit in the window, clamped at the document's ends
            start = round(first - depth * (window_tokens - (last - first + 1)))
            start = max(0, min(start, len(offsets) - window_tokens))
            stop = min(len(offsets), start + window_tokens) - 1
            c0, c1 = offsets[start][0], offsets[stop][1]
            examples.append(Example("loogle" if task == "shortdep" else "loogle_long", f"{title}#{j}", text[c0:c1], question,
                                    tuple((a - c0, b - c0) for a, b in spans)))
    return examples


def load_kv(root: Path, n: int) -> list[Example]:
    examples = []
    with gzip.open(root / "lost_in_the_middle" / "kv-retrieval-75_keys.jsonl.gz", "rt", encoding="utf-8") as f:
        for i, line in enumerate(f):
            if len(examples) >= n:
                break
            row = json.loads(line)
            records = row["ordered_kv_records"]
            records = ast.literal_eval(records) if isinstance(records, str) else records
            lines = [f'"{k}": "{v}"' for k, v in records]
            context = "JSON data:\n{\n" + ",\n".join(lines) + "\n}"
            gold = f'"{row["key"]}": "{row["value"]}"'
            examples.append(Example("kv", str(i), context, f'What is the value of the key "{row["key"]}"?',
                                    _spans(context, [gold])))
    return examples


def load_lines(root: Path, n: int) -> list[Example]:
    examples = []
    with open(root / "longchat_lines" / "200_lines.jsonl", encoding="utf-8") as f:
        for i, line in enumerate(f):
            if len(examples) >= n:
                break
            row = json.loads(line)
            prompt = row["prompt"]
            body = prompt[prompt.index("line "): prompt.index("Now the record is over")].rstrip()
            name = row["random_idx"][0]
            examples.append(Example("lines", str(i), body, f"What is the <REGISTER_CONTENT> in line {name}?",
                                    _spans(body, [row["correct_line"].strip()])))
    return examples


def load_ruler(root: Path, n: int) -> list[Example]:
    examples = []
    with open(root / "ruler" / "niah_multikey_3_4096.jsonl", encoding="utf-8") as f:
        for line in f:
            if len(examples) >= n:
                break
            row = json.loads(line)
            text = row["input"]
            asked = re.search(r"What is the special magic uuid for (\S+) mentioned in the provided text\?", text)
            context = text[: asked.start()].rstrip()
            outputs = row["outputs"]
            answer = (ast.literal_eval(outputs) if isinstance(outputs, str) else outputs)[0]
            needle = f"One of the special magic uuids for {asked.group(1)} is: {answer}."
            spans = _spans(context, [needle])
            if spans:
                examples.append(Example("ruler", row["index"], context, asked.group(0), spans))
    return examples


class EssayFiller:
    """Paul Graham's essays (``niah/PaulGrahamEssays``) as filler: a random stretch of whole sentences."""

    def __init__(self, root: Path, tokenizer) -> None:
        files = sorted((root / "niah" / "PaulGrahamEssays").glob("*.txt"))
        if not files:
            raise InputError(f"no essays under {root / 'niah' / 'PaulGrahamEssays'}")
        text = "\n\n".join(f.read_text(encoding="utf-8").strip() for f in files)
        self.text = re.sub(r"[ \t]+", " ", text)
        self.tokenizer = tokenizer
        self.chars_per_token = len(self.text) / len(tokenizer(self.text, add_special_tokens=False)["input_ids"])

    def stretch(self, n_tokens: int, rng: random.Random) -> str:
        """About ``n_tokens`` tokens of essay text that starts and ends at sentence ends."""
        size = round(n_tokens * self.chars_per_token)
        start = rng.randrange(0, len(self.text) - size - 1)
        start = self.text.find(". ", start) + 2
        stop = self.text.rfind(". ", start, start + size) + 1
        return self.text[start:stop]

    def with_lines(self, lines: list[str], n_tokens: int, rng: random.Random, depths: list[float] | None = None):
        """Filler with ``lines`` placed in order at sentence ends (at ``depths``, else spread at random).

        Returns the text and each line's character span in it.
        """
        filler = self.stretch(n_tokens - sum(len(self.tokenizer(l)["input_ids"]) for l in lines), rng)
        ends = [m.end() for m in re.finditer(r"\. ", filler)]
        if depths is None:
            depths = sorted(rng.random() for _ in lines)
        cuts = [ends[min(len(ends) - 1, int(d * len(ends)))] if ends else 0 for d in depths]
        pieces, spans, at, last = [], [], 0, 0
        for line, cut in zip(lines, cuts):
            pieces.append(filler[last:cut])
            at += cut - last
            spans.append((at, at + len(line)))
            pieces.append(line + " ")
            at += len(line) + 1
            last = cut
        pieces.append(filler[last:])
        return "".join(pieces), spans


def load_babi(root: Path, tokenizer, n: int, window_tokens: int, seed: int) -> list[Example]:
    """bAbI task 1 stories spread through essay filler (BABILong-style).

    Each story's last question is asked after all its lines; several lines move the same
    person, and only the latest move answers. The evidence is that supporting line.
    """
    stories: list[tuple[list[str], str, int]] = []  # story lines, question, index of the support
    lines: dict[int, str] = {}
    with open(root / "babi" / "qa1_single-supporting-fact_test.txt", encoding="utf-8") as f:
        for raw in f:
            number, _, rest = raw.strip().partition(" ")
            if int(number) == 1:
                lines = {}
            if "\t" in rest:
                question, _, support = (part.strip() for part in rest.split("\t"))
                kept = sorted(lines)
                stories.append(([lines[k] for k in kept], question, kept.index(int(support))))
            else:
                lines[int(number)] = rest
    last_per_story = [s for s, nxt in zip(stories, stories[1:] + [None]) if nxt is None or len(nxt[0]) <= len(s[0])]
    filler = EssayFiller(root, tokenizer)
    rng = random.Random(seed)
    examples = []
    for i, (story, question, support) in enumerate(last_per_story[:n]):
        context, spans = filler.with_lines(story, window_tokens, rng)
        examples.append(Example("babi", str(i), context, question, (spans[support],)))
    return examples


def load_lowoverlap(root: Path, tokenizer, n: int, window_tokens: int, seed: int, *, control: bool) -> list[Example]:
    """Our low-overlap needles in essay filler; ``control`` asks the question that reuses the needle's words.

    Example ``i`` uses pair ``i % 26`` and alternates the word order, so that both orders of
    every pair are placed once in the first 52 examples; depths are spread at random.
    """
    from .lowoverlap import PAIRS

    filler = EssayFiller(root, tokenizer)
    rng = random.Random(f"{seed}:lowoverlap")
    examples = []
    for i in range(n):
        pair = PAIRS[i % len(PAIRS)]
        needle = pair.person_first if (i // len(PAIRS)) % 2 == 0 else pair.fact_first
        context, spans = filler.with_lines([needle], window_tokens, rng)
        examples.append(Example("lowoverlap_control" if control else "lowoverlap", str(i), context,
                                pair.control if control else pair.question, tuple(spans)))
    return examples


def load_loogle_long(root: Path, tokenizer, n: int, window_tokens: int, seed: int) -> list[Example]:
    """LooGLE long-dependency QA: every evidence piece of a question inside one window of the document."""
    return load_loogle(root, tokenizer, n, window_tokens, seed, task="longdep", max_spread=0.8)


def load_examples(root: Path, tokenizer, datasets, n: int, window_tokens: int, seed: int) -> list[Example]:
    loaders = {
        "loogle": lambda: load_loogle(root, tokenizer, n, window_tokens, seed),
        "kv": lambda: load_kv(root, n),
        "lines": lambda: load_lines(root, n),
        "ruler": lambda: load_ruler(root, n),
        "babi": lambda: load_babi(root, tokenizer, n, window_tokens, seed),
        "lowoverlap": lambda: load_lowoverlap(root, tokenizer, n, window_tokens, seed, control=False),
        "lowoverlap_control": lambda: load_lowoverlap(root, tokenizer, n, window_tokens, seed, control=True),
        "loogle_long": lambda: load_loogle_long(root, tokenizer, n, window_tokens, seed),
    }
    examples = []
    for name in datasets:
        if name not in loaders:
            raise InputError(f"unknown data set {name!r}: choose from {', '.join(DATASETS)}")
        found = loaders[name]()
        if len(found) < n and not (name == "loogle_long" and found):
            raise InputError(f"the {name} data set gave {len(found)} usable examples, fewer than the {n} asked for")
        examples.extend(found)
    for e in examples:
        if not e.evidence:
            raise AssertionError(f"{e.dataset} {e.id}: evidence not found in its context")
    return examples


# ----------------------------------------------------------------------------- rankers
# Our certainty metrics, each computed under the plain template from one forward pass.
METRICS = ("question_nll", "own_nll", "own_gain", "weighted_nll", "entropy_last", "entropy_mean")
TEMPLATES = ("plain",)
# Reciprocal rank fusions: of each certainty metric with BM25 and MiniLM, and of the two
# baselines alone, which shows what certainty adds to them.
FUSED_METRICS = ("question_nll", "own_nll", "own_gain", "weighted_nll", "entropy_last")
BASELINES = ("bm25", "minilm", "bm25+minilm", "longllmlingua", "random", "begin", "end")
SEGMENT_BUDGETS = (1, 2, 4)


class MiniLM:
    """The dense baseline: the library's own all-MiniLM-L6-v2 signal (``entropy_retriever.fusion``)."""

    def __init__(self) -> None:
        from entropy_retriever.signals import DenseEmbedder

        self.embedder = DenseEmbedder.shared()

    def scores(self, segments: list[Segment], question: str) -> list[float]:
        return self.embedder.scores([s.text for s in segments], question)


def bm25s_scores(segments: list[Segment], question: str) -> list[float]:
    """BM25 as the bm25s package computes it (the named baseline), lower = better."""
    try:
        import bm25s
    except ImportError:
        raise InputError("the bm25 baseline needs bm25s: pip install bm25s (make bench does)") from None
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize([s.text for s in segments], stopwords="en", show_progress=False), show_progress=False)
    query = bm25s.tokenize(question, stopwords="en", show_progress=False, return_ids=False)[0]
    if not query:
        return [0.0] * len(segments)
    return [-float(v) for v in retriever.get_scores(query)]


def rank_by_score(scores: list[float]) -> list[int]:
    """Lower score = more relevant; ties keep document order."""
    return sorted(range(len(scores)), key=lambda i: (scores[i], i))


# ---------------------------------------------------------------------------- measures
def keep(ranking: list[int], segments: list[Segment], selection, count) -> list[int]:
    """What the product keeps: ``selection.choose`` (a ``Selection``), on the scores the ranking
    (best first) implies, with tokens counted by ``count``. Sorted by position."""
    position = {seg: r for r, seg in enumerate(ranking)}
    scores = [float(position[i]) for i in range(len(segments))]
    return sorted(selection.choose(segments, scores, count))


def keep_top(ranking: list[int], segments: list[Segment], k: int) -> list[int]:
    """The product's rule at a budget of ``k`` segments: ``Selection(top_k=k)``."""
    from entropy_retriever import Selection

    return keep(ranking, segments, Selection(top_k=k), len)


def recall(example: Example, segments: list[Segment], kept: list[int]) -> float:
    total = sum(b - a for a, b in example.evidence)
    covered = 0
    for a, b in example.evidence:
        for i in kept:
            covered += max(0, min(b, segments[i].end) - max(a, segments[i].start))
    return covered / total


def evidence_rank(example: Example, segments: list[Segment], ranking: list[int]) -> int:
    """The 1-based rank of the best-ranked segment that holds any evidence."""
    for r, i in enumerate(ranking, start=1):
        if any(min(b, segments[i].end) > max(a, segments[i].start) for a, b in example.evidence):
            return r
    raise AssertionError(f"{example.dataset} {example.id}: no segment holds the evidence")


def bootstrap_ci(values: list[float], *, resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% percentile bootstrap interval of the mean."""
    rng = random.Random(seed)
    means = sorted(statistics.fmean(rng.choices(values, k=len(values))) for _ in range(resamples))
    return means[int(0.025 * resamples)], means[int(0.975 * resamples) - 1]


def method_scores(example: Example, segments: list[Segment], scorers: dict, minilm: MiniLM | None,
                  seconds: dict[str, float] | None = None) -> dict[str, list[float]]:
    """Every scored method's scores for ``segments`` (lower = better): certainty metrics, BM25, MiniLM, LongLLMLingua.

    ``seconds`` (if given) adds up the time each signal took: ``certainty`` (one template's
    pass), ``bm25`` and ``dense``, the three the library fuses.
    """
    import time

    from entropy_retriever.scoring import METRICS as REGISTRY

    seconds = {} if seconds is None else seconds

    def timed(name, fn):
        started = time.perf_counter()
        value = fn()
        seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - started
        return value

    out: dict[str, list[float]] = {}
    for template, scorer in scorers.items():
        stats = timed("certainty" if template == "plain" else f"certainty ({template})",
                      lambda: scorer.token_stats(segments, example.question))
        if template == "longllmlingua":
            out["longllmlingua"] = REGISTRY["question_nll"](stats).tolist()
            continue
        for metric in METRICS:
            out[f"{metric} ({template})" if template != "plain" else metric] = REGISTRY[metric](stats).tolist()
    out["bm25"] = bm25s_scores(segments, example.question)
    if minilm is not None:
        out["minilm"] = timed("dense", lambda: minilm.scores(segments, example.question))
    out[PRODUCT_BM25] = timed("bm25", lambda: bm25_scores([s.text for s in segments], example.question))
    return out


# The fusions use the library's own BM25 signal (fusion.BM25: bm25s's formula with a longer
# list of function words), so that a fused row measures exactly what the library selects.
PRODUCT_BM25 = "signal:bm25"


def rankings_for(example: Example, segments: list[Segment], scores: dict[str, list[float]], seed: int) -> dict[str, list[int]]:
    """Every method's ranking of ``segments`` (indices, best first) from ``method_scores``, fusions included."""
    from entropy_retriever.fusion import rrf_scores

    out = {name: rank_by_score(values) for name, values in scores.items() if not name.startswith("signal:")}
    bm25 = scores[PRODUCT_BM25] if PRODUCT_BM25 in scores else bm25_scores([s.text for s in segments], example.question)
    if "minilm" in scores:
        out["bm25+minilm"] = rank_by_score(rrf_scores([bm25, scores["minilm"]]))
        for metric in FUSED_METRICS:
            if metric in scores:
                out[f"{metric}+bm25+minilm"] = rank_by_score(rrf_scores([scores[metric], bm25, scores["minilm"]]))
                out[f"{metric}+minilm"] = rank_by_score(rrf_scores([scores[metric], scores["minilm"]]))
                out[f"{metric}+bm25"] = rank_by_score(rrf_scores([scores[metric], bm25]))
    order = list(range(len(segments)))
    out["random"] = random.Random(f"{seed}:{example.dataset}:{example.id}").sample(order, len(order))
    out["begin"] = order
    out["end"] = order[::-1]
    return out


def segment_example(example: Example, tokenizer, segment_tokens: int) -> list[Segment]:
    return list(Segmenter(tokenizer, segment_tokens).split(example.context))


def datasets_present(datasets: list[str], rows: list[dict]) -> list[str]:
    """``datasets`` in their order, less those that gave no example."""
    seen = {r["dataset"] for r in rows}
    return [d for d in datasets if d in seen]


# The data sets on which no method saturates: the question shares few or no words with its
# evidence, or the evidence is one of several similar lines. The README's default is chosen on these.
HARD = ("babi", "lowoverlap", "loogle_long")


def summarise(rows: list[dict], budgets: list[int], datasets: list[str]) -> tuple[str, dict]:
    """A Markdown table per segment budget (method x data set, mean recall [95% CI]), a table of
    mean evidence ranks, and the means: ``{(method, budget): mean over data sets}`` and
    ``{(method, budget, "hard"): mean over the hard data sets present}``."""
    methods = list(dict.fromkeys(r["method"] for r in rows))
    hard = [d for d in datasets if d in HARD]
    lines, means = [], {}
    n_per_set = ", ".join(f"{d} {len({r['id'] for r in rows if r['dataset'] == d})}" for d in datasets)
    head = "| method | " + " | ".join(datasets) + (" | mean, hard sets" if hard else "") + " | mean, all sets |"
    rule = "|---|" + "---|" * (len(datasets) + 1 + bool(hard))
    for budget in budgets:
        lines += [f"**{budget} segment{'s' if budget > 1 else ''}** (evidence recall, mean [95% bootstrap CI]; n per data set: {n_per_set})",
                  "", head, rule]
        table = []
        for method in methods:
            cells, per_set = [], {}
            for d in datasets:
                values = [r["recall"] for r in rows if r["method"] == method and r["dataset"] == d and r["budget"] == budget]
                lo, hi = bootstrap_ci(values)
                per_set[d] = statistics.fmean(values)
                cells.append(f"{per_set[d]:.2f} [{lo:.2f}, {hi:.2f}]")
            overall = statistics.fmean(per_set.values())
            means[(method, budget)] = overall
            if hard:
                means[(method, budget, "hard")] = statistics.fmean(per_set[d] for d in hard)
            table.append((method, cells))
        best_hard = max((means[(m, budget, "hard")] for m in methods), default=None) if hard else None
        best_all = max(means[(m, budget)] for m in methods)
        for method, cells in table:
            row = f"| {method} | " + " | ".join(cells)
            if hard:
                value = means[(method, budget, "hard")]
                row += f" | {'**' if value == best_hard else ''}{value:.2f}{'**' if value == best_hard else ''}"
            value = means[(method, budget)]
            row += f" | {'**' if value == best_all else ''}{value:.2f}{'**' if value == best_all else ''} |"
            lines.append(row)
        lines.append("")
    ranked = [r for r in rows if "rank" in r]
    if ranked:
        lines += ["**Mean rank of the evidence** (1 = the first segment a method keeps holds evidence; lower is better)", "",
                  "| method | " + " | ".join(datasets) + " |", "|---|" + "---|" * len(datasets)]
        for method in methods:
            cells = []
            for d in datasets:
                values = [r["rank"] for r in ranked if r["method"] == method and r["dataset"] == d]
                cells.append(f"{statistics.fmean(values):.1f}" if values else "-")
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines).rstrip(), means


# ------------------------------------------------------------------------- reranking
def first_stage(example: Example, tokenizer, passage_tokens: int, minilm: MiniLM, n_candidates: int) -> list[Segment]:
    """A vector store's answer: the document cut into passages, the ``n_candidates`` most similar
    to the question by all-MiniLM-L6-v2, in that order (what a reranker is given)."""
    passages = list(Segmenter(tokenizer, passage_tokens).split(example.context))
    order = rank_by_score(minilm.scores(passages, example.question))[:n_candidates]
    return [passages[i] for i in order]


def rerank_rankings(example: Example, candidates: list[Segment], scorers: dict, minilm: MiniLM, seed: int) -> dict[str, list[int]]:
    """Every method's ranking of the candidates; ``first stage`` keeps the vector store's order."""
    out = rankings_for(example, candidates, method_scores(example, candidates, scorers, minilm), seed)
    out.pop("begin")
    out.pop("end")
    out["first stage"] = out.pop("minilm")  # the candidates' own order: the first stage alone
    return out


# ---------------------------------------------------------------------------- README
def readme_methods() -> list[str]:
    """The rows the README shows: the library's default first, each part of it, the baselines."""
    from entropy_retriever.scoring import DEFAULT_METRIC

    return [f"{DEFAULT_METRIC}+bm25+minilm", *METRICS, f"{DEFAULT_METRIC}+bm25", f"{DEFAULT_METRIC}+minilm",
            "bm25", "minilm", "bm25+minilm", "longllmlingua", "random", "begin", "end"]


def readme_summary(rows: list[dict], budgets: list[int], datasets: list[str]) -> str:
    """The README's view: recall per data set at 2 segments, and the hard sets' means at every budget."""
    methods = [m for m in dict.fromkeys(readme_methods()) if any(r["method"] == m for r in rows)]
    mine = [r for r in rows if r["method"] in methods]
    mine.sort(key=lambda r: methods.index(r["method"]))
    middle = 2 if 2 in budgets else budgets[len(budgets) // 2]
    table, _ = summarise(mine, [middle], datasets)
    hard = [d for d in datasets if d in HARD]
    if not hard:
        return table
    lines = ["", "", f"**Hard sets ({', '.join(hard)}): mean recall by budget, and mean rank of the evidence**", "",
             "| method | " + " | ".join(f"{k} segment{'s' if k > 1 else ''}" for k in budgets) + " | mean rank |",
             "|---|" + "---|" * (len(budgets) + 1)]
    for method in methods:
        cells = []
        for k in budgets:
            cells.append(f"{statistics.fmean(statistics.fmean(r['recall'] for r in mine if r['method'] == method and r['dataset'] == d and r['budget'] == k) for d in hard):.2f}")
        ranks = statistics.fmean(statistics.fmean(r["rank"] for r in mine if r["method"] == method and r["dataset"] == d and r["budget"] == budgets[0]) for d in hard)
        lines.append(f"| {method} | " + " | ".join(cells) + f" | {ranks:.1f} |")
    return table + "\n".join(lines)


def signal_cost_table(seconds: dict[str, float], tokens: int) -> str:
    """Time per 1,000 document tokens for each signal the library fuses, and their share."""
    parts = [s for s in ("certainty", "bm25", "dense") if s in seconds]
    total = sum(seconds[s] for s in parts)
    lines = [f"**Cost of each signal** (the whole run: {tokens:,} document tokens; the same segments for each)", "",
             "| signal | milliseconds per 1,000 tokens | share of the fused selection's time |", "|---|---|---|"]
    for s in parts:
        lines.append(f"| {s} | {1e6 * seconds[s] / max(1, tokens):,.1f} | {seconds[s] / total:.2%} |")
    return "\n".join(lines)
