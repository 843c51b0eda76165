"""The documentation site builds strictly: no broken link, reference or page left out of the nav."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_mkdocs_builds_strictly(tmp_path):
    mkdocs = shutil.which("mkdocs", path=str(Path(sys.executable).parent))
    if mkdocs is None:
        pytest.fail("mkdocs is not installed: `make install` installs the [docs] extra")
    out = subprocess.run([mkdocs, "build", "--strict", "--site-dir", str(tmp_path / "site")], cwd=ROOT,
                         capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"}, timeout=600)
    assert out.returncode == 0, out.stderr[-4000:]
    reference = (tmp_path / "site" / "reference" / "index.html").read_text(encoding="utf-8")
    for name in ("LongContextReader", "SelectionConfig", "CertaintyReranker", "SelfExtend", "quantize_int8", "shortlist"):
        assert name in reference, name  # the API reference is generated from the docstrings
    assert (tmp_path / "site" / "cookbook" / "01_quickstart" / "index.html").is_file()  # notebooks rendered


def test_the_readme_is_short_and_the_docs_say_nothing_of_how_they_were_made():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 200
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        text = page.read_text(encoding="utf-8").lower()
        for word in ("session", "this round", "the plan assumed", "whatever the plan"):
            assert word not in text, (page.name, word)
