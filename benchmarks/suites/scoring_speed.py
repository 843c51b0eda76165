"""CertaintyScorer against plain batched forward passes over the same rows, linear scaling, and
each scoring dtype (float32, int8) side by side with a roofline: the achieved GFLOP/s (from the
model's FLOPs per token, counted by torch's FLOP counter on the same rows) against the peak this
CPU reaches on a large matrix product of the same dtype, measured in the same run."""

from __future__ import annotations

import statistics
import time

import torch

from benchmarks.common import progress, save
from entropy_retriever import load_model
from entropy_retriever.quantize import quantize_int8
from entropy_retriever.scoring import CertaintyScorer

HELP = "scorer vs plain forward; linear scaling; float32 vs int8 with a roofline"


def add_arguments(p) -> None:
    p.add_argument("--tokens", type=int, default=8000, help="N; the scaling check also scores 2N")
    p.add_argument("--segment-tokens", type=int, default=512)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--model", default=None)
    p.add_argument("--dtypes", nargs="+", default=["float32", "int8"], choices=["float32", "int8"])


def plain_forward(model, rows, pad_id):
    """Plain batched forward over the same left-padded rows: full logits, no slicing."""
    length = max(len(r) for r in rows)
    ids = torch.full((len(rows), length), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for b, r in enumerate(rows):
        ids[b, length - len(r):] = torch.tensor(r)
        mask[b, length - len(r):] = 1
    with torch.inference_mode():
        model(input_ids=ids.to(model.device), attention_mask=mask.to(model.device), use_cache=False)


def run(args) -> None:
    from entropy_retriever.demo import make_demo_document
    from entropy_retriever.segments import Segmenter

    model, tokenizer = load_model(args.model, dtype="float32")
    scorer = CertaintyScorer(model, tokenizer, metric="question_nll", progress=False)
    doc = make_demo_document(tokenizer, 2 * args.tokens + 2000, 0.5)
    segments = list(Segmenter(tokenizer, args.segment_tokens).split(doc.text))
    question = doc.question
    q_ids = scorer.encode_question(question)

    def take(n_tokens):
        chosen, total = [], 0
        for s in segments:
            if total >= n_tokens:
                break
            chosen.append(s)
            total += s.n_tokens
        return chosen

    half, full = take(args.tokens), take(2 * args.tokens)
    scorer.score(half[:2], question)  # warm-up

    def time_scorer(segs):
        started = time.perf_counter()
        scorer.score(segs, question)
        return time.perf_counter() - started

    def time_plain(segs):
        rows = [scorer.encode_segment(s.text, len(q_ids)) + q_ids for s in segs]
        started = time.perf_counter()
        for batch in scorer.batch_plan([len(r) - len(q_ids) for r in rows], len(q_ids)):
            plain_forward(model, [rows[i] for i in batch], scorer.pad_id)
        return time.perf_counter() - started

    samples = {"scorer_N": [], "plain_N": [], "scorer_2N": []}
    for _ in progress(range(args.repeats), desc="repeats"):  # interleaved, so drift hits all alike
        samples["plain_N"].append(time_plain(half))
        samples["scorer_N"].append(time_scorer(half))
        samples["scorer_2N"].append(time_scorer(full))
    med = {k: statistics.median(v) for k, v in samples.items()}
    n_half = sum(s.n_tokens + len(q_ids) for s in half)
    n_full = sum(s.n_tokens + len(q_ids) for s in full)
    throughput_ratio = (n_half / med["scorer_N"]) / (n_half / med["plain_N"])
    linear_ratio = med["scorer_2N"] / med["scorer_N"]
    tok_s = n_full / med["scorer_2N"]
    table = "\n".join([
        "| measure | value |", "|---|---|",
        f"| scorer throughput / plain forward throughput (same sub-contexts, {n_half:,} tokens) | **{throughput_ratio:.2f}** |",
        f"| time for 2N / time for N (N = {n_half:,}, 2N = {n_full:,} tokens) | **{linear_ratio:.2f}** (token ratio {n_full / n_half:.2f}) |",
        f"| scoring throughput | {tok_s:,.0f} tokens/s |",
        f"| projected time to score 20M tokens on this machine | {20e6 / tok_s / 3600:,.1f} h |",
    ])
    roofline, per_dtype = dtype_roofline(model, tokenizer, half, question, args.dtypes, args.repeats)
    table += "\n\n" + roofline
    save("scoring-speed", vars(args), [samples | {"tokens_N": n_half, "tokens_2N": n_full}], table,
         extra={"dtypes": per_dtype})


def flops_per_token(scorer, segments, question) -> float:
    """The scorer's FLOPs per token on these segments, counted by torch's FLOP counter on its own
    forward passes. torch counts attention's matrix products for its GPU kernels only; the CPU
    kernel is counted here with torch's own formula for them (the whole square, as torch counts)."""
    from torch.utils import flop_counter

    cpu_attention = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    if cpu_attention is not None and cpu_attention not in flop_counter.flop_registry:
        flop_counter.register_flop_formula(cpu_attention)(
            lambda q, k, v, *args, out_shape=None, **kwargs: flop_counter.sdpa_flop_count(q, k, v))
    counter = flop_counter.FlopCounterMode(display=False)
    with counter:
        scorer.score(segments, question)
    q_len = len(scorer.encode_question(question))
    return counter.get_total_flops() / sum(s.n_tokens + q_len for s in segments)


def peak_gflops(dtype: str, size: int = 2048, repeats: int = 5) -> float:
    """The best GFLOP/s of a large matrix product in this dtype: float32 ``mm``, or the int8
    dynamic Linear kernel the int8 scorer runs (activations quantized on the fly, int32 sums)."""
    x = torch.randn(size, size)
    if dtype == "int8":
        layer = quantize_int8(torch.nn.Sequential(torch.nn.Linear(size, size, bias=False)))
        run = lambda: layer(x)  # noqa: E731
    else:
        w = torch.randn(size, size)
        run = lambda: torch.mm(x, w)  # noqa: E731
    with torch.inference_mode():
        run()
        best = min(_seconds(run) for _ in range(repeats))
    return 2 * size ** 3 / best / 1e9


def _seconds(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def dtype_roofline(model, tokenizer, segments, question, dtypes, repeats) -> tuple[str, dict]:
    """Scoring throughput per dtype (interleaved), its GFLOP/s, the same dtype's matmul peak, the ratio."""
    scorers = {d: CertaintyScorer(quantize_int8(model) if d == "int8" else model, tokenizer, progress=False)
               for d in dtypes}
    q_ids = scorers[dtypes[0]].encode_question(question)
    per_token = flops_per_token(CertaintyScorer(model, tokenizer, progress=False), segments[:4], question)
    n_tokens = sum(s.n_tokens + len(q_ids) for s in segments)
    for scorer in scorers.values():
        scorer.score(segments[:2], question)  # warm-up
    seconds: dict[str, list[float]] = {d: [] for d in dtypes}
    peaks: dict[str, list[float]] = {d: [] for d in dtypes}
    for _ in progress(range(repeats), desc="dtypes"):  # interleaved, so that drift hits every dtype alike
        for d in dtypes:
            seconds[d].append(_seconds(lambda: scorers[d].score(segments, question)))
            peaks[d].append(peak_gflops(d))
    out = {}
    for d in dtypes:
        tps = n_tokens / statistics.median(seconds[d])
        achieved = tps * per_token / 1e9
        out[d] = {"tokens_per_second": tps, "gflops": achieved, "peak_gflops": max(peaks[d]),
                  "of_peak": achieved / max(peaks[d]), "seconds": seconds[d]}
    base = out[dtypes[0]]["tokens_per_second"]
    lines = [f"Scoring dtypes side by side ({n_tokens:,} tokens, {per_token / 1e6:.0f} MFLOP a token, counted; "
             f"{torch.get_num_threads()} threads)", "",
             "| dtype | tokens/s | vs float32 | achieved GFLOP/s | this CPU's peak, same dtype (2048³ matmul) | share of peak | 20M tokens |",
             "|---|---|---|---|---|---|---|"]
    for d, r in out.items():
        lines.append(f"| {d} | {r['tokens_per_second']:,.0f} | {r['tokens_per_second'] / base:.2f}x | {r['gflops']:.0f} | "
                     f"{r['peak_gflops']:.0f} | {r['of_peak']:.0%} | {20e6 / r['tokens_per_second'] / 3600:.1f} h |")
    return "\n".join(lines), out
