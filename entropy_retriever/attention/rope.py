"""RoPE helpers: find a model's rotary frequencies, and rotate vectors by more positions.

Nothing here knows about policies; the engine, the caches and the registry all use it.
"""

from __future__ import annotations

import torch

from ..errors import InputError

__all__ = ["inv_freq_lookup", "rotary_embedding", "rotate", "text_config"]


def text_config(model):
    """The config of the language model (the text sub-config of a multimodal model)."""
    config = model.config
    return config.get_text_config() if hasattr(config, "get_text_config") else config


def rotary_embedding(model) -> torch.nn.Module:
    """The model's rotary embedding module; an InputError for models without RoPE."""
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
    rotary = rotary_embedding(model)
    layer_types = getattr(text_config(model), "layer_types", None)
    plain = getattr(rotary, "inv_freq", None)
    if plain is None and not layer_types:
        raise InputError(f"{rotary.__class__.__name__} exposes no inv_freq: unsupported rotary embedding")

    def lookup(layer_idx: int) -> torch.Tensor:
        if plain is not None:
            return plain
        layer_type = layer_types[layer_idx] if layer_types else None
        found = getattr(rotary, f"{layer_type}_inv_freq", None)
        if found is None:
            raise InputError(f"cannot find the RoPE frequencies of layer {layer_idx} ({layer_type})")
        return found

    return lookup


def rotate(x: torch.Tensor, shift: torch.Tensor, inv_freq: torch.Tensor) -> torch.Tensor:
    """Rotate ``x`` (B, H, L, D) by ``shift`` (B, L) more positions, in float32.

    Only the first ``2 * len(inv_freq)`` features rotate (partial rotary); the rest pass.
    The pairing is the rotate-half layout that transformers' RoPE models use. RoPE rotations
    compose, so moving a vector already rotated at position p to position p' is one more
    rotation by p' - p.
    """
    half = inv_freq.numel()
    angles = (shift.to(torch.float32).unsqueeze(-1) * inv_freq.to(x.device, torch.float32)).unsqueeze(1)  # (B, 1, L, rd/2)
    cos, sin = angles.cos(), angles.sin()
    xf = x.float()
    x1, x2 = xf[..., :half], xf[..., half : 2 * half]
    parts = [x1 * cos - x2 * sin, x2 * cos + x1 * sin]
    if xf.shape[-1] > 2 * half:
        parts.append(xf[..., 2 * half :])
    return torch.cat(parts, dim=-1).to(x.dtype)
