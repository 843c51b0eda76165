"""Every partial-attention backend against one oracle, on one shared grid of shapes and masks.

The oracle is the definition, in float64: softmax over the allowed keys, its output and its
log-sum-exp; a row with no key has lse = -inf and output 0. Backends whose device is absent
(CUDA, Ascend) are skipped, and say so.
"""

from __future__ import annotations

import importlib.util
import itertools

import pytest
import torch

from entropy_retriever.attention.backends import BACKENDS as KERNELS
from entropy_retriever.attention.flex import attend_flex, flex_available

# Every kernel, and flex_attention (eager on CPU: the same masks a GPU compiles).
BACKENDS = {**KERNELS, "flex": attend_flex}
DEVICES = {"math": "cpu", "cpu_flash": "cpu", "cuda": "cuda", "npu": "npu", "flex": "cpu"}


def available(name: str) -> bool:
    if name == "flex" and not flex_available():
        return False
    device = DEVICES[name]
    if device == "cuda":
        return torch.cuda.is_available()
    if device == "npu":
        return importlib.util.find_spec("torch_npu") is not None and torch.npu.is_available()
    return True


def oracle(q, k, v, scale, mask, causal):
    scores = torch.matmul(q.double(), k.double().transpose(-1, -2)) * scale
    lq, lk = scores.shape[-2:]
    allowed = torch.ones(lq, lk, dtype=torch.bool)
    if causal:
        allowed = allowed.tril()
    if mask is not None:
        allowed = allowed & mask
    allowed = allowed.expand(scores.shape)
    scores = scores.masked_fill(~allowed, float("-inf"))
    lse = torch.logsumexp(scores, dim=-1)
    probs = torch.where(allowed, torch.exp(scores - lse.unsqueeze(-1).clamp(min=-1e300)), torch.zeros(()).double())
    out = torch.matmul(probs.nan_to_num(0.0), v.double())
    return out, lse


# (B, H, Lq, Lk, D): square and rectangular, one query (decode), a head size that is not a power of two.
SHAPES = [(1, 1, 1, 7, 16), (2, 3, 5, 5, 32), (1, 2, 9, 33, 64), (2, 1, 16, 16, 48)]
MASKS = ["none", "random", "empty_rows", "per_batch"]


def make_mask(kind, b, lq, lk, gen):
    if kind == "none":
        return None
    if kind == "random":
        return torch.rand(lq, lk, generator=gen) < 0.6
    if kind == "empty_rows":
        mask = torch.rand(lq, lk, generator=gen) < 0.7
        mask[0] = False  # a query that attends nothing
        return mask
    return (torch.rand(b, 1, lq, lk, generator=gen) < 0.5)  # a mask per batch row


GRID = list(itertools.product(sorted(BACKENDS), range(len(SHAPES)), MASKS, [False, True]))


@pytest.mark.parametrize("backend, shape_index, mask_kind, causal", GRID)
def test_backend_equals_the_oracle(backend, shape_index, mask_kind, causal):
    if not available(backend):
        pytest.skip(f"no {DEVICES[backend]} device here: the {backend!r} backend is not run")
    b, h, lq, lk, d = SHAPES[shape_index]
    gen = torch.Generator().manual_seed(shape_index * 31 + MASKS.index(mask_kind) * 7 + causal)
    q, k, v = (torch.randn(b, h, n, d, generator=gen) for n in (lq, lk, lk))
    mask = make_mask(mask_kind, b, lq, lk, gen)
    scale = d ** -0.5
    want_out, want_lse = oracle(q, k, v, scale, mask, causal)
    device = DEVICES[backend]
    out, lse = BACKENDS[backend](q.to(device), k.to(device), v.to(device), scale,
                                 mask=None if mask is None else mask.to(device), causal=causal)
    out, lse = out.cpu().double(), lse.cpu().double()
    assert out.shape == (b, h, lq, d) and lse.shape == (b, h, lq)
    empty = torch.isinf(want_lse)
    assert torch.equal(torch.isinf(lse) & (lse < 0), empty)  # exactly the rows with no key are -inf
    assert torch.all(out[empty] == 0)
    assert torch.allclose(lse[~empty], want_lse[~empty], atol=1e-4, rtol=1e-5)
    assert torch.allclose(out, want_out, atol=1e-4, rtol=1e-4)


def test_the_grid_has_rows_with_no_key_and_every_backend():
    """The grid is not vacuous: it holds empty rows, causal rectangles, and all five backends (flex included)."""
    assert sorted({g[0] for g in GRID}) == ["cpu_flash", "cuda", "flex", "math", "npu"]
    gen = torch.Generator().manual_seed(0)
    assert not make_mask("empty_rows", 1, 5, 5, gen)[0].any()
    assert any(SHAPES[i][2] != SHAPES[i][3] for i in range(len(SHAPES)))
