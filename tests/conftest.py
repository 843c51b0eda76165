"""Shared fixtures: the real embedded model, and tiny randomly initialised models for mechanics."""

from __future__ import annotations

import pytest
import torch

from entropy_retriever.models import load_model


@pytest.fixture(scope="session")
def embedded():
    """The embedded SmolLM2-135M-Instruct (real weights), loaded once per test run."""
    return load_model(device="cpu")


@pytest.fixture(scope="session")
def tokenizer():
    """The embedded model's tokenizer alone (no weights are loaded): for the fast tier."""
    from transformers import AutoTokenizer

    from entropy_retriever.models import embedded_model_path

    return AutoTokenizer.from_pretrained(embedded_model_path())


def tiny_llama(vocab_size: int = 49152, window: int = 512, seed: int = 0):
    """A 2-layer Llama with random weights: fast, real transformers code, real RoPE."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=window,
        attn_implementation="sdpa",
    )
    return LlamaForCausalLM(config).eval()


@pytest.fixture(scope="session")
def tiny(tokenizer):
    return tiny_llama(vocab_size=len(tokenizer))


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory, tiny, tokenizer):
    """The tiny model saved as a model folder, for what loads by path (the command line, torchrun)."""
    folder = tmp_path_factory.mktemp("tiny-model")
    tiny.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
