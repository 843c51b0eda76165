"""The CPU dtype for ``dtype="auto"``, chosen by measurement on the machine itself.

The rule: bfloat16 when all three hold, float32 otherwise.

1. The CPU has native bfloat16 matrix instructions (AVX512-BF16 or AMX), which torch's CPU
   kernels use. Without them bfloat16 is emulated and slower (measured on an AVX2 EPYC: 0.20x
   float32's scoring throughput).
2. A measurement on this machine found bfloat16 scoring at least ``MIN_SPEEDUP`` times as fast
   as float32, side by side in one run.
3. bfloat16 selected the same segments as float32 on the measured document (the same ``k``
   best), so that the faster dtype does not change what the reader keeps.

``entropy-retriever calibrate`` (or :func:`calibrate`) measures and records the result in
``<cache>/cpu-dtype.json`` for this CPU and this torch version; ``dtype="auto"`` on CPU reads
it (:func:`recorded_cpu_dtype`). Nothing is measured behind the user's back: with no record,
or a record for another CPU or torch, ``auto`` is float32.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from .errors import InputError
from .runtime import cache_dir

__all__ = ["Calibration", "MIN_SPEEDUP", "calibrate", "choose", "native_bf16", "record_path", "recorded_cpu_dtype", "this_cpu"]

MIN_SPEEDUP = 1.1
FILE_NAME = "cpu-dtype.json"


def native_bf16() -> bool:
    """Whether this CPU has bfloat16 matrix instructions: AVX512-BF16 or AMX tiles."""
    probes = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    if all(callable(p) for p in probes):
        return any(bool(p()) for p in probes)
    try:  # an older or newer torch without the probes: the kernel's CPU flags (Linux)
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
    except (OSError, StopIteration):
        return False
    return bool({"avx512_bf16", "amx_bf16"} & set(flags.split()))


@functools.lru_cache(maxsize=1)
def _machine() -> tuple[tuple[str, str], ...]:
    """The CPU's model name, its capability and torch's version: read once per process."""
    name = platform.processor() or platform.machine()
    try:
        name = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (("cpu", name), ("capability", torch.backends.cpu.get_cpu_capability()), ("torch", torch.__version__))


def this_cpu() -> dict:
    """What a recorded choice is valid for: the CPU's model name, its capability, torch's version."""
    return {**dict(_machine()), "native_bf16": native_bf16()}


def choose(native: bool, float32_tps: float, bfloat16_tps: float, same_selection: bool) -> tuple[str, str]:
    """The rule of this module's doc: ``(dtype name, why)``."""
    ratio = bfloat16_tps / float32_tps
    if not native:
        return "float32", f"this CPU has no native bfloat16 matrix instructions (bfloat16 ran at {ratio:.2f}x float32)"
    if ratio < MIN_SPEEDUP:
        return "float32", f"bfloat16 ran at {ratio:.2f}x float32, less than the {MIN_SPEEDUP}x it must gain"
    if not same_selection:
        return "float32", f"bfloat16 ran at {ratio:.2f}x float32 but selected other segments"
    return "bfloat16", f"bfloat16 ran at {ratio:.2f}x float32 and selected the same segments"


@dataclass
class Calibration:
    """One side-by-side measurement of the scorer in float32 and bfloat16 on this CPU."""

    machine: dict
    model: str
    tokens: int
    segments: int
    k: int
    float32_tokens_per_second: float
    bfloat16_tokens_per_second: float
    agreement: float  # the share of float32's k best segments that bfloat16 also ranks among its k best
    choice: str
    why: str

    def describe(self) -> str:
        m = self.machine
        ratio = self.bfloat16_tokens_per_second / self.float32_tokens_per_second
        return (
            f"CPU: {m['cpu']} ({m['capability']}; native bfloat16: {'yes' if m['native_bf16'] else 'no'}), torch {m['torch']}\n"
            f"scoring {self.tokens:,} tokens in {self.segments} segments with {self.model}:\n"
            f"  float32:  {self.float32_tokens_per_second:,.0f} tokens/s\n"
            f"  bfloat16: {self.bfloat16_tokens_per_second:,.0f} tokens/s ({ratio:.2f}x), "
            f"its {self.k} best segments agree {self.agreement:.0%} with float32's\n"
            f"choice for dtype='auto' on this CPU: {self.choice} ({self.why})"
        )


def recorded_cpu_dtype(path: str | os.PathLike | None = None) -> torch.dtype | None:
    """The recorded choice when it was measured on this CPU with this torch (and, for bfloat16,
    the CPU still has native bfloat16); None when there is none that applies."""
    target = record_path(path)
    if not target.is_file():
        return None
    try:
        record = json.loads(target.read_text(encoding="utf-8"))
        machine, choice = dict(record["machine"]), record["choice"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        warnings.warn(f"{target} is not a CPU dtype record ({exc.__class__.__name__}): dtype='auto' uses float32 on CPU; "
                      "run `entropy-retriever calibrate` again to rewrite it", stacklevel=3)
        return None
    if any(machine.get(key) != value for key, value in _machine()):
        return None
    if choice == "bfloat16" and native_bf16():
        return torch.bfloat16
    return torch.float32 if choice == "float32" else None


def record_path(path=None) -> Path:
    """Where the choice is recorded: ``<cache>/cpu-dtype.json`` unless ``path`` says otherwise."""
    return Path(path) if path is not None else cache_dir() / FILE_NAME
