"""Multi-hop evidence sets, and the development / test split every evidence set uses.

- ``twowiki``: 2WikiMultihopQA dev questions (``multihop/2wikimultihopqa_dev_200.jsonl``). The
  question's own ten paragraphs (two or four gold, the rest distractors chosen by its authors)
  are shuffled among paragraphs of other questions until the document is about
  ``window_tokens`` long. The evidence is the supporting sentences.
- ``musique``: MuSiQue-Ans dev questions of two to four hops (``multihop/musique_ans_dev_100.json``),
  built the same way from their twenty paragraphs; the evidence is the supporting paragraphs.
- ``babi3``: bAbI task 3 ("Where was the apple before the kitchen?", three supporting facts),
  each story's last question, its lines spread through essay filler (BABILong-style).

The split is fixed by a seed and made over the *source items* (questions, stories, needle
pairs), never over examples built from them, so that no question or needle is seen in both
halves: methods and weights are chosen on ``dev``, and the README reports ``test``.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

SPLITS = ("dev", "test")


def split_items(items: list, dataset: str, split: str, seed: int) -> list:
    """The ``split`` half of ``items`` (``"dev"``, ``"test"`` or ``"all"``), shuffled by ``seed``."""
    if split == "all":
        return list(items)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS} or 'all', got {split!r}")
    order = list(range(len(items)))
    random.Random(f"split:{seed}:{dataset}").shuffle(order)
    half = len(order) // 2
    chosen = order[:half] if split == "dev" else order[half:]
    return [items[i] for i in sorted(chosen)]


def _paragraph_document(own: list[tuple[str, str]], pool: list[tuple[str, str]], tokenizer, window_tokens: int,
                        rng: random.Random) -> tuple[str, dict[int, int]]:
    """The question's paragraphs among others from ``pool`` (``(title, text)``), shuffled, about
    ``window_tokens`` long. Returns the text and where each own paragraph's body starts."""
    titles = {t for t, _ in own}
    chosen = [(True, i, p) for i, p in enumerate(own)]
    used = sum(len(tokenizer(f"{t}\n{x}")["input_ids"]) + 2 for t, x in own)
    for j in rng.sample(range(len(pool)), len(pool)):
        title, text = pool[j]
        if title in titles:
            continue
        cost = len(tokenizer(f"{title}\n{text}")["input_ids"]) + 2
        if used + cost > window_tokens:
            if used > 0.9 * window_tokens:
                break
            continue
        titles.add(title)
        chosen.append((False, j, (title, text)))
        used += cost
    rng.shuffle(chosen)
    parts, starts, at = [], {}, 0
    for is_own, i, (title, text) in chosen:
        head = f"{title}\n"
        if is_own:
            starts[i] = at + len(head)
        parts.append(head + text)
        at += len(head) + len(text) + 2
    return "\n\n".join(parts), starts


def load_twowiki(root: Path, tokenizer, split: str, n: int, window_tokens: int, seed: int):
    from .evidence import Example

    rows = [json.loads(line) for line in open(root / "multihop" / "2wikimultihopqa_dev_200.jsonl", encoding="utf-8")]
    pool = []
    for row in rows:
        context = row["metadata"]["context"]
        pool += [(t, " ".join(s.strip() for s in c)) for t, c in zip(context["title"], context["content"])]
    examples = []
    for row in split_items(rows, "twowiki", split, seed)[:n]:
        context = row["metadata"]["context"]
        own = [(t, [s.strip() for s in c]) for t, c in zip(context["title"], context["content"])]
        rng = random.Random(f"{seed}:twowiki:{row['id']}")
        text, starts = _paragraph_document([(t, " ".join(s)) for t, s in own], pool, tokenizer, window_tokens, rng)
        spans = []
        facts = row["metadata"]["supporting_facts"]
        for title, sent in zip(facts["title"], facts["sent_id"]):
            index = next((i for i, (t, _) in enumerate(own) if t == title), None)
            if index is None or sent >= len(own[index][1]):
                continue
            sentences = own[index][1]
            begin = starts[index] + sum(len(s) + 1 for s in sentences[:sent])
            spans.append((begin, begin + len(sentences[sent])))
        if spans:
            examples.append(Example("twowiki", row["id"], text, row["question"], tuple(sorted(set(spans)))))
    return examples


