"""The CPU dtype for ``dtype="auto"``, chosen by measurement on the machine itself.

``entropy-retriever calibrate`` (or :func:`entropy_retriever.calibrate.calibrate`) scores the
same documents in float32, bfloat16 and int8, side by side in one run, and applies this rule:

- **int8** (dynamic int8 Linear layers for scoring; :mod:`entropy_retriever.quantize`) when all
  three hold: it scores at least ``INT8_MIN_SPEEDUP`` times as many tokens per second as
  float32; its ``k`` best segments are float32's on at least ``INT8_MIN_AGREEMENT`` of the
  documents; and it keeps the planted fact as often as float32, less at most
  ``INT8_MAX_RECALL_LOSS``.
- **bfloat16** when the CPU has native bfloat16 matrix instructions (AVX512-BF16 or AMX; without
  them bfloat16 is emulated, 0.20x float32 on an AVX2 EPYC), it runs at least ``MIN_SPEEDUP``
  times as fast as float32, and it selects what float32 selects on every document.
- When both qualify, the faster; when neither does, **float32**.

The choice is recorded in ``<cache>/cpu-dtype.json`` for this CPU and this torch version;
``dtype="auto"`` on CPU reads it (:func:`recorded_cpu_dtype`). Nothing is measured behind the
user's back: with no record, or a record for another CPU or torch, ``auto`` is float32. int8
applies to scoring only: a reader answers in float32.
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

from .runtime import cache_dir

__all__ = [
    "Calibration", "INT8_MAX_RECALL_LOSS", "INT8_MIN_AGREEMENT", "INT8_MIN_SPEEDUP", "MIN_SPEEDUP", "Measured",
    "choose", "native_bf16", "record_path", "recorded_cpu_dtype", "this_cpu",
]

MIN_SPEEDUP = 1.1  # bfloat16 against float32
INT8_MIN_SPEEDUP = 1.3
INT8_MIN_AGREEMENT = 0.95
INT8_MAX_RECALL_LOSS = 0.01
FILE_NAME = "cpu-dtype.json"
CHOICES = ("float32", "bfloat16", "int8")


def native_bf16() -> bool:
    """Whether this CPU has bfloat16 matrix instructions: AVX512-BF16 or AMX tiles."""
    probes = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    found = [p for p in probes if callable(p)]
    if len(found) == len(probes):
        return any(bool(p()) for p in found)
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


@dataclass(frozen=True)
class Measured:
    """One dtype's scoring on the calibration documents."""

    tokens_per_second: float
    agreement: float  # the share of documents whose k best segments are float32's k best
    recall: float  # the share of documents whose planted fact is in a kept segment


def choose(native: bool, measured: dict[str, Measured]) -> tuple[str, str]:
    """The rule of this module's doc: ``(dtype name, why)``. ``measured`` has float32 and may
    have bfloat16 and int8."""
    base = measured["float32"]
    fine, why = [], []
    for name, m in measured.items():
        if name == "float32":
            continue
        ratio = m.tokens_per_second / base.tokens_per_second
        said = f"{name} ran at {ratio:.2f}x float32"
        if name == "bfloat16":
            needed = [(native, "this CPU has no native bfloat16 matrix instructions"),
                      (ratio >= MIN_SPEEDUP, f"less than the {MIN_SPEEDUP}x it must gain"),
                      (m.agreement == 1.0, f"it selected other segments on {1 - m.agreement:.0%} of the documents")]
        else:
            needed = [(ratio >= INT8_MIN_SPEEDUP, f"less than the {INT8_MIN_SPEEDUP}x it must gain"),
                      (m.agreement >= INT8_MIN_AGREEMENT,
                       f"its {m.agreement:.0%} agreement with float32's best segments is under {INT8_MIN_AGREEMENT:.0%}"),
                      (m.recall >= base.recall - INT8_MAX_RECALL_LOSS,
                       f"it kept the fact on {m.recall:.0%} of the documents against float32's {base.recall:.0%}")]
        failed = [reason for ok, reason in needed if not ok]
        if failed:
            why.append(f"{said}, but {'; '.join(failed)}")
        else:
            fine.append((m.tokens_per_second, name))
            why.append(f"{said}, selected what float32 selects on {m.agreement:.0%} of the documents "
                       f"and kept the fact as often ({m.recall:.0%})")
    choice = max(fine)[1] if fine else "float32"
    return choice, "; ".join(why) if why else "only float32 was measured"


@dataclass
class Calibration:
    """One side-by-side measurement of the scorer in each dtype on this CPU."""

    machine: dict
    model: str
    tokens: int
    segments: int
    k: int
    documents: int
    measured: dict  # dtype name -> Measured, as a dict
    choice: str
    why: str

    def describe(self) -> str:
        m = self.machine
        base = self.measured["float32"]["tokens_per_second"]
        lines = [
            f"CPU: {m['cpu']} ({m['capability']}; native bfloat16: {'yes' if m['native_bf16'] else 'no'}), torch {m['torch']}",
            f"scoring {self.tokens:,} tokens in {self.segments} segments with {self.model}; "
            f"agreement and recall on {self.documents} documents (the {self.k} best segments):",
        ]
        for name, r in self.measured.items():
            lines.append(f"  {name + ':':9} {r['tokens_per_second']:7,.0f} tokens/s ({r['tokens_per_second'] / base:.2f}x), "
                         f"same best segments as float32 on {r['agreement']:.0%}, fact kept on {r['recall']:.0%}")
        lines.append(f"choice for dtype='auto' on this CPU: {self.choice} ({self.why})")
        return "\n".join(lines)


def recorded_cpu_dtype(path: str | os.PathLike | None = None) -> str | None:
    """The recorded choice's name (``float32``, ``bfloat16`` or ``int8``) when it was measured on
    this CPU with this torch (and, for bfloat16, the CPU still has native bfloat16); None when
    there is none that applies."""
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
    if any(machine.get(key) != value for key, value in _machine()) or choice not in CHOICES:
        return None
    if choice == "bfloat16" and not native_bf16():
        return None
    return choice


def record_path(path=None) -> Path:
    """Where the choice is recorded: ``<cache>/cpu-dtype.json`` unless ``path`` says otherwise."""
    return Path(path) if path is not None else cache_dir() / FILE_NAME
