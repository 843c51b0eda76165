"""Ascend NPU: the ``npu`` backend and the policies on an NPU, against the oracles.

This module runs only where ``torch_npu`` is installed and an NPU is visible; everywhere else
it is skipped as a whole (and says why). On a machine with the hardware, one command verifies
the Ascend path:

    .venv/bin/python -m pytest tests/test_ascend.py -v

The ``npu`` backend has not run on Ascend hardware: it is written against
torch_npu's documented ``npu_fusion_attention`` and has never run (docs/hardware.md, "What was and was
not run").
"""

from __future__ import annotations

import importlib.util

import pytest
import torch

from .test_attention import FAMILIES, POLICIES, build, ids, oracle_logits
from .test_backends import MASKS, SHAPES, make_mask, oracle


def _npu_present() -> bool:
    if importlib.util.find_spec("torch_npu") is None:
        return False
    import torch_npu  # noqa: F401  (registers the npu device)

    return bool(torch.npu.is_available())


pytestmark = pytest.mark.skipif(not _npu_present(), reason="no Ascend NPU here (torch_npu is not installed, or sees no NPU)")


@pytest.mark.parametrize("shape_index", range(len(SHAPES)))
@pytest.mark.parametrize("mask_kind", MASKS)
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_npu_kernel_equals_the_oracle(shape_index, mask_kind, causal, dtype):
    from entropy_retriever.attention.backends import attend_npu

    b, h, lq, lk, d = SHAPES[shape_index]
    gen = torch.Generator().manual_seed(shape_index * 31 + MASKS.index(mask_kind) * 7 + causal)
    q, k, v = (torch.randn(b, h, n, d, generator=gen) for n in (lq, lk, lk))
    mask = make_mask(mask_kind, b, lq, lk, gen)
    want_out, want_lse = oracle(q, k, v, d ** -0.5, mask, causal)
    out, lse = attend_npu(q.to("npu", dtype), k.to("npu", dtype), v.to("npu", dtype), d ** -0.5,
                          mask=None if mask is None else mask.to("npu"), causal=causal)
    out, lse = out.cpu().double(), lse.cpu().double()
    finite = torch.isfinite(want_lse)
    assert torch.equal(finite, torch.isfinite(lse))  # rows with no key: -inf
    torch.testing.assert_close(out, want_out, rtol=0, atol=2e-2)
    torch.testing.assert_close(lse[finite], want_lse[finite], rtol=0, atol=2e-2)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("policy", POLICIES)
def test_policies_on_the_npu_equal_the_oracle(family, policy):
    """A tiny model of each family on the NPU, in float32, under each policy (backend "auto",
    which is "npu" there), against the CPU oracle."""
    from entropy_retriever.attention import extend_context

    model = build(family)
    x = ids(1, 40)
    expected = oracle_logits(model, policy, x)
    model.to("npu")
    with torch.no_grad(), extend_context(model, policy):
        got = model(x.to("npu")).logits.cpu()
    torch.testing.assert_close(got, expected, rtol=0, atol=5e-3)
