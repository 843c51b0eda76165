"""What is particular to the flex_attention backend: its engine against the two-branch engine on
random positions, the backend's name check, and how ``backend="auto"`` chooses it on a GPU.

The oracle tests of test_attention.py take the backend as a parameter, so flex runs their whole
grid too (prefill past the window, decode, chunked prefill, left padding, seven families). On
CPU flex runs eagerly with the very block masks a GPU compiles: the GPU path's mask logic is
verified on machines without a GPU.
"""

from __future__ import annotations

import pytest
import torch

from entropy_retriever import InputError
from entropy_retriever.attention import extend_context
from entropy_retriever.attention.flex import FlexEngine, flex_available

from .test_attention import POLICIES, build

pytestmark = pytest.mark.skipif(not flex_available(), reason="this torch has no flex_attention with auxiliary outputs")
TOL = 1e-4


def flex(model, policy):
    return extend_context(model, policy, backend="flex")


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
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)


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
