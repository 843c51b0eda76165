"""Scale: peak memory of select at growing input sizes, resume after a kill, sharding over gloo
ranks, and CPU scoring throughput in float32 against bfloat16.

Every measurement runs the command line in a fresh process (``python -m entropy_retriever`` or
``torchrun``), so peak RSS and timings are those of a real run, side by side in one suite.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import save

HELP = "select at 1M-16M tokens (peak RSS), resume after a kill, 2 gloo ranks vs 1, float32 vs bfloat16"

WORDS = ("harbour lamp keeper ledger storm gull rail tide night oil wick glass north south cargo ship "
         "anchor rope bell fog signal beacon shore rock wave current wind sail mast deck crew").split()


def add_arguments(p) -> None:
    p.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 4_000_000, 16_000_000], help="input sizes in tokens (memory)")
    p.add_argument("--resume-tokens", type=int, default=1_000_000, help="input size of the resume check (tiny model)")
    p.add_argument("--shard-tokens", type=int, default=50_000, help="input size of the sharding check (real model)")
    p.add_argument("--throughput-tokens", type=int, default=4_000, help="tokens scored per dtype (real model)")
    p.add_argument("--parts", nargs="+", default=["memory", "resume", "shard", "throughput"],
                   choices=["memory", "resume", "shard", "throughput"])
    p.add_argument("--model", default=None, help="the real model (default: the embedded one)")


def write_text(path: Path, n_tokens: int, seed: int = 0) -> None:
    """About ``n_tokens`` tokens of varied sentences (SmolLM2's tokenizer: about 3.3 characters a token here)."""
    rng = random.Random(seed)
    written = 0
    target_chars = int(n_tokens * 3.3)
    with open(path, "w", encoding="utf-8") as handle:
        while written < target_chars:
            sentence = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 18))).capitalize()
            line = f"{sentence} at {rng.randint(1, 23)} o'clock on day {rng.randint(1, 9999)}.\n"
            if rng.random() < 0.1:
                line += "\n"
            handle.write(line)
            written += len(line)


