"""The GPU benchmark's command (``python -m benchmarks gpu``), run on CPU in its tiny mode."""

from __future__ import annotations

import pytest


@pytest.mark.slow
def test_the_gpu_benchmark_runs_on_cpu_in_tiny_mode(tmp_path, monkeypatch, capsys):
    """`python -m benchmarks gpu --tiny`: the GPU command's code, on a tiny model on CPU."""
    import json

    from benchmarks.__main__ import main as bench_main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ENTROPY_RETRIEVER_CACHE", str(tmp_path / "cache"))
    bench_main(["gpu", "--tiny", "--lengths", "200", "--repeats", "1", "--decode-steps", "2", "--score-tokens", "600"])
    data = json.loads((tmp_path / "bench-results" / "gpu.json").read_text())
    assert all(c["ok"] for c in data["checks"]) and {c["check"] for c in data["checks"]} >= {"kernel flex", "kernel math"}
    methods = {r["method"] for r in data["rows"]}
    assert methods == {"sdpa", "selfextend/auto", "selfextend/flex", "lminfinite/auto", "lminfinite/flex"}
    assert all(r["prefill_s"] > 0 and r["prefill_ratio"] > 0 for r in data["rows"])
    assert data["throughput"]["tokens_per_s"] > 0 and data["choice"]["backend"] in ("flex", "cuda")
    assert "| check |" in capsys.readouterr().out
    assert not (tmp_path / "cache" / "attention-backend.json").exists()  # only a real GPU run records a choice
