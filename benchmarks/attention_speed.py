"""Speed and memory of the two-branch engine against plain SDPA, one attention layer.

Shapes are SmolLM2-135M's (9 query heads, 3 key/value heads, head dim 64, RoPE theta 1e5) unless
told otherwise. Methods run interleaved and ratios are taken within one run, so that machine
drift hits both sides alike. Peak memory is measured in a fresh subprocess per point (the
growth of the process's maximum resident set over its resident set before the call).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

from entropy_retriever.attention.backends import backend_for
from entropy_retriever.attention.engine import TwoBranchEngine
from entropy_retriever.attention.policies import LMInfinite, SelfExtend
from entropy_retriever.attention.rope import rotate

SHAPES = {"smollm2": dict(heads=9, kv_heads=3, head_dim=64, theta=1e5), "llama2-7b": dict(heads=32, kv_heads=32, head_dim=128, theta=1e4)}


def make_inputs(n_q: int, n_k: int, shape: dict, dtype=torch.float32, device="cpu", seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(1, shape["heads"], n_q, shape["head_dim"], generator=g).to(device, dtype)
    k = torch.randn(1, shape["kv_heads"], n_k, shape["head_dim"], generator=g).to(device, dtype)
    v = torch.randn(1, shape["kv_heads"], n_k, shape["head_dim"], generator=g).to(device, dtype)
    inv_freq = 1.0 / (shape["theta"] ** (torch.arange(0, shape["head_dim"], 2, dtype=torch.float32) / shape["head_dim"]))
    return q, k, v, inv_freq.to(device)


def plain(q, k, v):
    """transformers' SDPA path: GQA via enable_gqa, causal when prefilling."""
    return F.scaled_dot_product_attention(q, k, v, is_causal=q.shape[2] > 1, enable_gqa=True)


def ours(policy, q, k, v, inv_freq, far_keys=None):
    lq, lk = q.shape[2], k.shape[2]
    qpos = torch.arange(lk - lq, lk, device=q.device).unsqueeze(0)
    kpos = torch.arange(lk, device=q.device).unsqueeze(0)
    engine = TwoBranchEngine(policy, backend_for(q.device))
    return engine(q, k, v, qpos, kpos, None, q.shape[-1] ** -0.5, inv_freq, far_keys)


def grouped_keys(policy, k, inv_freq):
    """What a GroupedKeyCache holds: every key rotated once to its far position."""
    slots = torch.arange(k.shape[2]).unsqueeze(0)
    return rotate(k, policy.far_key_pos(slots) - slots, inv_freq)


def ours_decode_grouped(policy, q, k, v, inv_freq, far_keys):
    """One decoding step with a GroupedKeyCache: rotate the newest key, then attend."""
    n = k.shape[2]
    newest = torch.tensor([[n - 1]])
    rotate(k[:, :, -1:], policy.far_key_pos(newest) - newest, inv_freq)
    return ours(policy, q, k, v, inv_freq, far_keys)


def timed(fn, *args, repeats=3):
    times = []
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        started = time.perf_counter()
        with torch.inference_mode():
            fn(*args)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    return times


def side_by_side(fns: dict, repeats: int) -> dict:
    samples = {name: [] for name in fns}
    for _ in range(repeats):  # interleaved
        for name, (fn, args) in fns.items():
            samples[name] += timed(fn, *args, repeats=1)
    return {name: statistics.median(v) for name, v in samples.items()}


