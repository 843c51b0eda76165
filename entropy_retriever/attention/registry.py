"""Switch a policy on for a block of work, through transformers' own attention registry.

For each (model, policy, backend) one attention function is registered under a unique name
(with the standard SDPA mask builder under the same name), once, and checked with a short dry
run: a model that never calls it (remote code, no RoPE, every layer sliding) gets an error,
never a silent no-op. :func:`policy_active` then only switches the model's attention
implementation to that name and back; it holds the model's lock for the whole block, so that
several components sharing one model, each with its own policy or none, never see each
other's. Equal policies share one registration. Nothing stays patched after the block.

Sliding-window layers (Gemma-2/3, Mistral with a window) keep plain SDPA with their own masks;
the policy applies to full-attention layers.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
import weakref
from typing import Callable, Iterator, Optional

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

from ..errors import InputError
from ..runtime import cache_dir, model_lock
from .backends import backend_for
from .engine import TwoBranchEngine
from .flex import FlexEngine, flex_available
from .policies import Policy
from .rope import inv_freq_lookup, text_config

__all__ = ["extend_context", "policy_active", "validate_policy"]

_PREFIX = "entropy_retriever_"
_names = itertools.count()
_guard = threading.Lock()
_registered: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # model -> _Registry


class _Registry:
    """A model's registered policies and the attention implementation it runs without one."""

    def __init__(self, model) -> None:
        # config._attn_implementation: transformers' private record of the implementation in use
        # (set_attn_implementation writes it; no public getter exists in 5.x).
        self.plain = model.config._attn_implementation
        self.names: dict = {}  # (policy, backend) -> registered name
        weakref.finalize(model, _unregister, self.names)


def _unregister(names: dict) -> None:
    # transformers offers register() but no way to remove a name; its registries keep the
    # global functions in ``_global_mapping`` (a private dict, the same in transformers 5.x).
    for name in list(names.values()):
        AttentionInterface._global_mapping.pop(name, None)
        AttentionMaskInterface._global_mapping.pop(name, None)


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


AttentionFunction = Callable[..., tuple[torch.Tensor, None]]


def make_attention_function(model, policy: Policy, backend: str = "auto", calls: Optional[dict] = None) -> AttentionFunction:
    """The function transformers calls in place of SDPA for ``model``'s full-attention layers.

    Its signature is transformers' attention interface (``sdpa_attention_forward``'s):
    ``(module, query (B, H, Lq, D), key, value (B, Hkv, Lk, D), attention_mask, scaling, dropout,
    **kwargs)`` returning ``(output (B, Lq, H, D), None)``. It reads ``module.layer_idx`` and
    ``kwargs["position_ids"]`` / ``["sliding_window"]`` / ``["softcap"]``, which transformers passes.
    """

    inv_freq_of = inv_freq_lookup(model)
    engines: dict = {}
    calls = calls if calls is not None else {}

    def attention(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                  attention_mask: Optional[torch.Tensor], scaling: Optional[float] = None, dropout: float = 0.0,
                  **kwargs) -> tuple[torch.Tensor, None]:
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
            engines[device] = _engine(policy, device, backend)
        out = engines[device](query, key, value, qpos, kpos, valid, scale, inv_freq_of(module.layer_idx), far_keys)
        return out.transpose(1, 2).contiguous().to(query.dtype), None  # (B, Lq, H, D)

    return attention


def measured_backend(device: torch.device, path=None) -> str:
    """What ``backend="auto"`` runs on a CUDA device: ``"flex"`` or ``"cuda"`` (the efficient SDPA
    kernel), as ``python -m benchmarks gpu`` measured on a GPU of that name (it records the faster
    in ``<cache>/attention-backend.json``); the efficient SDPA kernel when nothing was measured."""


    if device.type != "cuda" or not torch.cuda.is_available():
        return "auto"
    path = path if path is not None else cache_dir() / "attention-backend.json"
    try:
        choice = json.loads(path.read_text()).get(torch.cuda.get_device_name(device), {}).get("backend")
    except (OSError, ValueError, AttributeError):
        return "cuda"
    return choice if choice in ("flex", "cuda") else "cuda"


