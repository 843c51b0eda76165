"""One command for a CUDA GPU: correctness of every backend there, speed and memory of the
policies against SDPA (and flash-attn when installed) on a Llama-2-7B-shaped random model in
bf16, and the scorer's throughput; ``--tiny`` runs the same code on CPU with a tiny model.

Every number is measured in this one run, methods interleaved, so ratios are side by side.
"""

from __future__ import annotations

import json
import math
import statistics
import time

import torch

from entropy_retriever.attention import LMInfinite, SelfExtend, extend_context
from entropy_retriever.attention.backends import BACKENDS
from entropy_retriever.attention.engine import TwoBranchEngine
from entropy_retriever.attention.flex import FlexEngine, attend_flex, flex_available

LLAMA2_7B = dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
                 num_key_value_heads=32, max_position_embeddings=4096, rope_theta=10000.0)
TINY = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=256, rope_theta=10000.0)


def sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


# ----------------------------------------------------------------------------- correctness
def _oracle(q, k, v, scale, mask, causal):
    scores = torch.matmul(q.double(), k.double().transpose(-1, -2)) * scale
    lq, lk = scores.shape[-2:]
    allowed = torch.ones(lq, lk, dtype=torch.bool).tril() if causal else torch.ones(lq, lk, dtype=torch.bool)
    if mask is not None:
        allowed = allowed & mask
    scores = scores.masked_fill(~allowed.expand(scores.shape), float("-inf"))
    lse = torch.logsumexp(scores, dim=-1)
    probs = torch.softmax(scores, dim=-1).nan_to_num(0.0)
    return torch.matmul(probs, v.double()), lse


def correctness(device: torch.device) -> list[dict]:
    """Each backend that runs on ``device`` against a float64 oracle: worst output and lse error."""
    kernels = {"math": BACKENDS["math"]}
    if device.type == "cuda":
        kernels["cuda"] = BACKENDS["cuda"]
    if device.type == "cpu":
        kernels["cpu_flash"] = BACKENDS["cpu_flash"]
    if flex_available():
        kernels["flex"] = attend_flex
    shapes = [(1, 4, 1, 300, 64), (2, 4, 37, 37, 128), (1, 8, 130, 257, 64)]
    rows = []
    old_tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        for name, kernel in kernels.items():
            worst_out = worst_lse = 0.0
            for n, (b, h, lq, lk, d) in enumerate(shapes):
                for masked, causal in [(False, False), (True, False), (False, True), (True, True)]:
                    g = torch.Generator().manual_seed(n * 4 + 2 * masked + causal)
                    q, k, v = (torch.randn(b, h, m, d, generator=g) for m in (lq, lk, lk))
                    mask = (torch.rand(lq, lk, generator=g) < 0.6) if masked else None
                    want_out, want_lse = _oracle(q, k, v, d ** -0.5, mask, causal)
                    out, lse = kernel(q.to(device), k.to(device), v.to(device), d ** -0.5,
                                      mask=None if mask is None else mask.to(device), causal=causal)
                    finite = torch.isfinite(want_lse)
                    worst_out = max(worst_out, (out.double().cpu() - want_out).abs().max().item())
                    worst_lse = max(worst_lse, (lse.double().cpu() - want_lse)[finite].abs().max().item())
            rows.append({"check": f"kernel {name}", "max_out_error": worst_out, "max_lse_error": worst_lse,
                         "ok": worst_out < 2e-3 and worst_lse < 2e-3})
        if flex_available():  # the flex engine against the two-branch engine, on a padded, grouped layout
            g = torch.Generator().manual_seed(7)
            b, h, hkv, lq, lk, d = 2, 8, 2, 9, 300, 64
            q, k, v = torch.randn(b, h, lq, d, generator=g), torch.randn(b, hkv, lk, d, generator=g), torch.randn(b, hkv, lk, d, generator=g)
            kpos = torch.arange(lk).unsqueeze(0).repeat(b, 1)
            kpos[1] -= 20
            qpos, valid = kpos[:, -lq:], kpos >= 0
            inv_freq = 1.0 / (10000 ** (torch.arange(0, d, 2).float() / d))
            for policy in (SelfExtend(group_size=4, window=64), LMInfinite(n_local=64, n_global=4)):
                args = [t.to(device) for t in (q, k, v, qpos, kpos, valid)] + [d ** -0.5, inv_freq.to(device)]
                want = TwoBranchEngine(policy, BACKENDS["math"])(*args).cpu()
                got = FlexEngine(policy)(*args).cpu()
                error = (got - want).abs().max().item()
                rows.append({"check": f"flex engine, {type(policy).__name__}", "max_out_error": error, "max_lse_error": None, "ok": error < 2e-3})
    finally:
        torch.backends.cuda.matmul.allow_tf32 = old_tf32
    return rows


