"""The two-branch attention on ``torch.nn.attention.flex_attention``.

Each branch is one flex call whose block mask comes straight from the policy's predicates
(attention-gym style): ``mask_mod(b, h, q, k)`` looks up the query's and the key's positions
and asks ``policy.near`` or ``policy.far``, with causality and key validity (padding) folded
in. No length x length mask is ever materialised by us; ``create_block_mask`` evaluates the
predicates block by block and skips the blocks a branch never reads. The branch's log-sum-exp
comes from flex's auxiliary output, and the two branches merge exactly as in ``engine``.

On CUDA the flex kernel is compiled (``torch.compile``), which is what makes it fast. On CPU
it runs eagerly, unfused (it builds the full score matrix): correct, and used by the tests to
verify on machines without a GPU the very masks a GPU runs, but not a speed path.
"""

from __future__ import annotations

import functools
import warnings
from typing import Callable

import torch

from .engine import merge
from .rope import rotate

__all__ = ["FlexEngine", "attend_flex", "flex_available"]


def flex_available() -> bool:
    """Whether this torch has flex_attention with auxiliary outputs (torch >= 2.9)."""
    try:
        from torch.nn.attention.flex_attention import AuxRequest, create_block_mask, flex_attention  # noqa: F401  (local: a probe)
    except ImportError:
        return False
    return True


@functools.lru_cache(maxsize=None)
def _kernel(device_type: str) -> Callable:
    """flex_attention: compiled on CUDA, eager elsewhere."""
    from torch.nn.attention.flex_attention import flex_attention  # local: absent before torch 2.5 (see flex_available)

    if device_type == "cuda":
        return torch.compile(flex_attention)  # shapes that change (decode) become dynamic on recompiling
    return flex_attention


def _flex(q, k, v, scale: float, mask_mod, lq: int, lk: int, batch: int):
    """One flex call: (out float32, lse float32 natural log; -inf and 0 for rows with no key)."""
    from torch.nn.attention.flex_attention import AuxRequest, create_block_mask  # local: AuxRequest needs torch >= 2.9

    block_mask = create_block_mask(mask_mod, batch, None, lq, lk, device=q.device)
    with warnings.catch_warnings():
        # On CPU flex runs unfused, on purpose (verification, not speed): not worth a warning.
        warnings.filterwarnings("ignore", message=".*flex_attention.*without torch.compile.*")
        warnings.filterwarnings("ignore", message=".*unfused implementation.*")
        out, aux = _kernel(q.device.type)(
            q, k, v, block_mask=block_mask, scale=scale, enable_gqa=q.shape[1] != k.shape[1],
            return_aux=AuxRequest(lse=True),
        )
    lse = aux.lse.float()
    empty = ~torch.isfinite(lse)
    return out.float().masked_fill(empty.unsqueeze(-1), 0.0), lse.masked_fill(empty, float("-inf"))


def attend_flex(q, k, v, scale: float, mask=None, causal: bool = False):
    """The partial-attention backend interface (``backends``) on flex, for an explicit bool mask.

    The engine's own flex path (:class:`FlexEngine`) never needs this materialised mask; this
    form exists so that the flex kernel is held against the same oracle grid as every backend.
    """
    b, _, lq, d = q.shape
    lk = k.shape[2]
    full = None
    if mask is not None:
        full = mask.expand(mask.shape[0], 1, lq, lk)[:, 0]  # (B or 1, Lq, Lk)
    one_row = full is not None and full.shape[0] == 1

    def mask_mod(bi, hi, qi, kj):
        allowed = qi >= kj if causal else qi >= 0
        if full is not None:
            allowed = allowed & full[0 if one_row else bi, qi, kj]
        return allowed

    return _flex(q, k, v, scale, mask_mod, lq, lk, b)


class FlexEngine:
    """The two-branch attention of ``policy`` as two flex calls with predicate block masks.

    Same call as :class:`~entropy_retriever.attention.engine.TwoBranchEngine`, same result.
    """

    def __init__(self, policy) -> None:
        self.policy = policy

    def __call__(self, q, k, v, qpos, kpos, valid, scale, inv_freq, far_keys=None) -> torch.Tensor:
        """Arguments and result as ``TwoBranchEngine.__call__``: q (B, H, Lq, D) and k, v
        (B, Hkv, Lk, D) rotated at their positions qpos (B, Lq) and kpos (B, Lk); valid (B, Lk) or
        None; far_keys, if given, k already at far_key_pos. Returns (B, H, Lq, D) float32."""
        b, _, lq, _ = q.shape
        lk = k.shape[2]
        policy = self.policy
        qpos, kpos = qpos.expand(b, lq).contiguous(), kpos.expand(b, lk).contiguous()
        valid = None if valid is None else valid.expand(b, lk).contiguous()

        def masked(predicate):
            def mask_mod(bi, hi, qi, kj):
                i, j = qpos[bi, qi], kpos[bi, kj]
                allowed = (i >= j) & predicate(i, j)
                return allowed & valid[bi, kj] if valid is not None else allowed

            return mask_mod

        near_out, near_lse = _flex(q, k, v, scale, masked(policy.near), lq, lk, b)
        q_far = rotate(q, policy.far_query_pos(qpos) - qpos, inv_freq)
        k_far = far_keys if far_keys is not None else rotate(k, policy.far_key_pos(kpos) - kpos, inv_freq)
        far_out, far_lse = _flex(q_far, k_far, v, scale, masked(policy.far), lq, lk, b)
        out, _ = merge(near_out, near_lse, far_out, far_lse)
        return out