def _engine(policy, device: torch.device, backend: str):
    """The engine for ``backend``: flex_attention with predicate block masks (``"flex"``), or the
    two-branch engine over a partial-attention kernel (``"auto"``, ``"math"``, ``"cpu_flash"``, ...).
    On CUDA, ``"auto"`` follows the GPU benchmark's measurement (:func:`measured_backend`)."""
    if backend == "auto" and device.type == "cuda":
        backend = measured_backend(device)
    if backend == "flex":
        if not flex_available():
            raise InputError(f"backend='flex' needs torch.nn.attention.flex_attention with auxiliary outputs "
                             f"(torch >= 2.9; this is {torch.__version__}): use backend='auto'")
        return FlexEngine(policy)
    return TwoBranchEngine(policy, backend_for(device, backend))


def _check_policy(policy) -> None:
    if not isinstance(policy, Policy):
        raise InputError(
            f"{policy!r} is not an attention policy: pass SelfExtend(...) or LMInfinite(...) "
            "(or an object meeting entropy_retriever.attention.Policy)"
        )
    try:
        hash(policy)
    except TypeError:
        raise InputError(f"{type(policy).__name__} must be hashable (a frozen dataclass) to serve as a policy") from None


def _registry(model) -> _Registry:
    with _guard:
        found = _registered.get(model)
        if found is None:
            found = _registered[model] = _Registry(model)
        return found


def _register(model, policy, backend: str) -> str:
    """The registered name of (model, policy, backend), registering and dry-running it once."""

    registry = _registry(model)
    key = (policy, backend)
    if key in registry.names:
        return registry.names[key]
    policy.validate_for(getattr(text_config(model), "max_position_embeddings", None))
    # _can_set_attn_implementation: transformers' private check (False for remote-code models that
    # hard-wire their attention); absent in versions without it, where we try and see.
    if not getattr(model, "_can_set_attn_implementation", lambda: True)():
        raise InputError(
            f"{model.__class__.__name__} does not dispatch attention through transformers' AttentionInterface "
            "(remote code or an old model file), so a policy cannot be applied to it"
        )
    _engine(policy, model.device, backend)  # an unknown backend name fails here, before any forward
    calls: dict = {}
    name = f"{_PREFIX}{next(_names)}"
    AttentionInterface.register(name, make_attention_function(model, policy, backend, calls))
    AttentionMaskInterface.register(name, sdpa_mask)
    previous = model.config._attn_implementation
    try:
        model.set_attn_implementation(name)
        with torch.no_grad():
            model(input_ids=torch.tensor([[1, 2]], device=model.device), use_cache=False)
    except BaseException:
        _unregister({key: name})
        raise
    finally:
        model.set_attn_implementation(previous)
    if calls.get("full", 0) == 0:
        _unregister({key: name})
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
    registry.names[key] = name
    return name


def validate_policy(model, policy, *, backend: str = "auto") -> None:
    """Check, once per (model, policy, backend), that ``policy`` applies to ``model``; InputError if not."""
    _check_policy(policy)
    with model_lock(model):
        _register(model, policy, backend)


@contextlib.contextmanager
def policy_active(model, policy, *, backend: str = "auto") -> Iterator:
    """Run ``model`` with ``policy`` (None: its plain attention) inside the block, holding its lock.

    Blocks nest: the innermost one wins, and each restores what was active before it.
    """
    if policy is not None:
        _check_policy(policy)
    with model_lock(model):
        registry = _registry(model)
        name = registry.plain if policy is None else _register(model, policy, backend)
        previous = model.config._attn_implementation
        if name != previous:
            model.set_attn_implementation(name)
        try:
            yield model
        finally:
            if name != previous:
                model.set_attn_implementation(previous)


@contextlib.contextmanager
def extend_context(model, policy, *, backend: str = "auto") -> Iterator:
    """``with extend_context(model, SelfExtend(4, 1024)):`` the model reads with the policy inside the block.

    The block holds the model's lock: other threads' components that share the model wait
    until it ends, and nothing stays switched on after it. Components that own a policy
    (``LongContextLM(model, tok, policy)``) need no block.
    """
    if policy is None:
        raise InputError("extend_context needs a policy: SelfExtend(...) or LMInfinite(...)")
    with policy_active(model, policy, backend=backend):
        yield model