def tiny_model(folder: Path) -> Path:
    """A small randomly initialised Llama with SmolLM2's tokenizer, fast enough to stream millions of tokens."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from entropy_retriever.models import embedded_model_path

    tokenizer = AutoTokenizer.from_pretrained(embedded_model_path())
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def cli(args: list[str], env: dict | None = None, timeout: float = 7200) -> tuple[dict, float, int]:
    """Run ``python -m entropy_retriever ARGS`` alone; (its JSON output, seconds, peak RSS in bytes)."""
    code = ("import resource, runpy, sys; sys.argv = ['entropy_retriever', *sys.argv[1:]]\n"
            "try:\n    runpy.run_module('entropy_retriever', run_name='__main__')\n"
            "finally:\n    print('PEAK_RSS', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, file=sys.stderr)")
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=timeout,
                         env={**os.environ, **(env or {})})
    seconds = time.perf_counter() - started
    if out.returncode != 0:
        raise SystemExit(f"entropy_retriever {' '.join(args)} failed:\n{out.stderr[-3000:]}")
    peak = int(next(line.split()[1] for line in out.stderr.splitlines() if line.startswith("PEAK_RSS")))
    return json.loads(out.stdout), seconds, peak


def select_args(path: Path, model: Path | str | None, *extra: str, signals: bool = True) -> list[str]:
    """The select command; ``signals=False`` keeps the default signals (torchrun takes ``--signals`` for its own)."""
    chosen = ["--signals", "certainty", "bm25"] if signals else []
    args = ["select", str(path), "When was the beacon lit on day 77?", "--top-k", "4", *chosen,
            "--json", "--no-progress", "--device", "cpu", *extra]
    return args + (["--model", str(model)] if model else [])


def summary(result: dict) -> dict:
    return {"spans": [(s["start"], s["end"]) for s in result["spans"]],
            "scores": [s["signals"].get("certainty") for s in result["segments"]]}


def part_memory(args, work: Path, tiny: Path, rows: list) -> list[str]:
    lines = ["| input | segments | peak RSS of select | over the smallest | text added | holding the segments instead adds | seconds |", "|---|---|---|---|---|---|---|"]
    base_rss = base_bytes = None
    for n in args.sizes:
        path = work / f"text-{n}.txt"
        write_text(path, n, seed=n)
        size = path.stat().st_size
        result, seconds, peak = cli(select_args(path, tiny))
        # The old way, for contrast: hold every segment (what the reader kept before it streamed).
        code = ("import sys; from pathlib import Path; from transformers import AutoTokenizer; "
                "from entropy_retriever.segments import Segmenter\n"
                "def rss():\n    return next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmRSS')) * 1024\n"
                f"t = AutoTokenizer.from_pretrained({str(tiny)!r}); before = rss(); held = list(Segmenter(t, 512).split(Path({str(path)!r})))\n"
                "print(rss() - before)")
        held = int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()[-1])
        if base_rss is None:
            base_rss, base_bytes = peak, size
        row = {"tokens": n, "segments": result["meta"]["n_segments"], "context_tokens": result["meta"]["context_tokens"],
               "bytes": size, "peak_rss": peak, "held_segments_rss": held, "seconds": round(seconds, 1),
               "record_bytes": result["meta"]["record_bytes"]}
        rows.append({"part": "memory", **row})
        print(json.dumps(rows[-1]), flush=True)
        mb = 2 ** 20
        lines.append(f"| {row['context_tokens'] / 1e6:.1f}M tokens ({size / mb:.0f} MB) | {row['segments']:,} | {peak / mb:.0f} MB "
                     f"| +{(peak - base_rss) / mb:.1f} MB | +{(size - base_bytes) / mb:.0f} MB | {held / mb:.0f} MB "
                     f"| {seconds:.0f} |")
        path.unlink()
    last = rows[-1]
    ratio = (last["peak_rss"] - base_rss) / max(1, last["bytes"] - base_bytes)
    lines.append("")
    lines.append(f"From the smallest to the largest input, peak RSS rose by **{ratio:.3f}** of the text added "
                 "(the target: at most 0.1). The last column is what holding every Segment (as the reader did before it "
                 "streamed) adds to a process's RSS: more than the text itself.")
    return lines


def part_resume(args, work: Path, tiny: Path, rows: list) -> list[str]:
    path = work / "resume.txt"
    write_text(path, args.resume_tokens, seed=1)
    whole, full_s, _ = cli(select_args(path, tiny))
    journal = work / "resume.jsonl"
    run = select_args(path, tiny, "--checkpoint", str(journal))
    total = whole["meta"]["n_segments"]

    def scored() -> int:
        if not journal.exists():
            return 0
        lines = journal.read_text().split("\n")[1:-1]  # complete lines after the header
        return sum(len(json.loads(line)["i"]) for line in lines)

    process = subprocess.Popen([sys.executable, "-m", "entropy_retriever", *run], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while process.poll() is None and scored() < total // 2:
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)  # unwinds like Ctrl-C: the journal is closed after its last window
    process.wait(timeout=600)
    scored_before = scored()
    resumed, resume_s, _ = cli(run)
    same = summary(resumed) == summary(whole)
    rows.append({"part": "resume", "full_seconds": full_s, "resume_seconds": resume_s, "segments": whole["meta"]["n_segments"],
                 "scored_before_kill": scored_before, "identical": same, "killed_rc": process.returncode})
    print(json.dumps(rows[-1]), flush=True)
    return ["| run | seconds | segments scored |", "|---|---|---|",
            f"| uninterrupted | {full_s:.1f} | {whole['meta']['n_segments']:,} |",
            f"| killed once half the segments were journaled (SIGTERM, exit {process.returncode}) | - | {scored_before:,} in the journal |",
            f"| resumed from the journal | {resume_s:.1f} ({resume_s / full_s:.2f} of the full run) | the rest |",
            "", f"Resumed scores and spans identical to the uninterrupted run: **{same}**."]


def part_shard(args, work: Path, rows: list) -> list[str]:
    path = work / "shard.txt"
    write_text(path, args.shard_tokens, seed=2)
    one, one_s, _ = cli(select_args(path, args.model, signals=False), env={"OMP_NUM_THREADS": str(os.cpu_count() or 1)})
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or "torchrun"
    started = time.perf_counter()
    out = subprocess.run([torchrun, "--nproc-per-node", "2", "--master-port", "29571", "-m", "entropy_retriever",
                          *select_args(path, args.model, signals=False)], capture_output=True, text=True, timeout=7200)
    two_s = time.perf_counter() - started
    if out.returncode != 0:
        raise SystemExit(f"torchrun failed:\n{out.stderr[-3000:]}")
    two = json.loads(out.stdout)
    same_spans = summary(two)["spans"] == summary(one)["spans"]
    worst = max(abs(a - b) for a, b in zip(summary(two)["scores"], summary(one)["scores"]))
    rows.append({"part": "shard", "one_rank_seconds": one_s, "two_ranks_seconds": two_s, "segments": one["meta"]["n_segments"],
                 "tokens": one["meta"]["context_tokens"], "same_spans": same_spans, "max_score_difference": worst})
    print(json.dumps(rows[-1]), flush=True)
    return ["| processes | seconds (wall, model load included) | speed-up |", "|---|---|---|",
            f"| 1 (all {os.cpu_count()} cores) | {one_s:.1f} | 1.00 |",
            f"| 2 gloo ranks under torchrun ({max(1, (os.cpu_count() or 1) // 2)} core each) | {two_s:.1f} | **{one_s / two_s:.2f}** |",
            "", f"{one['meta']['context_tokens']:,} tokens, {one['meta']['n_segments']} segments, the real model; same spans: "
                f"**{same_spans}**, largest certainty difference {worst:.1e}."]


def part_throughput(args, rows: list) -> list[str]:
    import torch

    from entropy_retriever import load_model
    from entropy_retriever.demo import make_demo_document
    from entropy_retriever.scoring import CertaintyScorer
    from entropy_retriever.segments import Segmenter

    results = {}
    tokenizer = load_model(args.model).tokenizer
    doc = make_demo_document(tokenizer, args.throughput_tokens, 0.5)
    segments = list(Segmenter(tokenizer, 512).split(doc.text))
    n_tokens = sum(s.n_tokens for s in segments)
    scorers = {}
    for dtype in ("float32", "bfloat16"):
        model, tok = load_model(args.model, device="cpu", dtype=dtype)
        scorers[dtype] = CertaintyScorer(model, tok, progress=False)
        scorers[dtype].score(segments[:1], doc.question)  # warm-up
    samples: dict = {d: [] for d in scorers}
    scores = {}
    for _ in range(2):  # interleaved, so that drift hits both alike
        for dtype, scorer in scorers.items():
            started = time.perf_counter()
            scores[dtype] = scorer.score(segments, doc.question)
            samples[dtype].append(time.perf_counter() - started)
    for dtype in scorers:
        results[dtype] = n_tokens / statistics.median(samples[dtype])
    k = 3
    top = {d: set(sorted(range(len(s)), key=lambda i: (s[i], i))[:k]) for d, s in scores.items()}
    agreement = len(top["float32"] & top["bfloat16"]) / k
    rows.append({"part": "throughput", "tokens": n_tokens, "tokens_per_second": results, "top3_agreement": agreement,
                 "cpu_capability": torch.backends.cpu.get_cpu_capability()})
    print(json.dumps(rows[-1]), flush=True)
    return ["| dtype | scoring throughput | 20M tokens would take |", "|---|---|---|",
            *(f"| {d} | {v:,.0f} tokens/s | {20e6 / v / 3600:.1f} h |" for d, v in results.items()),
            "", f"bfloat16 / float32 throughput: **{results['bfloat16'] / results['float32']:.2f}**; the 3 best segments agree "
                f"{agreement:.0%} ({n_tokens:,} tokens, {len(segments)} segments; CPU capability {torch.backends.cpu.get_cpu_capability()})."]


def run(args) -> None:
    rows: list = []
    parts: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        work = Path(tmp)
        tiny = tiny_model(work / "tiny") if {"memory", "resume"} & set(args.parts) else None
        if "memory" in args.parts:
            parts += ["**Memory** (a 2-layer random Llama, signals certainty + BM25, top 4 of 512-token segments)", "", *part_memory(args, work, tiny, rows), ""]
        if "resume" in args.parts:
            parts += ["**Resume** (the same tiny model)", "", *part_resume(args, work, tiny, rows), ""]
        if "shard" in args.parts:
            parts += ["**Sharding** (the real model, the default signals)", "", *part_shard(args, work, rows), ""]
        if "throughput" in args.parts:
            parts += ["**CPU throughput** (the real model)", "", *part_throughput(args, rows), ""]
    save("scale", vars(args), rows, "\n".join(parts).strip())
