"""Switch a policy on and off through transformers' own attention registry, reversibly.

``apply_policy`` registers one attention function per model under a unique name (plus the
standard SDPA mask builder under the same name), records the model's previous attention
implementation, and switches to it. ``remove_policy`` restores the previous one. Sliding-
window layers (Gemma-2/3, Mistral with a window) keep plain SDPA with their own masks; the
policy applies to full-attention layers. A short dry run proves that the model dispatches
through the registry at all: a model that does not (remote code, no RoPE) gets an error,
never a silent no-op.
"""

from __future__ import annotations

import contextlib
import itertools
from dataclasses import dataclass
from typing import Iterator

import torch

from ..errors import InputError
from .backends import backend_for
from .engine import TwoBranchEngine

_names = itertools.count()


@dataclass
class _State:
    policy: object
    name: str
    previous: str
    calls: dict


def _text_config(model):
    config = model.config
    return config.get_text_config() if hasattr(config, "get_text_config") else config


def _rotary(model) -> torch.nn.Module:
    for module in model.modules():
        if module.__class__.__name__.endswith("RotaryEmbedding"):
            return module
    raise InputError(
        f"{model.__class__.__name__} has no rotary position embedding: SelfExtend and LM-Infinite "
        "apply only to RoPE models (Llama, Mistral, Qwen, Gemma, Phi-3, OLMo ...); GPT-2 style "
        "learned positions are not supported"
    )


def inv_freq_lookup(model):
    """A function layer index -> inv_freq of that layer (per layer type where the model has several)."""
    rotary = _rotary(model)
    config = _text_config(model)
    layer_types = getattr(config, "layer_types", None)
    plain = getattr(rotary, "inv_freq", None)

    def lookup(layer_idx: int) -> torch.Tensor:
        if plain is not None:
            return plain
        layer_type = layer_types[layer_idx] if layer_types else None
        found = getattr(rotary, f"{layer_type}_inv_freq", None)
        if found is None:
            raise InputError(f"cannot find the RoPE frequencies of layer {layer_idx} ({layer_type})")
        return found

    if plain is None and not layer_types:
        raise InputError(f"{rotary.__class__.__name__} exposes no inv_freq: unsupported rotary embedding")
    return lookup


def _is_sliding(module, kwargs) -> bool:
    return kwargs.get("sliding_window") is not None or getattr(module, "sliding_window", None) is not None


def _key_validity(attention_mask, lk: int):
    """Which keys are real (not padding), as (B, Lk) bool, from the SDPA-style mask; None = all."""
    if attention_mask is None:
        return None
    if attention_mask.dtype == torch.bool:
        valid = attention_mask[:, 0, -1, -lk:]
    else:
        valid = attention_mask[:, 0, -1, -lk:] == 0
    return None if bool(valid.all()) else valid