def peak_memory_mb(method: str, n: int, shape: str, policy: str) -> float:
    """Run one prefill in a fresh process; return how far its peak RSS rose above the RSS before it, in MB."""
    code = f"""
import torch, json
from benchmarks.attention_speed import make_inputs, plain, ours, SHAPES
from entropy_retriever.attention.policies import SelfExtend, LMInfinite
q, k, v, f = make_inputs({n}, {n}, SHAPES[{shape!r}])
def status(field):
    return next(int(line.split()[1]) for line in open('/proc/self/status') if line.startswith(field))
open('/proc/self/clear_refs', 'w').write('5')  # reset the peak (VmHWM) to the current RSS
base = status('VmRSS:')
with torch.inference_mode():
    out = plain(q, k, v) if {method!r} == 'plain' else ours({policy}, q, k, v, f)
print(json.dumps((status('VmHWM:') - base) / 1024))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def run(lengths=(8192, 16384), lmi_length=32768, shape="smollm2", repeats=3, device="cpu", dtype=torch.float32) -> tuple[list, str]:
    spec = SHAPES[shape]
    se = SelfExtend(group_size=4, window=1024)
    lmi_variants = [LMInfinite(n_local=8192, n_global=64), LMInfinite(n_local=4096, n_global=64)]
    rows, lines = [], ["| measure | plain SDPA | ours | ratio (ours / plain) |", "|---|---|---|---|"]
    for n in lengths:
        q, k, v, f = make_inputs(n, n, spec, dtype, device)
        med = side_by_side({"plain": (plain, (q, k, v)), "selfextend": (lambda *a: ours(se, *a), (q, k, v, f))}, repeats)
        rows.append({"measure": "prefill", "n": n, **med})
        lines.append(f"| SelfExtend(4, 1024) prefill, {n:,} tokens | {med['plain']:.2f} s | {med['selfextend']:.2f} s | **{med['selfextend'] / med['plain']:.2f}** |")
    n = lengths[-1]
    q, k, v, f = make_inputs(1, n, spec, dtype, device)
    far = grouped_keys(se, k, f)
    med = side_by_side({
        "plain": (plain, (q, k, v)),
        "selfextend": (lambda *a: ours_decode_grouped(se, *a), (q, k, v, f, far)),
        "selfextend_dynamic_cache": (lambda *a: ours(se, *a), (q, k, v, f)),
    }, repeats * 10)
    rows.append({"measure": "decode", "n": n, **med})
    lines.append(f"| SelfExtend one-token decode at a {n:,} cache (GroupedKeyCache, what LongContextLM uses) | {med['plain'] * 1e3:.2f} ms | {med['selfextend'] * 1e3:.2f} ms | **{med['selfextend'] / med['plain']:.2f}** |")
    lines.append(f"| the same with transformers' DynamicCache (all far keys re-rotated each step) | {med['plain'] * 1e3:.2f} ms | {med['selfextend_dynamic_cache'] * 1e3:.2f} ms | **{med['selfextend_dynamic_cache'] / med['plain']:.2f}** |")
    q, k, v, f = make_inputs(lmi_length, lmi_length, spec, dtype, device)
    fns = {"plain": (plain, (q, k, v))}
    for p in lmi_variants:
        fns[f"lminfinite_{p.n_local}"] = ((lambda pol: lambda *a: ours(pol, *a))(p), (q, k, v, f))
    med = side_by_side(fns, repeats)
    rows.append({"measure": "lminfinite_prefill", "n": lmi_length, **med})
    for p in lmi_variants:
        t = med[f"lminfinite_{p.n_local}"]
        lines.append(f"| LMInfinite(n_local={p.n_local}, n_global=64) prefill, {lmi_length:,} tokens | {med['plain']:.2f} s | {t:.2f} s | **{t / med['plain']:.2f}** ({med['plain'] / t:.2f}x faster) |")
    if device == "cpu":
        mem = {}
        for n in lengths:
            mem[n] = {"plain": peak_memory_mb("plain", n, shape, "None"), "selfextend": peak_memory_mb("ours", n, shape, "SelfExtend(4, 1024)")}
        rows.append({"measure": "peak_memory_mb", **{str(n): m for n, m in mem.items()}})
        a, b = lengths[0], lengths[-1]
        for name in ("plain", "selfextend"):
            lines.append(f"| peak memory growth {a:,} -> {b:,} tokens, {name} | {mem[a][name]:.0f} MB | {mem[b][name]:.0f} MB | **{mem[b][name] / mem[a][name]:.2f}x** |")
    return rows, "\n".join(lines)