# ---------------------------------------------------------------------------------- speed
def build_model(shape: dict, vocab: int, device, dtype):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=vocab, attn_implementation="sdpa", **shape)
    torch.manual_seed(0)
    with torch.device(device):
        model = LlamaForCausalLM(config).to(dtype)
    return model.eval()


def _prefill(model, ids):
    with torch.inference_mode():
        model(input_ids=ids, use_cache=False, logits_to_keep=1)


def _decode_step_seconds(model, ids, steps: int) -> float:
    """Seconds per generated token: one generate with ``steps + 1`` new tokens less one with 1."""
    def gen(n):
        sync(model.device)
        started = time.perf_counter()
        with torch.inference_mode():
            model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, min_new_tokens=n,
                           do_sample=False, pad_token_id=0)
        sync(model.device)
        return time.perf_counter() - started

    return max(0.0, gen(steps + 1) - gen(1)) / steps


def _peak(device, fn) -> float | None:
    if device.type != "cuda":
        return None
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    fn()
    return torch.cuda.max_memory_allocated() / 2**30


def speed(model, lengths, repeats: int, decode_steps: int) -> list[dict]:
    """Prefill and decode of plain SDPA, SelfExtend and LM-Infinite (each on the two-branch engine
    and on flex), side by side; absolute seconds, ratios to SDPA, peak GPU memory."""
    device = model.device
    window = model.config.max_position_embeddings
    methods = {"sdpa": (None, None)}
    try:
        import flash_attn  # noqa: F401

        methods["flash-attn"] = ("flash_attention_2", None)
    except ImportError:
        pass
    rows = []
    for n in lengths:
        group = max(1, math.ceil((n - window // 4) / (window - window // 4)))
        policies = {"selfextend": SelfExtend(group_size=group, window=min(1024, window // 4)),
                    "lminfinite": LMInfinite(n_local=window, n_global=64)}
        runs = dict(methods)
        for pname, policy in policies.items():
            runs[f"{pname}/auto"] = (policy, "auto")
            if flex_available():
                runs[f"{pname}/flex"] = (policy, "flex")
        ids = torch.randint(3, model.config.vocab_size, (1, n), device=device)

        def under(spec, fn):
            what, backend = spec
            if what == "flash_attention_2":
                previous = model.config._attn_implementation
                model.set_attn_implementation("flash_attention_2")
                try:
                    return fn()
                finally:
                    model.set_attn_implementation(previous)
            if what is None:
                return fn()
            with extend_context(model, what, backend=backend):
                return fn()

        for spec in runs.values():  # warm-up (compilation of flex on CUDA happens here)
            under(spec, lambda: _prefill(model, ids[:, : min(n, 512)]))
        samples = {name: [] for name in runs}
        for _ in range(repeats):  # interleaved
            for name, spec in runs.items():
                sync(device)
                started = time.perf_counter()
                under(spec, lambda: _prefill(model, ids))
                sync(device)
                samples[name].append(time.perf_counter() - started)
        for name, spec in runs.items():
            prefill = statistics.median(samples[name])
            decode = under(spec, lambda: _decode_step_seconds(model, ids, decode_steps))
            peak = _peak(device, lambda: under(spec, lambda: _prefill(model, ids)))
            rows.append({"tokens": n, "method": name, "prefill_s": prefill, "decode_s_per_token": decode, "peak_gib": peak})
        base = next(r for r in rows if r["tokens"] == n and r["method"] == "sdpa")
        for r in rows:
            if r["tokens"] == n:
                r["prefill_ratio"] = r["prefill_s"] / base["prefill_s"]
                r["decode_ratio"] = (r["decode_s_per_token"] / base["decode_s_per_token"]) if base["decode_s_per_token"] else None
    return rows


def scoring_throughput(model, tokenizer, total_tokens: int, segment_tokens: int, batch_tokens: int) -> dict:
    from entropy_retriever.scoring import CertaintyScorer

    scorer = CertaintyScorer(model, tokenizer, batch_tokens=batch_tokens, max_batch_size=64)
    g = torch.Generator().manual_seed(0)
    n = max(1, total_tokens // segment_tokens)
    words = tokenizer.convert_ids_to_tokens(list(range(1000, 1000 + 4000)))
    texts = [tokenizer.convert_tokens_to_string([words[int(i)] for i in torch.randint(0, len(words), (segment_tokens,), generator=g)])
             for _ in range(n)]
    scorer.score(texts[:2], "What is the pass key?")  # warm-up
    sync(model.device)
    started = time.perf_counter()
    scorer.score(texts, "What is the pass key?")
    sync(model.device)
    seconds = time.perf_counter() - started
    scored = sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts)
    rate = scored / seconds
    return {"tokens": scored, "seconds": seconds, "tokens_per_s": rate,
            "projected_20M_hours_1_device": 20e6 / rate / 3600, "projected_20M_hours_8_devices": 20e6 / rate / 3600 / 8}


# ---------------------------------------------------------------------------------- report
def table(device_name: str, checks: list, rows: list, throughput: dict) -> str:
    lines = [f"Device: {device_name}", "", "| check | max output error | max lse error | ok |", "|---|---|---|---|"]
    for c in checks:
        lse = "-" if c["max_lse_error"] is None else f"{c['max_lse_error']:.1e}"
        lines.append(f"| {c['check']} | {c['max_out_error']:.1e} | {lse} | {'yes' if c['ok'] else '**NO**'} |")
    lines += ["", "| tokens | method | prefill | ratio to SDPA | decode / token | ratio to SDPA | peak memory |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        peak = "-" if r["peak_gib"] is None else f"{r['peak_gib']:.1f} GiB"
        decode_ratio = "-" if r.get("decode_ratio") is None else f"{r['decode_ratio']:.2f}"
        lines.append(f"| {r['tokens']:,} | {r['method']} | {r['prefill_s']:.3f} s | {r['prefill_ratio']:.2f} | "
                     f"{r['decode_s_per_token'] * 1e3:.1f} ms | {decode_ratio} | {peak} |")
    t = throughput
    lines += ["", f"Scoring throughput: {t['tokens_per_s']:,.0f} tokens/s ({t['tokens']:,} tokens in {t['seconds']:.1f} s); "
              f"20M tokens: {t['projected_20M_hours_1_device']:.1f} h on one device, {t['projected_20M_hours_8_devices']:.2f} h on eight."]
    return "\n".join(lines)


def choose_backend(rows: list) -> dict:
    """flex or the efficient SDPA kernel for backend="auto" on this GPU: the faster by prefill,
    summed over both policies and every length measured."""
    totals = {"flex": 0.0, "cuda": 0.0}
    for r in rows:
        if r["method"].endswith("/flex"):
            totals["flex"] += r["prefill_s"]
        elif r["method"].endswith("/auto"):
            totals["cuda"] += r["prefill_s"]
    if not totals["flex"]:
        return {"backend": "cuda", "prefill_seconds": totals}
    return {"backend": min(totals, key=totals.get), "prefill_seconds": totals}


def save_choice(device_name: str, choice: dict, path) -> None:
    data = json.loads(path.read_text()) if path.is_file() else {}
    data[device_name] = choice
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1))