def make_attention_function(model, policy, backend: str = "auto", calls: dict | None = None):
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    inv_freq_of = inv_freq_lookup(model)
    engines: dict = {}
    calls = calls if calls is not None else {}

    def attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
        if _is_sliding(module, kwargs):
            calls["sliding"] = calls.get("sliding", 0) + 1
            return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs)
        calls["full"] = calls.get("full", 0) + 1
        if kwargs.get("softcap") is not None:
            raise InputError("attention logit soft-capping (Gemma-2) is not supported by the two-branch engine")
        b, h, lq, d = query.shape  # (B, H, Lq, D)
        lk = key.shape[2]  # key: (B, Hkv, Lk, D), or (B, Hkv, Lk, 2D) from a GroupedKeyCache
        far_keys = None
        if key.shape[-1] == 2 * d:  # the cache appended each key rotated to its far position
            key, far_keys = key[..., :d], key[..., d:]
        scale = scaling if scaling is not None else d ** -0.5
        positions = kwargs.get("position_ids")
        if positions is None:
            positions = torch.arange(lk - lq, lk, device=query.device).unsqueeze(0)
        qpos = positions.to(query.device).long().expand(b, lq)
        # Keys sit in cache order; the last query is the newest token, so key slot s holds
        # position s - offset (pad slots get negative positions and are masked invalid).
        offset = (lk - 1) - qpos[:, -1:]
        kpos = torch.arange(lk, device=query.device).unsqueeze(0) - offset  # (B, Lk)
        if bool((offset < 0).any()):
            # Fewer slots than positions: a bounded cache kept the policy's first
            # cache_head keys and a contiguous tail that ends at the newest query.
            slots = torch.arange(lk, device=query.device).unsqueeze(0)
            kpos = torch.where(slots < policy.cache_head, slots, kpos)
        if far_keys is not None and bool((offset != 0).any()):
            far_keys = None  # the cache rotated by slot; with padding slots are not positions
        valid = _key_validity(attention_mask, lk)
        if bool((kpos < 0).any()):
            valid = (kpos >= 0) if valid is None else valid & (kpos >= 0)
        device = query.device
        if device not in engines:
            engines[device] = TwoBranchEngine(policy, backend_for(device, backend))
        out = engines[device](query, key, value, qpos, kpos, valid, scale, inv_freq_of(module.layer_idx), far_keys)
        return out.transpose(1, 2).contiguous().to(query.dtype), None  # (B, Lq, H, D)

    return attention


def apply_policy(model, policy, *, backend: str = "auto") -> None:
    """Switch ``model``'s attention to ``policy`` (SelfExtend or LMInfinite), reversibly."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    if not hasattr(policy, "near") or not hasattr(policy, "far"):
        raise InputError(f"{policy!r} is not an attention policy: pass SelfExtend(...) or LMInfinite(...)")
    if getattr(model, "_entropy_retriever_state", None) is not None:
        raise InputError("a policy is already applied to this model: remove it first (remove_policy(model))")
    trained = getattr(_text_config(model), "max_position_embeddings", None)
    policy.validate_for(trained)
    can_set = getattr(model, "_can_set_attn_implementation", lambda: True)
    if not can_set():
        raise InputError(
            f"{model.__class__.__name__} does not dispatch attention through transformers' AttentionInterface "
            "(remote code or an old model file), so a policy cannot be applied to it"
        )
    calls: dict = {}
    function = make_attention_function(model, policy, backend, calls)
    name = f"entropy_retriever_{next(_names)}"
    AttentionInterface.register(name, function)
    AttentionMaskInterface.register(name, sdpa_mask)
    previous = model.config._attn_implementation
    model.set_attn_implementation(name)
    model._entropy_retriever_state = _State(policy, name, previous, calls)
    try:
        with torch.no_grad():
            model(input_ids=torch.tensor([[1, 2]], device=model.device), use_cache=False)
    except Exception:
        remove_policy(model)
        raise
    if calls.get("full", 0) == 0:
        remove_policy(model)
        if calls.get("sliding", 0):
            raise InputError(
                "every attention layer of this model uses a sliding window, so the policy would change "
                "nothing; turn the window off first (model.config.sliding_window = None), as the "
                "SelfExtend reference does for Mistral"
            )
        raise InputError(
            f"{model.__class__.__name__} never called the registered attention function: it does not "
            "dispatch through transformers' AttentionInterface, so the policy cannot apply"
        )


def remove_policy(model) -> None:
    """Restore the attention implementation the model had before ``apply_policy``."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    state = getattr(model, "_entropy_retriever_state", None)
    if state is None:
        return
    model.set_attn_implementation(state.previous)
    AttentionInterface._global_mapping.pop(state.name, None)
    AttentionMaskInterface._global_mapping.pop(state.name, None)
    model._entropy_retriever_state = None


def current_policy(model):
    state = getattr(model, "_entropy_retriever_state", None)
    return None if state is None else state.policy


@contextlib.contextmanager
def extend_context(model, policy, *, backend: str = "auto") -> Iterator:
    """``with extend_context(model, SelfExtend(4, 1024)):`` the policy applies inside the block only."""
    apply_policy(model, policy, backend=backend)
    try:
        yield model
    finally:
        remove_policy(model)
