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
    p.add_argument("--memory-repeats", type=int, default=1, help="runs per input size; the lowest peak counts (memory)")
    p.add_argument("--mmap-threshold", type=int, default=64 * 1024,
                   help="glibc's mmap threshold in the measured processes, in bytes (memory; 0: glibc's own, growing one)")
    p.add_argument("--resume-tokens", type=int, default=1_000_000, help="input size of the resume check (tiny model)")
    p.add_argument("--resume-real-tokens", type=int, default=50_000, help="input size of the resume check (real model)")
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


def cli(args: list[str], env: dict | None = None, timeout: float = 7200):
    """Run ``python -m entropy_retriever ARGS`` alone; (its JSON output, seconds, peak RSS in bytes, and the
    highest RSS seen between two windows of segments: right after each window, once its buffers are
    freed and handed back by ``release_memory``, what the process holds then)."""
    code = ("import resource, runpy, sys\n"
            "import entropy_retriever.reader as reader\n"
            "between = [0]\n"
            "real = reader.release_memory\n"
            "def measured():\n"
            "    real()\n"
            "    rss = next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmRSS')) * 1024\n"
            "    between[0] = max(between[0], rss)\n"
            "reader.release_memory = measured\n"
            "sys.argv = ['entropy_retriever', *sys.argv[1:]]\n"
            "try:\n    runpy.run_module('entropy_retriever', run_name='__main__')\n"
            "finally:\n    print('PEAK_RSS', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, between[0], file=sys.stderr)")
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=timeout,
                         env={**os.environ, **(env or {})})
    seconds = time.perf_counter() - started
    if out.returncode != 0:
        raise SystemExit(f"entropy_retriever {' '.join(args)} failed:\n{out.stderr[-3000:]}")
    _, peak, held = next(line.split() for line in out.stderr.splitlines() if line.startswith("PEAK_RSS"))
    return json.loads(out.stdout), seconds, int(peak), int(held)


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
    lines = ["| input | segments | peak RSS of select (each run) | lowest peak, over the smallest input's "
             "| RSS between windows, highest, over the smallest input's | text added "
             "| holding the segments instead adds | seconds |", "|---|---|---|---|---|---|---|---|"]
    base = None
    mb = 2 ** 20
    for n in args.sizes:
        path = work / f"text-{n}.txt"
        write_text(path, n, seed=n)
        size = path.stat().st_size
        peaks, betweens, times = [], [], []
        for _ in range(args.memory_repeats):
            pinned = {"MALLOC_MMAP_THRESHOLD_": str(args.mmap_threshold)} if args.mmap_threshold else {}
            result, seconds, peak, between = cli(select_args(path, tiny), env=pinned)
            peaks.append(peak)
            betweens.append(between)
            times.append(seconds)
        # The old way, for contrast: hold every segment (what the reader kept before it streamed).
        code = ("import sys; from pathlib import Path; from transformers import AutoTokenizer; "
                "from entropy_retriever.segments import Segmenter\n"
                "def rss():\n    return next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmRSS')) * 1024\n"
                f"t = AutoTokenizer.from_pretrained({str(tiny)!r}); before = rss(); held = list(Segmenter(t, 512).split(Path({str(path)!r})))\n"
                "print(rss() - before)")
        held = int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()[-1])
        row = {"tokens": n, "segments": result["meta"]["n_segments"], "context_tokens": result["meta"]["context_tokens"],
               "bytes": size, "peak_rss": min(peaks), "peak_rss_runs": peaks, "between_windows_rss": min(betweens),
               "between_windows_rss_runs": betweens, "held_segments_rss": held, "seconds": round(min(times), 1),
               "record_bytes": result["meta"]["record_bytes"]}
        base = base or row
        rows.append({"part": "memory", **row})
        print(json.dumps(rows[-1]), flush=True)
        lines.append(f"| {row['context_tokens'] / 1e6:.1f}M tokens ({size / mb:.0f} MB) | {row['segments']:,} "
                     f"| {', '.join(f'{p / mb:.0f}' for p in peaks)} MB | {(row['peak_rss'] - base['peak_rss']) / mb:+.1f} MB "
                     f"| {(row['between_windows_rss'] - base['between_windows_rss']) / mb:+.1f} MB "
                     f"| +{(size - base['bytes']) / mb:.0f} MB | {held / mb:.0f} MB | {row['seconds']:.0f} |")
        path.unlink()
    last = rows[-1]
    added = max(1, last["bytes"] - base["bytes"])
    peak_ratio = (last["peak_rss"] - base["peak_rss"]) / added
    between_ratio = (last["between_windows_rss"] - base["between_windows_rss"]) / added
    lines.append("")
    allocator = (f"glibc's mmap threshold set to {args.mmap_threshold:,} bytes (`MALLOC_MMAP_THRESHOLD_`)" if args.mmap_threshold
                 else "glibc's default allocator settings")
    lines.append(
        f"From the smallest to the largest input (the target: at most 0.1 of the text added): peak RSS rose by "
        f"**{peak_ratio:.3f}** of the text added, the RSS between windows by **{between_ratio:.3f}**; the records "
        f"themselves took {last['record_bytes'] / mb:.1f} MB at the largest. The measured processes ran with {allocator}. "
        "Why: the peak is the RSS between windows plus what one batch's forward pass allocates and frees (logits over "
        "the 49k-word vocabulary, attention buffers; some 35 MB for up to 4,096 tokens, bounded by the batch, not the "
        "input). With glibc's default, growing mmap threshold those buffers come from the heap after the first few "
        "batches, and how much of the heap is held at the worst moment varies from run to run by up to 40 MB on one and "
        "the same input (460-501 MB for one 1M-token input), more than the increment to be shown. With a 64 KiB "
        "threshold every such buffer is mapped and handed back when freed, and the same input's peak is the same in "
        "every run (443 MB three times for a 250k-token input, where the default gave 474-485 MB). "
        "The RSS between windows is read right after each window's buffers are handed back. The column before last "
        "is what holding every Segment in memory would add to a process's RSS: more than the "
        "text itself.")
    return lines


