"""What every suite shares: where results go, how they are saved, progress bars, option parsers."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

RESULTS = Path("bench-results")


def environment() -> dict:
    import transformers

    return {
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def save(suite: str, settings: dict, rows: list, table: str, extra: dict | None = None) -> None:
    RESULTS.mkdir(exist_ok=True)
    settings = {"command": "python -m benchmarks " + " ".join(sys.argv[1:])} | settings  # a caller's own command wins
    payload = {"suite": suite, "environment": environment(), "settings": settings, "rows": rows, "table": table}
    payload |= extra or {}
    (RESULTS / f"{suite}.json").write_text(json.dumps(payload, indent=1))
    (RESULTS / f"{suite}.md").write_text(table + "\n")
    print(table)
    print(f"\n(saved {RESULTS / suite}.json and .md)")


def progress(iterable, **kwargs):
    from tqdm.auto import tqdm

    return tqdm(iterable, disable=not sys.stderr.isatty(), **kwargs)


def count_option(value: str):
    name, _, count = value.rpartition("=")
    if not count.isdigit() or int(count) < 1:
        raise argparse.ArgumentTypeError(f"{value!r}: give a positive count, or NAME=COUNT for one data set")
    return (name or None, int(count))


def check_counts(n, datasets) -> dict:
    """``--n`` as ``{name or None: count}``, refusing a NAME=COUNT for a data set that is not run
    (it would be ignored, and the run would not be the one asked for)."""
    counts = {name: c for name, c in n}
    stray = sorted(name for name in counts if name is not None and name not in datasets)
    if stray:
        raise SystemExit(f"--n names {', '.join(stray)}, which this run does not read (its data sets: "
                         f"{', '.join(datasets)}): drop the count or add the set to --datasets")
    return counts


def examples_of(ev, root, tokenizer, datasets, n, window_tokens, seed) -> list:
    """The examples of each data set, ``n`` as ``--n`` gives it: ``[(None, default), (name, count), ...]``."""
    counts = check_counts(n, datasets)
    default = counts.pop(None, 8)
    return [e for d in datasets for e in ev.load_examples(root, tokenizer, [d], counts.get(d, default), window_tokens, seed)]


def method_settings(args):
    from benchmarks.methods import MethodSettings

    return MethodSettings(args.group_size, args.window, args.n_local, args.n_global, args.max_new_tokens)


def grid_table(rows, methods, lengths, depths, labels, value) -> str:
    lines = ["| method | " + " | ".join(f"{n / 1000:g}k" for n in lengths) + " | all |", "|---|" + "---|" * (len(lengths) + 1)]
    for method in methods:
        cells = []
        for n in [*lengths, None]:
            mine = [r for r in rows if r["method"] == method and (n is None or r["target"] == n)]
            cells.append(value(mine) if mine else "-")
        lines.append(f"| {labels[method]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def add_method_options(p, *, lengths: list[int], depths: list[float]) -> None:
    """The options of the suites that run bare, SelfExtend, LM-Infinite and the XL3M reader side by side."""
    from benchmarks.methods import METHODS

    p.add_argument("--lengths", type=int, nargs="+", default=lengths)
    p.add_argument("--depths", type=float, nargs="+", default=depths)
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    p.add_argument("--group-size", type=int, default=4)
    p.add_argument("--window", type=int, default=1024)
    p.add_argument("--n-local", type=int, default=4096)
    p.add_argument("--n-global", type=int, default=64)
    p.add_argument("--max-new-tokens", type=int, default=32)
    p.add_argument("--model", default=None)
