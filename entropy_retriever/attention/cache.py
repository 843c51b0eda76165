"""A bounded key/value cache for LM-Infinite: the first n_global and the last n_local keys.

LM-Infinite's attention never reads a key that is neither among the first ``n_global`` nor
within ``n_local`` of the query, so a cache that keeps only those returns exactly the same
outputs while its size stays constant however long generation runs. (transformers 5 removed
its SinkCache; the reference LM-Infinite code once trimmed its cache this way.)
"""

from __future__ import annotations

import torch
from transformers.cache_utils import DynamicCache, DynamicLayer

from .rope import inv_freq_lookup, rotate

__all__ = ["GroupedKeyCache", "GroupedKeyLayer", "LambdaCache", "LambdaLayer", "make_cache"]


def make_cache(model, policy):
    """The key/value cache to generate with under ``policy`` (see ``Policy.decode_cache``)."""
    kind = policy.decode_cache
    if kind is None:
        return None
    if kind == "bounded":
        return LambdaCache(model.config, policy)
    if kind == "grouped_keys":
        return GroupedKeyCache(model, policy)
    raise ValueError(f"unknown decode_cache {kind!r} of {policy!r}: use 'bounded', 'grouped_keys' or None")


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
        assert self.keys is not None and self.values is not None  # set by lazy_initialization
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

    def get_mask_sizes(self, query_length: int | torch.Tensor) -> tuple[int, int]:  # type: ignore[override]
        # (the argument's type differs between transformers versions: see query_length_of)
        stored = self.keys.shape[-2] if self.is_initialized and self.keys is not None else 0
        return stored + query_length_of(query_length), self.cumulative_length - stored

    def crop(self, tokens_to_remove: int) -> None:
        raise NotImplementedError("a bounded LM-Infinite cache cannot be cropped (assisted decoding is not supported)")


def query_length_of(query: int | torch.Tensor) -> int:
    """The query's length, as a cache layer's ``get_mask_sizes`` is given it: transformers 5.0
    passes ``cache_position`` (a tensor of the query's positions), later 5.x releases pass the
    length itself. The one place that tells the two apart."""
    return int(query.shape[0]) if isinstance(query, torch.Tensor) else int(query)


class LambdaCache(DynamicCache):
    """A DynamicCache whose full-attention layers are LambdaLayers; sliding layers stay as the model has them."""

    def __init__(self, config, policy) -> None:
        super().__init__(config=config)
        self.layers = [
            LambdaLayer(policy.cache_head, policy.near_window) if type(layer) is DynamicLayer else layer
            for layer in self.layers
        ]

    def stored_bytes(self) -> int:
        """Bytes held by the cached keys and values now."""
        return cache_bytes(self)


class GroupedKeyLayer(DynamicLayer):
    """A full-attention layer's cache that also keeps each key rotated to SelfExtend's far position.

    SelfExtend's far branch reads key j at position ``j // G``; rotating every cached key
    again at every decoding step costs more than the attention itself. This layer rotates each
    key once, when it enters the cache, and hands both to the attention function by appending
    the rotated copy along the feature axis: ``update`` returns keys of shape (B, Hkv, L, 2D),
    which the registered attention function splits. (The attention function cannot reach the
    cache object, but what ``update`` returns is passed to it as the key.) Slots are taken as
    positions: the attention function ignores the copy when left padding makes them differ.
    """

    def __init__(self, policy, inv_freq: torch.Tensor) -> None:
        super().__init__()
        self.policy = policy
        self.inv_freq = inv_freq
        self.far_keys: torch.Tensor | None = None

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        start = 0 if self.far_keys is None else self.far_keys.shape[-2]
        keys, values = super().update(key_states, value_states)
        slots = torch.arange(start, start + key_states.shape[-2], device=key_states.device).unsqueeze(0)
        fresh = rotate(key_states, (self.policy.far_key_pos(slots) - slots).expand(key_states.shape[0], -1), self.inv_freq)
        self.far_keys = fresh if self.far_keys is None else torch.cat([self.far_keys, fresh], dim=-2)
        return torch.cat([keys, self.far_keys], dim=-1), values

    def crop(self, tokens_to_remove: int) -> None:
        raise NotImplementedError("a SelfExtend grouped-key cache cannot be cropped (assisted decoding is not supported)")


class GroupedKeyCache(DynamicCache):
    """A DynamicCache whose full-attention layers are GroupedKeyLayers (SelfExtend decoding)."""

    def __init__(self, model, policy) -> None:
        super().__init__(config=model.config)
        inv_freq_of = inv_freq_lookup(model)
        self.layers = [
            GroupedKeyLayer(policy, inv_freq_of(i)) if type(layer) is DynamicLayer else layer
            for i, layer in enumerate(self.layers)
        ]


def cache_bytes(cache) -> int:
    """Bytes of the keys and values a transformers cache holds now (0 for None or an empty cache)."""
    total = 0
    for layer in getattr(cache, "layers", None) or ():
        for name in ("keys", "values"):
            tensor = getattr(layer, name, None)
            if isinstance(tensor, torch.Tensor):
                total += tensor.numel() * tensor.element_size()
    return total
