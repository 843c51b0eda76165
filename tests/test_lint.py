"""ruff and mypy are clean on the package and both framework packages (their settings: pyproject.toml)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHECKED = ["entropy_retriever", "integrations/langchain/langchain_entropy_retriever", "integrations/llama-index/llama_index"]


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail(f"{name} is not installed: `make install` installs the [test] extra")
    return found


def test_ruff_is_clean():
    out = subprocess.run([_tool("ruff"), "check", *CHECKED], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]


def test_mypy_is_clean():
    out = subprocess.run([_tool("mypy"), *CHECKED], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
