"""A bounded key/value cache for LM-Infinite: the first n_global and the last n_local keys.

LM-Infinite's attention never reads a key that is neither among the first ``n_global`` nor
within ``n_local`` of the query, so a cache that keeps only those returns exactly the same
outputs while its size stays constant however long generation runs. (transformers 5 removed
its SinkCache; the reference LM-Infinite code once trimmed its cache this way.)
"""

from __future__ import annotations

import torch
from transformers.cache_utils import DynamicCache, DynamicLayer

from .policies import LMInfinite

__all__ = ["LambdaCache", "LambdaLayer"]


class LambdaLayer(DynamicLayer):
    """Keeps the first ``n_global`` and the last ``n_local - 1`` keys of one full-attention layer."""

    def __init__(self, n_global: int, n_local: int) -> None:
        super().__init__()
        self.n_global = n_global
        self.n_tail = n_local - 1  # the next query adds itself: n_local near keys in all
        self.cumulative_length = 0

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        self.cumulative_length += key_states.shape[-2]
        keys = torch.cat([self.keys, key_states], dim=-2)
        values = torch.cat([self.values, value_states], dim=-2)
        if keys.shape[-2] > self.n_global + self.n_tail:
            head, tail = slice(0, self.n_global), slice(keys.shape[-2] - self.n_tail, None)
            self.keys = torch.cat([keys[:, :, head], keys[:, :, tail]], dim=-2)
            self.values = torch.cat([values[:, :, head], values[:, :, tail]], dim=-2)
        else:
            self.keys, self.values = keys, values
        return keys, values  # this step still reads everything it was given

    def get_seq_length(self) -> int:
        return self.cumulative_length

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        stored = self.keys.shape[-2] if self.is_initialized else 0
        return stored + query_length, self.cumulative_length - stored

    def crop(self, tokens_to_remove: int) -> None:
        raise NotImplementedError("a bounded LM-Infinite cache cannot be cropped (assisted decoding is not supported)")


class LambdaCache(DynamicCache):
    """A DynamicCache whose full-attention layers are LambdaLayers; sliding layers stay as the model has them."""

    def __init__(self, config, policy: LMInfinite) -> None:
        super().__init__(config=config)
        self.layers = [
            LambdaLayer(policy.n_global, policy.n_local) if type(layer) is DynamicLayer else layer
            for layer in self.layers
        ]

    def stored_bytes(self) -> int:
        """Bytes held by the cached keys and values now."""
        total = 0
        for layer in self.layers:
            if layer.is_initialized:
                total += layer.keys.numel() * layer.keys.element_size() + layer.values.numel() * layer.values.element_size()
        return total
