"""Rewrite the README's results section from bench-results/."""

from __future__ import annotations

from pathlib import Path

from benchmarks.common import RESULTS

HELP = "rewrite the README's results section from bench-results/"


def add_arguments(p) -> None:
    p.add_argument("--readme", default="README.md")
    p.add_argument("--only", nargs="+", default=None, help="rewrite these suites' parts only; keep the others as they are")


def run(args) -> None:
    from benchmarks.report import rewrite_readme

    readme = Path(args.readme).resolve()
    rewrite_readme(readme, RESULTS.resolve(), readme.parent / "docs" / "results", only=args.only)
