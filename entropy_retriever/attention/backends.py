"""Partial attention with its log-sum-exp, per device.

``attend(q, k, v, scale, mask=None, causal=False) -> (out, lse)``
  q: (B, H, Lq, D), k and v: (B, H, Lk, D), the same head count (the engine passes the query
  heads of one grouped-query slot at a time, so keys are never expanded);
  mask: bool, True = attend, broadcastable to (B, 1, Lq, Lk); causal: top-left aligned;
  out: (B, H, Lq, D) float32; lse: (B, H, Lq) float32, -inf where a row attends nothing
  (such a row's ``out`` is 0).

Two partial attentions over disjoint key sets merge exactly by their log-sum-exps; that is
how the engine joins the near and far branches without building a length x length matrix.
"""

from __future__ import annotations

import importlib.util
from typing import Callable, Optional, Tuple

import torch

from ..errors import InputError

Attend = Callable[..., Tuple[torch.Tensor, torch.Tensor]]


def _empty_rows(mask: Optional[torch.Tensor], lq: int, lk: int, causal: bool = False) -> Optional[torch.Tensor]:
    """Rows with no key at all (under the mask and, if causal, the top-left triangle), shaped
    (B or 1, 1, Lq); None if there are none."""
    if mask is None:
        return None if lk > 0 else torch.ones(1, 1, lq, dtype=torch.bool)
    if causal:
        mask = mask & torch.ones(lq, lk, dtype=torch.bool, device=mask.device).tril()
    empty = ~mask.any(-1)  # (B, 1, Lq)
    return empty if bool(empty.any()) else None


def _additive(mask: Optional[torch.Tensor], dtype: torch.dtype) -> Optional[torch.Tensor]:
    """A bool mask (True = attend) as the additive bias fused kernels take (0 or -inf)."""
    if mask is None:
        return None
    return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill_(~mask, float("-inf"))


def _finish(out: torch.Tensor, lse: torch.Tensor, empty: Optional[torch.Tensor]):
    out, lse = out.float(), lse.float()
    if empty is not None:
        lse = lse.masked_fill(empty, float("-inf"))
        out = out.masked_fill(empty.unsqueeze(-1), 0.0)
    return out, lse


def attend_math(q, k, v, scale: float, mask=None, causal: bool = False):
    """Explicit logits in float32 (any device); the caller keeps blocks small."""
    scores = torch.matmul(q.float(), k.float().transpose(-1, -2)) * scale  # (B, H, Lq, Lk)
    if causal:
        lq, lk = scores.shape[-2:]
        tri = torch.ones(lq, lk, dtype=torch.bool, device=q.device).tril()
        mask = tri if mask is None else mask & tri
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    lse = torch.logsumexp(scores, dim=-1)  # (B, H, Lq)
    safe = torch.where(torch.isfinite(lse), lse, torch.zeros_like(lse))
    probs = torch.exp(scores - safe.unsqueeze(-1))
    out = torch.matmul(probs, v.float())
    empty = ~torch.isfinite(lse)
    return out.masked_fill(empty.unsqueeze(-1), 0.0), lse


def attend_cpu_flash(q, k, v, scale: float, mask=None, causal: bool = False):
    """PyTorch's fused CPU flash kernel, which returns the log-sum-exp beside the output."""
    out, lse = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
        q, k, v, 0.0, causal, attn_mask=_additive(mask, q.dtype), scale=scale
    )
    # The kernel reports lse = 0 and out = 0 for a row with no key; mark such rows ourselves.
    return _finish(out, lse, _empty_rows(mask, q.shape[-2], k.shape[-2], causal))


def attend_cuda_efficient(q, k, v, scale: float, mask=None, causal: bool = False):
    """The memory-efficient CUDA kernel of SDPA, asked for its log-sum-exp."""
    bias = _additive(mask, q.dtype)
    if bias is not None:
        bias = bias.expand(q.shape[0], q.shape[1], q.shape[2], k.shape[2])
    out, lse, _, _ = torch.ops.aten._scaled_dot_product_efficient_attention(
        q, k, v, bias, True, 0.0, causal, scale=scale
    )
    lse = lse[..., : q.shape[-2]]  # the kernel pads the lse to a multiple of 32
    return _finish(out, lse, _empty_rows(mask, q.shape[-2], k.shape[-2], causal))


def attend_npu(q, k, v, scale: float, mask=None, causal: bool = False):
    """Ascend: torch_npu.npu_fusion_attention, whose softmax statistics give the lse.

    Written against the documented API (input_layout "BNSD", atten_mask True = masked out,
    sparse_mode 0 with an explicit mask, the causal triangle included; softmax_max and
    softmax_sum of shape (B, N, S, 8)); not yet run on hardware.
    """
    import torch_npu  # local: Ascend only; absent everywhere else

    atten_mask = None if mask is None else (~mask).expand(q.shape[0], 1, q.shape[2], k.shape[2])
    if causal:
        tri = torch.ones(q.shape[2], k.shape[2], dtype=torch.bool, device=q.device).triu(1)
        atten_mask = tri if atten_mask is None else atten_mask | tri
    out, softmax_max, softmax_sum, *_ = torch_npu.npu_fusion_attention(
        q, k, v, q.shape[1], "BNSD", atten_mask=atten_mask, scale=scale, keep_prob=1.0, sparse_mode=0,
    )
    lse = softmax_max[..., 0].float() + torch.log(softmax_sum[..., 0].float())
    return _finish(out, lse, _empty_rows(mask, q.shape[-2], k.shape[-2], causal))


BACKENDS: dict[str, Attend] = {
    "math": attend_math,
    "cpu_flash": attend_cpu_flash,
    "cuda": attend_cuda_efficient,
    "npu": attend_npu,
}


def backend_for(device: torch.device, requested: str = "auto") -> Attend:
    if requested != "auto":
        if requested not in BACKENDS:
            raise InputError(f"unknown attention backend {requested!r}: choose 'auto', 'flex' or one of {sorted(BACKENDS)}")
        return BACKENDS[requested]
    if device.type == "cpu":
        return attend_cpu_flash
    if device.type == "cuda":
        return attend_cuda_efficient
    if device.type == "npu" and importlib.util.find_spec("torch_npu") is not None:
        return attend_npu
    return attend_math
