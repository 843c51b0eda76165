"""``entropy-retriever calibrate``: score the same documents in float32, int8 and (where the CPU
has it natively) bfloat16, side by side, and record the choice that ``dtype="auto"`` then reads
(:mod:`entropy_retriever.cpu_dtype` holds the rule and the record; this module measures)."""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict

from .cpu_dtype import Calibration, Measured, choose, native_bf16, record_path, this_cpu
from .demo import FACT, make_demo_document
from .errors import InputError, check_positive
from .models import load_model
from .scoring import CertaintyScorer
from .segments import Segmenter

__all__ = ["calibrate"]


def calibrate(model=None, *, tokens: int = 4000, documents: int = 6, k: int = 3, record: bool = True,
              path: str | os.PathLike | None = None) -> Calibration:
    """Score ``documents`` demo documents (``tokens`` long each, in the reader's 512-token
    segments, the fact at a different depth in each) with every candidate dtype, one document at
    a time in turn, so that drift hits all alike. Throughput is the tokens of all documents over
    the time each dtype took; agreement is the share of documents whose ``k`` best segments are
    float32's; recall is the share whose fact is among the ``k`` best. The rule of
    :func:`entropy_retriever.cpu_dtype.choose` picks; with ``record``, the choice is saved for ``auto``."""
    for name, value in (("tokens", tokens), ("documents", documents), ("k", k)):
        check_positive(name, value)
    dtypes = ["float32", "int8"] + (["bfloat16"] if native_bf16() else [])  # emulated bfloat16 is never chosen
    loaded = {name: load_model(model, device="cpu", dtype=name) for name in dtypes}
    tokenizer = loaded["float32"].tokenizer
    scorers = {name: CertaintyScorer(m.model, m.tokenizer, progress=False) for name, m in loaded.items()}
    window = scorers["float32"].window
    size = min(512, window // 2) if window else 512  # the reader's default segments, or half a smaller window
    docs = []
    for i in range(documents):
        doc = make_demo_document(tokenizer, tokens, (i + 0.5) / documents)
        segments = list(Segmenter(tokenizer, size).split(doc.text))
        if len(segments) <= k:
            raise InputError(f"tokens={tokens} gives {len(segments)} segments of {size} tokens, and calibrate compares "
                             f"the {k} best: give more than {(k + 1) * size} tokens")
        docs.append((doc.question, segments, next(j for j, s in enumerate(segments) if FACT in s.text)))
    for scorer in scorers.values():
        scorer.score(docs[0][1][:1], docs[0][0])  # warm-up
    seconds = dict.fromkeys(scorers, 0.0)
    best: dict[str, list[set[int]]] = {name: [] for name in scorers}
    for n, (question, segments, _) in enumerate(docs):
        order = list(scorers) if n % 2 == 0 else list(reversed(scorers))  # neither dtype always goes first
        for name in order:
            started = time.perf_counter()
            scores = scorers[name].score(segments, question)
            seconds[name] += time.perf_counter() - started
            best[name].append(set(sorted(range(len(scores)), key=lambda i: (scores[i], i))[:k]))
    n_tokens = sum(s.n_tokens for _, segments, _ in docs for s in segments)
    measured = {
        name: Measured(
            tokens_per_second=round(n_tokens / seconds[name], 1),
            agreement=sum(a == b for a, b in zip(best[name], best["float32"])) / len(docs),
            recall=sum(fact in kept for kept, (_, _, fact) in zip(best[name], docs)) / len(docs),
        )
        for name in scorers
    }
    choice, why = choose(this_cpu()["native_bf16"], measured)
    result = Calibration(this_cpu(), str(model or "the embedded model"), n_tokens,
                         sum(len(segments) for _, segments, _ in docs), k, len(docs),
                         {name: asdict(m) for name, m in measured.items()}, choice, why)
    if record:
        target = record_path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(asdict(result), indent=1) + "\n", encoding="utf-8")
    return result
