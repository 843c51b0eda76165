"""SelfExtend and LM-Infinite as policies: which keys are near, which are far, where they sit.

Both methods are "a near branch at true positions + a far branch at remapped positions over
a subset of keys", merged before the softmax. A policy is four tiny pure functions of
query positions ``i`` and key positions ``j`` (integer tensors that broadcast):

- ``near(i, j)``: the key is attended at its true position;
- ``far(i, j)``: the key is attended in the far branch (disjoint from ``near``);
- ``far_query_pos(i)`` and ``far_key_pos(j)``: where query and key sit in the far branch.

The engine (``engine.py``) composes them; nothing else in the code knows which method runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..errors import InputError

__all__ = ["SelfExtend", "LMInfinite", "choose_group_size"]


def _positive_int(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"{name} must be a positive integer, got {value!r}")


@dataclass(frozen=True)
class SelfExtend:
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

    def make_cache(self, model):
        """The cache to generate with: keys are rotated to their grouped positions once, on entry."""
        from .cache import GroupedKeyCache

        return GroupedKeyCache(model, self)

    def near(self, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
        return (i - j) < self.near_window

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
class LMInfinite:
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

    def make_cache(self, model):
        """The cache to generate with: bounded (first n_global + last n_local keys) unless asked not to."""
        if not self.bounded_cache:
            return None
        from .cache import LambdaCache

        return LambdaCache(model.config, self)

    def near(self, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
        return (i - j) < self.near_window

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
