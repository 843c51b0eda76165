"""SelfExtend and LM-Infinite on any transformers RoPE model, through one two-branch engine.

Layers, each importing only those before it: ``policies`` (what a method is: pure predicates
behind the :class:`Policy` protocol), ``rope`` (rotary helpers), ``backends`` (partial
attention kernels with their log-sum-exp), ``engine`` (the two-branch attention), ``cache``
(decoding caches), ``registry`` (switching a policy on for a block, through transformers'
attention registry).
"""

from .policies import LMInfinite, Policy, SelfExtend, choose_group_size
from .registry import extend_context, policy_active, validate_policy

__all__ = [
    "LMInfinite",
    "Policy",
    "SelfExtend",
    "choose_group_size",
    "extend_context",
    "policy_active",
    "validate_policy",
]
