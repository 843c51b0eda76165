"""SelfExtend / LM-Infinite against plain SDPA: prefill, decode, peak memory."""

from __future__ import annotations

import sys

from benchmarks.common import save

HELP = "SelfExtend / LM-Infinite vs plain SDPA: prefill, decode, memory"


def add_arguments(p) -> None:
    p.add_argument("--lengths", type=int, nargs="+", default=[8192, 16384])
    p.add_argument("--lmi-length", type=int, default=32768)
    p.add_argument("--shape", default="smollm2", choices=["smollm2", "llama2-7b"])
    p.add_argument("--repeats", type=int, default=3)


def run(args) -> None:
    from benchmarks.attention_speed import run

    rows, table = run(lengths=tuple(args.lengths), lmi_length=args.lmi_length, shape=args.shape, repeats=args.repeats)
    save("attention-speed", vars(args) | {"command": " ".join(sys.argv)}, rows, table)
