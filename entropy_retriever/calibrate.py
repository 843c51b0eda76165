"""``entropy-retriever calibrate``: measure float32 against bfloat16 scoring on this CPU, and record
the choice that ``dtype="auto"`` then reads (:mod:`entropy_retriever.cpu_dtype`, the low half)."""

from __future__ import annotations

import json
import os
import statistics
import time
from dataclasses import asdict

from .cpu_dtype import Calibration, choose, record_path, this_cpu
from .demo import make_demo_document
from .errors import InputError, check_positive
from .models import load_model
from .scoring import CertaintyScorer
from .segments import Segmenter

__all__ = ["calibrate"]


def calibrate(model=None, *, tokens: int = 4000, k: int = 3, repeats: int = 2, record: bool = True,
              path: str | os.PathLike | None = None) -> Calibration:
    """Score the demo document (``tokens`` long, in 512-token segments) in float32 and bfloat16,
    interleaved ``repeats`` times; apply the rule; with ``record``, save the choice for ``auto``."""
    check_positive("tokens", tokens)
    check_positive("k", k)
    check_positive("repeats", repeats)
    loaded = {name: load_model(model, device="cpu", dtype=name) for name in ("float32", "bfloat16")}
    tokenizer = loaded["float32"].tokenizer
    doc = make_demo_document(tokenizer, tokens, 0.5)
    scorers = {name: CertaintyScorer(m.model, m.tokenizer, progress=False) for name, m in loaded.items()}
    size = min(512, scorers["float32"].window // 2)  # the reader's default segments, or half a smaller window
    segments = list(Segmenter(tokenizer, size).split(doc.text))
    if len(segments) <= k:
        raise InputError(f"tokens={tokens} gives {len(segments)} segments of {size} tokens: give more than {k * size} tokens")
    n_tokens = sum(s.n_tokens for s in segments)
    for scorer in scorers.values():
        scorer.score(segments[:1], doc.question)  # warm-up
    seconds: dict[str, list[float]] = {name: [] for name in scorers}
    scores: dict[str, list[float]] = {}
    for _ in range(repeats):  # interleaved, so that drift hits both alike
        for name, scorer in scorers.items():
            started = time.perf_counter()
            scores[name] = scorer.score(segments, doc.question)
            seconds[name].append(time.perf_counter() - started)
    tps = {name: n_tokens / statistics.median(s) for name, s in seconds.items()}
    best = {name: set(sorted(range(len(s)), key=lambda i: (s[i], i))[:k]) for name, s in scores.items()}
    agreement = len(best["float32"] & best["bfloat16"]) / k
    machine = this_cpu()
    choice, why = choose(machine["native_bf16"], tps["float32"], tps["bfloat16"], agreement == 1.0)
    result = Calibration(machine, str(model or "the embedded model"), n_tokens, len(segments), k,
                         round(tps["float32"], 1), round(tps["bfloat16"], 1), agreement, choice, why)
    if record:
        target = record_path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(asdict(result), indent=1) + "\n", encoding="utf-8")
    return result