def resume_once(path: Path, model, work: Path, extra: tuple[str, ...]) -> dict:
    """A whole run, then the same run with a journal killed (SIGTERM) once about half of its
    segments are journaled (the first window at or past 45%), then that command again."""
    whole, full_s, *_ = cli(select_args(path, model, *extra))
    journal = work / f"resume-{path.stem}.jsonl"
    run = select_args(path, model, *extra, "--checkpoint", str(journal))
    total = whole["meta"]["n_segments"]

    def scored() -> int:
        if not journal.exists():
            return 0
        lines = journal.read_text().split("\n")[1:-1]  # complete lines after the header
        return sum(len(json.loads(line)["i"]) for line in lines)

    process = subprocess.Popen([sys.executable, "-m", "entropy_retriever", *run], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while process.poll() is None and scored() < 0.45 * total:
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)  # unwinds like Ctrl-C: the journal is closed after its last window
    process.wait(timeout=1200)
    scored_before = scored()
    resumed, resume_s, *_ = cli(run)
    return {"full_seconds": full_s, "resume_seconds": resume_s, "segments": total, "tokens": whole["meta"]["context_tokens"],
            "scored_before_kill": scored_before, "identical": summary(resumed) == summary(whole), "killed_rc": process.returncode}


def part_resume(args, work: Path, tiny: Path, rows: list) -> list[str]:
    lines = ["| model, input | uninterrupted | killed (SIGTERM) with ... journaled | resumed from the journal | resumed / uninterrupted | identical scores and spans |",
             "|---|---|---|---|---|---|"]
    runs = [("the embedded model", args.model, args.resume_real_tokens, ("--segment-tokens", "128")),
            ("the tiny random Llama", tiny, args.resume_tokens, ())]
    for label, model, tokens, extra in runs:
        path = work / f"resume-{tokens}.txt"
        write_text(path, tokens, seed=1)
        row = resume_once(path, model, work, extra)
        rows.append({"part": "resume", "model": label, **row})
        print(json.dumps(rows[-1]), flush=True)
        lines.append(f"| {label}, {row['tokens']:,} tokens in {row['segments']:,} segments | {row['full_seconds']:.1f} s "
                     f"| {row['scored_before_kill']:,} segments ({row['scored_before_kill'] / row['segments']:.0%}; exit {row['killed_rc']}) "
                     f"| {row['resume_seconds']:.1f} s | **{row['resume_seconds'] / row['full_seconds']:.2f}** | **{row['identical']}** |")
    lines += ["", "A resumed run skips the scoring of what its journal holds, but still starts Python, loads the model, and "
              "reads and tokenises the whole input again (to find the same segments and check their digests). With a real "
              "model, scoring is nearly all of the work and the resumed part takes about the remaining share of the time; "
              "with the tiny model, which scores some 40k tokens a second, start-up and tokenising are a large part of "
              "every run, so the resumed run takes more than half."]
    return lines


