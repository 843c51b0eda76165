"""SelfExtend and LM-Infinite as policies: which keys are near, which are far, where they sit.

Both methods are "a near branch at true positions + a far branch at remapped positions over
a subset of keys", merged before the softmax. A policy is a frozen (hashable) value whose
members are pure functions of query positions ``i`` and key positions ``j`` (integer tensors
that broadcast) or plain numbers. The contract is :class:`Policy`; the engine (``engine.py``)
composes its members, and nothing else in the code knows which method runs. This module
imports nothing from the rest of the attention package.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Protocol, runtime_checkable

import torch

from ..errors import InputError

__all__ = ["LMInfinite", "Policy", "SelfExtend", "choose_group_size"]


@runtime_checkable
class Policy(Protocol):
    """What an attention policy provides. Implement it to add a method; the engine needs nothing else.

    Masks (pure, broadcasting, no state):
      ``near(i, j)``: key j is read by query i at its true position.
      ``far(i, j)``: key j is read in the far branch. Must be disjoint from ``near``; keys in
      neither are not read at all. The engine adds causality (j <= i) itself.
    Far-branch positions (pure):
      ``far_query_pos(i)``, ``far_key_pos(j)``: where the query and the key sit in the far
      branch; RoPE sees only their difference.
    Shortcuts the engine may take (numbers, or None when there is none):
      ``near_window``: near(i, j) holds exactly when 0 <= i - j < near_window.
      ``far_is_causal_shift()``: an S such that, for contiguous positions, far(i, j) holds
      exactly when j <= i - S (SelfExtend: S = W); None otherwise.
      ``far_key_bound(n_keys)``: far keys lie among the first this-many of n_keys slots.
      ``cache_head``: how many first slots a bounded decoding cache keeps apart from its tail.
      ``decode_cache``: the cache generation uses: ``"grouped_keys"`` (keys stored also at
      their far position), ``"bounded"`` (first ``cache_head`` + last ``near_window`` keys), or
      None (transformers' own).
    Model checks:
      ``validate_for(trained_window)``: raise InputError if the policy cannot apply to a model
      trained on ``trained_window`` tokens (None: unknown).
      ``reach(trained_window)``: the longest input the policy lets such a model read.
    """

    near_window: int
    cache_head: int
    decode_cache: Optional[str]

    def near(self, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor: ...

    def far(self, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor: ...

    def far_query_pos(self, i: torch.Tensor) -> torch.Tensor: ...

    def far_key_pos(self, j: torch.Tensor) -> torch.Tensor: ...

    def far_is_causal_shift(self) -> Optional[int]: ...

    def far_key_bound(self, n_keys: int) -> int: ...

    def validate_for(self, trained_window: Optional[int]) -> None: ...

    def reach(self, trained_window: int) -> int: ...


class _NearByWindow:
    """``near`` from ``near_window``: the one statement of which keys are read at true positions."""

    @property
    def near_window(self) -> int:
        raise NotImplementedError

    def near(self, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
        return (i - j) < self.near_window


def _positive_int(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"{name} must be a positive integer, got {value!r}")


@dataclass(frozen=True)
class SelfExtend(_NearByWindow):
    """Grouped positions beyond a neighbour window (SelfExtend, arXiv 2401.01325).

    group_size: G, how many far positions share one (floor division). 1 means no extension.
    window: W, the neighbour window read at true positions; must be below the trained length.
    """

    group_size: int = 4
    window: int = 1024

    def __post_init__(self) -> None:
        _positive_int("group_size", self.group_size)
        _positive_int("window", self.window)

    def validate_for(self, trained_window: int | None) -> None:
        if trained_window is not None and self.window >= trained_window:
            raise InputError(
                f"SelfExtend window={self.window} must be below the model's trained length "
                f"({trained_window}); the reference uses 512 to 1536 for 4k-8k models"
            )

    def reach(self, trained_window: int) -> int:
        """The longest input whose grouped positions stay within the trained length."""
        return (trained_window - self.window) * self.group_size + self.window

    @property
    def near_window(self) -> int:
        """Keys closer than this are read at their true positions."""
        return self.window

    cache_head = 0  # no cache slots are kept apart from the contiguous tail
    decode_cache = "grouped_keys"  # keys are rotated to their grouped positions once, on entry

    def far(self, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
        return (i - j) >= self.window

    def far_query_pos(self, i: torch.Tensor) -> torch.Tensor:
        return torch.div(i, self.group_size, rounding_mode="floor") + self.window - self.window // self.group_size

    def far_key_pos(self, j: torch.Tensor) -> torch.Tensor:
        return torch.div(j, self.group_size, rounding_mode="floor")

    def far_is_causal_shift(self) -> int | None:
        """For contiguous positions, the far keys of query i are exactly j <= i - W."""
        return self.window

    def far_key_bound(self, n_keys: int) -> int:
        """Far keys lie among the first this-many cache slots."""
        return n_keys


@dataclass(frozen=True)
class LMInfinite(_NearByWindow):
    """Λ-shaped attention with a distance limit (LM-Infinite, arXiv 2308.16137).

    n_local: the local window read at true positions (the reference: the pretraining length).
    n_global: the first tokens every query also reads, each seen at distance ``n_local``.
    max_length: what the wrapper reports as its context length (the method itself has none).
    bounded_cache: during generation keep only the first n_global and last n_local keys.
    """

    n_local: int = 4096
    n_global: int = 64
    max_length: int = 1 << 20
    bounded_cache: bool = True

    def __post_init__(self) -> None:
        _positive_int("n_local", self.n_local)
        _positive_int("n_global", self.n_global)
        _positive_int("max_length", self.max_length)

    def validate_for(self, trained_window: int | None) -> None:
        if trained_window is not None and self.n_local > trained_window:
            raise InputError(
                f"LMInfinite n_local={self.n_local} exceeds the model's trained length ({trained_window}): "
                "distances beyond it are what LM-Infinite avoids; use n_local <= the trained length"
            )

    def reach(self, trained_window: int) -> int:
        return self.max_length

    @property
    def near_window(self) -> int:
        return self.n_local

    @property
    def cache_head(self) -> int:
        """A bounded cache keeps these first slots apart from its contiguous tail."""
        return self.n_global

    @property
    def decode_cache(self) -> Optional[str]:
        """Bounded (first n_global + last n_local keys) unless asked not to."""
        return "bounded" if self.bounded_cache else None

    def far(self, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
        return (j < self.n_global) & ((i - j) >= self.n_local)

    def far_query_pos(self, i: torch.Tensor) -> torch.Tensor:
        return torch.full_like(i, self.n_local)

    def far_key_pos(self, j: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(j)

    def far_is_causal_shift(self) -> int | None:
        return None

    def far_key_bound(self, n_keys: int) -> int:
        return min(n_keys, self.n_global)


def choose_group_size(target_length: int, trained_window: int, window: int | None = None) -> SelfExtend:
    """The smallest SelfExtend group size whose reach, (L - W)·G + W, covers ``target_length``.

    ``window`` defaults to a quarter of the trained length (at most 1024), as in the
    reference's settings for 4k-8k models.
    """
    _positive_int("target_length", target_length)
    _positive_int("trained_window", trained_window)
    if window is None:
        window = min(1024, trained_window // 4)
    if window >= trained_window:
        raise InputError(f"window={window} must be below the trained length {trained_window}")
    if target_length <= trained_window:
        return SelfExtend(group_size=1, window=window)
    group = math.ceil((target_length - window) / (trained_window - window))
    return SelfExtend(group_size=max(1, group), window=window)
