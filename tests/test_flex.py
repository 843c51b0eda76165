"""The flex_attention backend (``backend="flex"``) against the dense oracle of test_attention.py,
on the same grid as the other backends, for all seven model families.

On CPU flex runs eagerly with the very block masks (built from the policy's predicates) that a
GPU compiles, so these tests verify the GPU path's mask logic on machines without a GPU.
Prefill past the window, token-by-token decode, chunked prefill, left padding in a batch of
three; every tiny model has grouped-query attention (4 query heads, 2 key heads).
"""

from __future__ import annotations

import pytest
import torch

from entropy_retriever import InputError
from entropy_retriever.attention import extend_context
from entropy_retriever.attention.cache import make_cache
from entropy_retriever.attention.flex import FlexEngine, flex_available

from .test_attention import FAMILIES, POLICIES, _positions, build, ids, left_padded, oracle_logits

pytestmark = pytest.mark.skipif(not flex_available(), reason="this torch has no flex_attention with auxiliary outputs")
TOL = 1e-4


def flex(model, policy):
    return extend_context(model, policy, backend="flex")


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("policy", POLICIES)
def test_flex_prefill_past_the_window_equals_the_oracle(family, policy):
    model = build(family)
    x = ids(1, 40)
    expected = oracle_logits(model, policy, x)
    with torch.no_grad(), flex(model, policy):
        got = model(x).logits
    assert (got - expected).abs().max().item() <= TOL


@pytest.mark.slow  # eager flex on CPU builds full score matrices: the whole grid takes a minute
@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("policy", POLICIES)
def test_flex_decode_and_chunked_prefill_equal_the_oracle(family, policy):
    model = build(family)
    x = ids(1, 30)
    expected = oracle_logits(model, policy, x)
    with torch.no_grad(), flex(model, policy):
        out = model(x[:, :16], past_key_values=make_cache(model, policy), use_cache=True)
        steps = [out.logits[:, -1]]
        for t in range(16, 30):  # one token at a time
            out = model(x[:, t : t + 1], past_key_values=out.past_key_values, use_cache=True)
            steps.append(out.logits[:, -1])
        first = model(x[:, :13], past_key_values=make_cache(model, policy), use_cache=True)
        second = model(x[:, 13:], past_key_values=first.past_key_values, use_cache=True)
    assert (torch.stack(steps, dim=1) - expected[:, 15:30]).abs().max().item() <= TOL
    assert (torch.cat([first.logits, second.logits], dim=1) - expected).abs().max().item() <= TOL


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("policy", POLICIES)
def test_flex_left_padded_batch_equals_the_oracle(family, policy):
    model = build(family)
    lengths = [36, 25, 14]
    x, mask = left_padded(lengths)
    expected = oracle_logits(model, policy, x, mask)
    with torch.no_grad(), flex(model, policy):
        got = model(input_ids=x, attention_mask=mask, position_ids=_positions(mask)).logits
    for row, n in enumerate(lengths):
        assert (got[row, 36 - n :] - expected[row, 36 - n :]).abs().max().item() <= TOL, row


@pytest.mark.parametrize("policy", POLICIES)
def test_flex_engine_equals_the_two_branch_engine_on_random_positions(policy):
    """Engine against engine on a bounded-cache layout (slots that are not positions) and GQA."""
    from entropy_retriever.attention.backends import attend_math
    from entropy_retriever.attention.engine import TwoBranchEngine

    torch.manual_seed(3)
    b, h, hkv, lq, lk, d = 2, 4, 2, 5, 23, 16
    q, k, v = torch.randn(b, h, lq, d), torch.randn(b, hkv, lk, d), torch.randn(b, hkv, lk, d)
    kpos = torch.arange(lk).unsqueeze(0).expand(b, lk).clone()
    kpos[1] -= 4  # row 1: four left pad slots
    qpos = kpos[:, -lq:]
    valid = kpos >= 0
    inv_freq = 1.0 / (10000 ** (torch.arange(0, d, 2).float() / d))
    want = TwoBranchEngine(policy, attend_math)(q, k, v, qpos, kpos, valid, d ** -0.5, inv_freq)
    got = FlexEngine(policy)(q, k, v, qpos, kpos, valid, d ** -0.5, inv_freq)
    assert (got - want).abs().max().item() <= 1e-5


def test_an_unknown_backend_is_refused_with_the_names_there_are():
    model = build("llama")
    with pytest.raises(InputError, match="'flex'"):
        with extend_context(model, POLICIES[0].values[0], backend="nope"):
            pass


def test_auto_on_cuda_follows_the_gpu_benchmark_s_measurement(tmp_path, monkeypatch):
    """The choice file `python -m benchmarks gpu` writes decides backend="auto" on a GPU of that name."""
    import json

    from entropy_retriever.attention import registry

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H100 80GB HBM3")
    path = tmp_path / "attention-backend.json"
    gpu = torch.device("cuda", 0)
    assert registry.measured_backend(gpu, path) == "cuda"  # nothing measured: the efficient SDPA kernel
    path.write_text(json.dumps({"NVIDIA H100 80GB HBM3": {"backend": "flex"}, "Other GPU": {"backend": "cuda"}}))
    assert registry.measured_backend(gpu, path) == "flex"
    path.write_text("not json")
    assert registry.measured_backend(gpu, path) == "cuda"
    assert registry.measured_backend(torch.device("cpu"), path) == "auto"


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