def part_shard(args, work: Path, rows: list) -> list[str]:
    path = work / "shard.txt"
    write_text(path, args.shard_tokens, seed=2)
    cores = os.cpu_count() or 1
    # One process on one core: what each rank has when 2 share this machine (the sharding's own scaling).
    single, single_s, *_ = cli(select_args(path, args.model, signals=False), env={"OMP_NUM_THREADS": "1"})
    one, one_s, *_ = cli(select_args(path, args.model, signals=False), env={"OMP_NUM_THREADS": str(cores)})
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or "torchrun"
    started = time.perf_counter()
    out = subprocess.run([torchrun, "--nproc-per-node", "2", "--master-port", "29571", "-m", "entropy_retriever",
                          *select_args(path, args.model, signals=False)], capture_output=True, text=True, timeout=7200)
    two_s = time.perf_counter() - started
    if out.returncode != 0:
        raise SystemExit(f"torchrun failed:\n{out.stderr[-3000:]}")
    two = json.loads(out.stdout)
    same_spans = summary(two)["spans"] == summary(one)["spans"] == summary(single)["spans"]
    worst = max(abs(a - b) for a, b in zip(summary(two)["scores"], summary(one)["scores"]))
    rows.append({"part": "shard", "one_rank_one_thread_seconds": single_s, "one_rank_seconds": one_s, "two_ranks_seconds": two_s,
                 "segments": one["meta"]["n_segments"], "tokens": one["meta"]["context_tokens"], "same_spans": same_spans,
                 "max_score_difference": worst, "cores": cores})
    print(json.dumps(rows[-1]), flush=True)
    per_rank = max(1, cores // 2)
    return ["| processes | seconds (wall, model load included) | 2 ranks' speed-up over it |", "|---|---|---|",
            f"| 1, on 1 core (what each of 2 ranks gets here) | {single_s:.1f} | **{single_s / two_s:.2f}** |",
            f"| 1, on all {cores} cores (torch's threads) | {one_s:.1f} | **{one_s / two_s:.2f}** |",
            f"| 2 gloo ranks under torchrun ({per_rank} core{'s' if per_rank > 1 else ''} each) | {two_s:.1f} | 1.00 |",
            "", f"{one['meta']['context_tokens']:,} tokens, {one['meta']['n_segments']} segments, the real model; same spans in "
                f"all three runs: **{same_spans}**, largest certainty difference {worst:.1e}. One process's threads already "
                f"gain {single_s / one_s:.2f}x from {cores} cores, and 2 ranks {single_s / two_s:.2f}x, so over the threaded "
                f"process the ranks gain only the ratio of the two, {one_s / two_s:.2f}x; sharding pays where each rank has "
                "cores or a device of its own."]


def part_throughput(args, rows: list) -> list[str]:
    from entropy_retriever.calibrate import calibrate
    from entropy_retriever.cpu_dtype import MIN_SPEEDUP

    result = calibrate(args.model, tokens=args.throughput_tokens, record=False)  # what `entropy-retriever calibrate` runs
    tps = {"float32": result.float32_tokens_per_second, "bfloat16": result.bfloat16_tokens_per_second}
    rows.append({"part": "throughput", "tokens": result.tokens, "tokens_per_second": tps, "top3_agreement": result.agreement,
                 "cpu_capability": result.machine["capability"], "native_bf16": result.machine["native_bf16"],
                 "choice": result.choice, "why": result.why})
    print(json.dumps(rows[-1]), flush=True)
    return ["| dtype | scoring throughput | 20M tokens would take |", "|---|---|---|",
            *(f"| {d} | {v:,.0f} tokens/s | {20e6 / v / 3600:.1f} h |" for d, v in tps.items()),
            "", f"bfloat16 / float32 throughput: **{tps['bfloat16'] / tps['float32']:.2f}**; the {result.k} best segments agree "
                f"{result.agreement:.0%} ({result.tokens:,} tokens, {result.segments} segments; CPU capability "
                f"{result.machine['capability']}, native bfloat16: {'yes' if result.machine['native_bf16'] else 'no'}). "
                f"The rule (bfloat16 only if native, at least {MIN_SPEEDUP}x faster and the same selection) chooses "
                f"**{result.choice}** here: {result.why}."]


PARTS = {
    "memory": "**Memory** (a 2-layer random Llama, signals certainty + BM25, top 4 of 512-token segments)",
    "resume": "**Resume** (the real model, certainty + BM25, 128-token segments; the tiny model, certainty + BM25)",
    "shard": "**Sharding** (the real model, the default signals)",
    "throughput": "**CPU throughput** (the real model)",
}


def run(args) -> None:
    """Run the parts asked for; parts run earlier (in ``bench-results/scale.json``) keep their numbers,
    each under the command and date that measured it, so that parts can be run alone, one at a time."""
    from benchmarks.common import RESULTS, environment

    earlier: dict = {}
    saved = RESULTS / "scale.json"
    if saved.is_file():
        earlier = json.loads(saved.read_text()).get("parts", {})
    stamp = f"`python -m benchmarks {' '.join(sys.argv[1:])}` ({environment()['date']})"
    rows: list = []
    done: dict = {}
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        work = Path(tmp)
        tiny = tiny_model(work / "tiny") if {"memory", "resume"} & set(args.parts) else None
        for name in PARTS:
            if name not in args.parts:
                continue
            first = len(rows)
            if name == "memory":
                lines = part_memory(args, work, tiny, rows)
            elif name == "resume":
                lines = part_resume(args, work, tiny, rows)
            elif name == "shard":
                lines = part_shard(args, work, rows)
            else:
                lines = part_throughput(args, rows)
            done[name] = {"measured_by": stamp, "lines": lines, "rows": rows[first:]}
    parts = {name: done.get(name) or earlier.get(name) for name in PARTS if done.get(name) or earlier.get(name)}
    table = []
    for name, part in parts.items():
        table += [PARTS[name], "", f"Measured by {part['measured_by']}.", "", *part["lines"], ""]
    all_rows = [row for part in parts.values() for row in part["rows"]]
    save("scale", vars(args), all_rows, "\n".join(table).strip(), extra={"parts": parts})