def load_musique(root: Path, tokenizer, split: str, n: int, window_tokens: int, seed: int):
    from .evidence import Example

    rows = json.loads((root / "multihop" / "musique_ans_dev_100.json").read_text(encoding="utf-8"))
    pool = [(p["title"], p["paragraph_text"].strip()) for row in rows for p in row["paragraphs"]]
    examples = []
    for row in split_items(rows, "musique", split, seed)[:n]:
        own = [(p["title"], p["paragraph_text"].strip()) for p in row["paragraphs"]]
        rng = random.Random(f"{seed}:musique:{row['id']}")
        text, starts = _paragraph_document(own, pool, tokenizer, window_tokens, rng)
        spans = tuple(sorted((starts[i], starts[i] + len(own[i][1]))
                             for i, p in enumerate(row["paragraphs"]) if p["is_supporting"]))
        examples.append(Example("musique", row["id"], text, row["question"], spans))
    return examples


def _babi3_records(root: Path) -> list[tuple[list[str], str, str, list[int]]]:
    """Each bAbI task 3 story up to its last question: its lines, the question, its answer, the supporting lines' indices."""
    stories, lines, last = [], {}, None
    with open(root / "babi" / "qa3_three-supporting-facts_test.txt", encoding="utf-8") as f:
        for raw in f:
            number, _, rest = raw.strip().partition(" ")
            if int(number) == 1:
                if last is not None:
                    stories.append(last)
                lines, last = {}, None
            if "\t" in rest:
                question, answer, support = (part.strip() for part in rest.split("\t"))
                kept = sorted(lines)
                last = ([lines[k] for k in kept], question, answer, [kept.index(int(s)) for s in support.split()])
            else:
                lines[int(number)] = rest
    if last is not None:
        stories.append(last)
    return stories


def babi3_stories(root: Path) -> list[tuple[list[str], str, list[int]]]:
    """Each bAbI task 3 story up to its last question: its lines, the question, the supporting lines' indices."""
    return [(lines, question, support) for lines, question, _, support in _babi3_records(root)]


def babi3_answers(root: Path) -> list[str]:
    """The answer to each story's last question, in the order of :func:`babi3_stories`."""
    return [answer for _, _, answer, _ in _babi3_records(root)]


def load_babi3(root: Path, tokenizer, split: str, n: int, window_tokens: int, seed: int):
    from .evidence import EssayFiller, Example

    stories = babi3_stories(root)
    indexed = list(enumerate(stories))
    filler = EssayFiller(root, tokenizer)
    examples = []
    for i, (story, question, support) in split_items(indexed, "babi3", split, seed)[:n]:
        rng = random.Random(f"{seed}:babi3:{i}")
        context, spans = filler.with_lines(story, window_tokens, rng)
        examples.append(Example("babi3", str(i), context, question, tuple(spans[s] for s in sorted(set(support)))))
    return examples


def needle_pairs(split: str, seed: int) -> list[int]:
    """Indices into ``ALL_PAIRS`` of the ``split`` half: ``PAIRS`` and ``MORE_PAIRS`` each split on its own."""
    from .lowoverlap import ALL_PAIRS, PAIRS

    first = list(range(len(PAIRS)))
    more = list(range(len(PAIRS), len(ALL_PAIRS)))
    return split_items(first, "needles", split, seed) + split_items(more, "more-needles", split, seed)


def load_needles(root: Path, tokenizer, split: str, n: int, window_tokens: int, seed: int, *, control: bool):
    """The low-overlap needles (``benchmarks.lowoverlap``), split by needle pair: every pair's two
    word orders, each in as many haystacks as ``n`` asks for, at random depths.

    ``PAIRS`` and ``MORE_PAIRS`` are split each on its own, so that the first pairs keep the halves
    they had before the second set was written."""
    from .evidence import EssayFiller, Example
    from .lowoverlap import ALL_PAIRS

    pairs = needle_pairs(split, seed)
    filler = EssayFiller(root, tokenizer)
    name = "lowoverlap_control" if control else "lowoverlap"
    examples = []
    for i in range(n):
        p = pairs[i % len(pairs)]
        order = (i // len(pairs)) % 2
        pair = ALL_PAIRS[p]
        needle = pair.fact_first if order else pair.person_first
        rng = random.Random(f"{seed}:needles:{i}:{p}")  # the same haystack for a needle and its control
        context, spans = filler.with_lines([needle], window_tokens, rng)
        examples.append(Example(name, f"{p}.{order}.{i // (2 * len(pairs))}", context,
                                pair.control if control else pair.question, tuple(spans)))
    return examples


LOADERS = {
    "lowoverlap": lambda *a: load_needles(*a, control=False),
    "lowoverlap_control": lambda *a: load_needles(*a, control=True),
    "babi3": load_babi3,
    "twowiki": load_twowiki,
    "musique": load_musique,
}


def load(root: Path, tokenizer, dataset: str, split: str, n: int, window_tokens: int, seed: int):
    """``n`` examples of ``dataset`` from its ``split`` half (fewer where the half is smaller)."""
    return LOADERS[dataset](root, tokenizer, split, n, window_tokens, seed)
