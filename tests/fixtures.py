"""The one fixtures plugin of the core's and the integration packages' tests (pyproject.toml loads it
with ``-p tests.fixtures``): the real embedded model, tiny randomly initialised models for
mechanics, and shared helpers.

Not shipped (it lives beside the tests). A small needle scenario where a weak lexical retriever ranks the
needle last, a deterministic offline bag-of-words vector for that retriever, and a helper
that measures whether an event loop kept running while an awaited call worked.
"""

from __future__ import annotations

import asyncio
import math
import re
from typing import Awaitable, TypeVar

import pytest
import torch

from entropy_retriever.models import load_model

T = TypeVar("T")

NEEDLE_DOC = (
    "The observatory on the hill was built in 1902 by the astronomer Clara Weiss. Its great telescope, "
    "restored in 1987, is still used by students on clear nights. The building has a library, a small "
    "museum and an archive in the cellar. The archive door code is 58213; only the night curator knows it. "
    "Tours run on Saturdays."
)
DOCS = [
    "What is a postal code? A postal code is a series of letters or digits appended to an address.",
    "The archive of the city library holds old maps, letters and photographs from the last century.",
    NEEDLE_DOC,
    "What is a door? A door is a hinged barrier that closes an opening in a wall.",
    "Museum opening hours are from nine to five. What is the price of a ticket? It is eight euros.",
]
QUESTION = "What is the archive door code?"
ANSWER = "58213"


def bag_of_words(text: str, dim: int = 512) -> list[float]:
    """A unit vector of hashed word counts: a real, weak, lexical retriever's embedding."""
    v = [0.0] * dim
    for word in re.findall(r"[a-z0-9]+", text.lower()):
        v[sum(map(ord, word)) * 7919 % dim] += 1
    norm = math.sqrt(sum(x * x for x in v)) or 1.0
    return [x / norm for x in v]


async def ticks_during(awaitable: Awaitable[T], period: float = 0.005) -> tuple[T, int]:
    """Await ``awaitable`` while a heartbeat task counts how often the loop let it run."""
    ticks = 0
    stop = asyncio.Event()

    async def beat() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(period)

    task = asyncio.create_task(beat())
    try:
        result = await awaitable
    finally:
        stop.set()
        await task
    return result, ticks


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


@pytest.fixture()
def fresh_warnings():
    """transformers says some things once per process: forget that they were said, so that a test
    sees them even when an earlier test triggered them first."""
    import logging

    import transformers  # noqa: F401  (adds Logger.warning_once)

    logging.Logger.warning_once.cache_clear()
    yield


# ------------------------------------------------------------------ test tiers
# Test tiers, for every test folder (core and both integrations).
#
# ``make test`` runs everything, as CI does. ``make test-fast`` (``pytest -m "not slow"``) leaves
# out every test that runs the real embedded model: a test is slow when it uses the ``embedded``
# fixture or is marked ``@pytest.mark.slow``. The fast tier guards itself: loading the real model
# there is an error that names the test, so a test cannot slip into the fast tier by building a
# default component (which loads the shared model) without saying so.
#


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "embedded" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _fast_tier_loads_no_model(request, monkeypatch):
    markexpr = request.config.getoption("markexpr", "") or ""
    if "not slow" not in markexpr.replace("  ", " "):
        yield
        return
    import entropy_retriever.models as models

    real = models._load

    def guarded(source, *args):
        from pathlib import Path

        if Path(str(source)).name == models.EMBEDDED_MODEL:
            raise AssertionError(
                f"{request.node.nodeid} loads the real embedded model in the fast tier: "
                "use the tiny models of tests/fixtures.py, or mark it @pytest.mark.slow"
            )
        return real(source, *args)

    monkeypatch.setattr(models, "_load", guarded)
    yield
