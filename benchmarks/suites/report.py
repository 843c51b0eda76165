"""Rewrite the results page's generated section (docs/results.md) from bench-results/."""

from __future__ import annotations

from pathlib import Path

from benchmarks.common import RESULTS

HELP = "rewrite the results page (docs/results.md) from bench-results/"


def add_arguments(p) -> None:
    p.add_argument("--page", "--readme", dest="readme", default="docs/results.md", help="the page to rewrite (default docs/results.md)")
    p.add_argument("--images", default="docs/results", help="where the plots are copied (default docs/results)")
    p.add_argument("--only", nargs="+", default=None, help="rewrite these suites' parts only; keep the others as they are")


def run(args) -> None:
    from benchmarks.report import rewrite_readme

    readme = Path(args.readme).resolve()
    rewrite_readme(readme, RESULTS.resolve(), Path(args.images).resolve(), only=args.only)
