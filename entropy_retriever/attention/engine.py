"""One two-branch attention engine for every policy.

For a query at position i and a key at position j (j <= i):
  near branch: keys where ``policy.near(i, j)``, read at their true positions;
  far branch:  keys where ``policy.far(i, j)``, query moved to ``far_query_pos(i)`` and key
               to ``far_key_pos(j)``.
The two key sets are disjoint, so one softmax over both equals the two partial attentions
merged by their log-sum-exps. q and k arrive already rotated at their true positions;
moving them is one more rotation by the difference (``rope.rotate``), in float32.

No length x length matrix is built: a prefill with contiguous positions runs the far branch
of SelfExtend as one causal kernel call on shifted slices and the near branch as a band of
query blocks; everything else (decode, chunked prefill, padding) runs query block by query
block, each block reading only the key columns its masks touch.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch

from .backends import Attend
from .rope import rotate

NEG_INF = float("-inf")


def merge(out_a, lse_a, out_b, lse_b):
    """Join two partial attentions over disjoint keys: (B, H, L, D), (B, H, L) each.

    The joint softmax weighs branch b by e^lse_b / (e^lse_a + e^lse_b) = sigmoid(lse_b - lse_a),
    so the merge is one fused lerp; an empty branch (lse = -inf) weighs nothing.
    """
    weight_b = torch.sigmoid(lse_b - lse_a).nan_to_num_(0.0)  # both empty: -inf - -inf = nan -> 0
    return torch.lerp(out_a, out_b, weight_b.unsqueeze(-1)), torch.logaddexp(lse_a, lse_b)


class TwoBranchEngine:
    """Computes a policy's attention with a given partial-attention backend.

    Keys and values keep their own (grouped-query) head count throughout: a far-branch
    rotation touches ``Hkv`` heads, not ``H``, and the kernel calls never copy them per
    query head (see ``attend``).
    """

    def __init__(self, policy, attend: Attend, band_block: int = 256, query_block: int = 512) -> None:
        self.policy = policy
        self.kernel = attend
        self.band_block = band_block  # queries per block of the prefill near band
        self.query_block = query_block  # queries per block of the general path (bounds its masks)

    def attend(self, q, k, v, scale, mask=None, causal=False):
        """Partial attention; grouped-query heads are folded into the query length when the
        mask is the same for every head and batch row, so that keys are never copied."""
        b, h, lq, d = q.shape
        hkv = k.shape[1]
        groups = h // hkv
        if groups == 1:
            return self.kernel(q, k, v, scale, mask=mask, causal=causal)
        if not causal and (mask is None or mask.dim() == 2):
            folded = q.reshape(b, hkv, groups * lq, d)  # (B, Hkv, groups * Lq, D)
            tiled = None if mask is None else mask.repeat(groups, 1)
            out, lse = self.kernel(folded, k, v, scale, mask=tiled)
            return out.reshape(b, h, lq, -1), lse.reshape(b, h, lq)
        # Causal or per-row masks: one call per query head of each group (heads g, g + groups,
        # ... share key heads 0, 1, ...), so keys and values are never expanded or copied.
        out = lse = None
        for g in range(groups):
            mask_g = mask[:, g::groups] if mask is not None and mask.dim() == 4 and mask.shape[1] == h else mask
            o, o_lse = self.kernel(q[:, g::groups], k, v, scale, mask=mask_g, causal=causal)
            if out is None:
                out = torch.empty((b, h, lq, o.shape[-1]), dtype=o.dtype, device=o.device)
                lse = torch.empty((b, h, lq), dtype=o_lse.dtype, device=o_lse.device)
            out[:, g::groups], lse[:, g::groups] = o, o_lse
        return out, lse

    # ----------------------------------------------------------------- entry point
    def __call__(
        self,
        q: torch.Tensor,  # (B, H, Lq, D), rotated at qpos
        k: torch.Tensor,  # (B, Hkv, Lk, D), rotated at kpos
        v: torch.Tensor,  # (B, Hkv, Lk, D)
        qpos: torch.Tensor,  # (B, Lq) int64
        kpos: torch.Tensor,  # (B, Lk) int64
        valid: Optional[torch.Tensor],  # (B, Lk) bool, None = every key is real
        scale: float,
        inv_freq: torch.Tensor,
        far_keys: Optional[torch.Tensor] = None,  # (B, Hkv, Lk, D): k already at far_key_pos(kpos)
    ) -> torch.Tensor:  # (B, H, Lq, D) float32
        lq, lk = q.shape[2], k.shape[2]
        contiguous = (
            valid is None
            and lq == lk
            and bool((qpos[:, 0] == 0).all())
            and bool((qpos == torch.arange(lq, device=qpos.device)).all())
        )
        if contiguous:
            return self._prefill(q, k, v, scale, inv_freq, far_keys)
        out = torch.empty(q.shape, dtype=torch.float32, device=q.device)
        for a in range(0, lq, self.query_block):
            b = min(a + self.query_block, lq)
            out[:, :, a:b] = self._general_block(q[:, :, a:b], k, v, qpos[:, a:b], kpos, valid, scale, inv_freq, far_keys)
        return out

    # ------------------------------------------------------ prefill at 0..N-1
    def _prefill(self, q, k, v, scale, inv_freq, far_keys=None):
        n = q.shape[2]
        out, lse = self._near_band(q, k, v, scale)
        shift = self.policy.far_is_causal_shift()
        pos = torch.arange(n, device=q.device).unsqueeze(0)  # (1, N)
        if shift is not None:
            if n <= shift:
                return out
            # Far keys of query i are exactly j <= i - W: a causal kernel on shifted slices.
            qi, kj = pos[:, shift:], pos[:, : n - shift]
            q_far = rotate(q[:, :, shift:], self.policy.far_query_pos(qi) - qi, inv_freq)
            if far_keys is not None:
                k_far = far_keys[:, :, : n - shift]
            else:
                k_far = rotate(k[:, :, : n - shift], self.policy.far_key_pos(kj) - kj, inv_freq)
            far_out, far_lse = self.attend(q_far, k_far, v[:, :, : n - shift], scale, causal=True)
        else:
            # Positions are slots here, so the far keys lie among the first far_key_bound slots.
            bound = self.policy.far_key_bound(n)
            far_out, far_lse = self._branch(
                q, k[:, :, :bound], v[:, :, :bound], pos, pos[:, :bound], None, scale,
                self.policy.far, inv_freq, rotate_far=True,
            )
            shift = 0
        # merge() in place: the joint log-sum-exp is not needed after a prefill
        weight = torch.sigmoid(far_lse - lse[:, :, shift:]).nan_to_num_(0.0)
        out[:, :, shift:].lerp_(far_out.to(out.dtype), weight.unsqueeze(-1))
        return out

    def _near_band(self, q, k, v, scale):
        """Causal attention within the policy's near window W, query block by query block.

        For the block [a, b) of at most ``block`` <= W queries, the keys split in three:
        [b - W, a) is visible to every query of the block (no mask), [a, b) is causal,
        and only the thin band [a - W + 1, b - W) needs an explicit mask.
        """
        n = q.shape[2]
        window = self.policy.near_window
        if window >= n:
            return self.attend(q, k, v, scale, causal=True)
        out = torch.empty(q.shape, dtype=torch.float32, device=q.device)
        lse = torch.empty(q.shape[:3], dtype=torch.float32, device=q.device)
        block = min(self.band_block, window)
        for a in range(0, n, block):
            b = min(a + block, n)
            qb = q[:, :, a:b]
            part_out, part_lse = self.attend(qb, k[:, :, a:b], v[:, :, a:b], scale, causal=True)
            full_lo = max(0, b - window)
            if full_lo < a:
                o, o_lse = self.attend(qb, k[:, :, full_lo:a], v[:, :, full_lo:a], scale)
                part_out, part_lse = merge(part_out, part_lse, o, o_lse)
            band_lo = max(0, a - window + 1)
            if band_lo < full_lo:
                i = torch.arange(a, b, device=q.device).unsqueeze(1)
                j = torch.arange(band_lo, full_lo, device=q.device).unsqueeze(0)
                o, o_lse = self.attend(qb, k[:, :, band_lo:full_lo], v[:, :, band_lo:full_lo], scale, mask=(i - j) < window)
                part_out, part_lse = merge(part_out, part_lse, o, o_lse)
            out[:, :, a:b], lse[:, :, a:b] = part_out, part_lse
        return out, lse

    # -------------------------------------------------------- general positions
    def _general_block(self, q, k, v, qpos, kpos, valid, scale, inv_freq, far_keys=None):
        near_out, near_lse = self._branch(
            q, k, v, qpos, kpos, valid, scale,
            lambda i, j: ((i - j) >= 0) & self.policy.near(i, j), inv_freq, rotate_far=False,
        )
        far_out, far_lse = self._branch(
            q, k, v, qpos, kpos, valid, scale,
            lambda i, j: ((i - j) >= 0) & self.policy.far(i, j), inv_freq, rotate_far=True, far_keys=far_keys,
        )
        out, _ = merge(near_out, near_lse, far_out, far_lse)
        return out

    def _branch(self, q, k, v, qpos, kpos, valid, scale, predicate: Callable, inv_freq, rotate_far: bool, far_keys=None):
        """One partial attention over the keys where ``predicate(i, j)`` holds."""
        mask = predicate(qpos.unsqueeze(-1), kpos.unsqueeze(-2))  # (B, Lq, Lk)
        if valid is not None:
            mask = mask & valid.unsqueeze(-2)
        columns = mask.any(dim=0).any(dim=0).nonzero()
        if columns.numel() == 0:  # no key in this branch for any query of the block
            shape = q.shape
            return (
                torch.zeros(shape, dtype=torch.float32, device=q.device),
                torch.full(shape[:3], NEG_INF, dtype=torch.float32, device=q.device),
            )
        lo, hi = int(columns[0]), int(columns[-1]) + 1
        k, v, kpos, mask = k[:, :, lo:hi], v[:, :, lo:hi], kpos[:, lo:hi], mask[:, :, lo:hi]
        if rotate_far:
            q = rotate(q, self.policy.far_query_pos(qpos) - qpos, inv_freq)
            if far_keys is not None:
                k = far_keys[:, :, lo:hi]
            else:
                k = rotate(k, self.policy.far_key_pos(kpos) - kpos, inv_freq)
        full = bool(mask.all())
        return self.attend(q, k, v, scale, mask=None if full else mask.unsqueeze(1))
