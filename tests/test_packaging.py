"""What the wheel ships: the package, not the benchmarks or the test fixtures."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_wheel_ships_the_package_only(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    wheel = next(tmp_path.glob("entropy_retriever-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    code = [n for n in names if n.endswith(".py")]
    assert "entropy_retriever/__init__.py" in code and "entropy_retriever/attention/registry.py" in code
    assert all(n.startswith("entropy_retriever/") for n in code), sorted(set(code) - {n for n in code if n.startswith("entropy_retriever/")})
    assert not any("bench" in n or "testing" in n or n.startswith("tests/") for n in names)
