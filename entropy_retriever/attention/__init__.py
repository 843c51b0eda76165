"""SelfExtend and LM-Infinite on any transformers RoPE model, through one two-branch engine."""

from .patch import apply_policy, current_policy, extend_context, remove_policy
from .policies import LMInfinite, SelfExtend, choose_group_size

__all__ = ["LMInfinite", "SelfExtend", "apply_policy", "choose_group_size", "current_policy", "extend_context", "remove_policy"]
