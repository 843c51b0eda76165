"""One model per (source, device, dtype) in a process, shared by every default component."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from entropy_retriever import CertaintyReranker, LongContextReader, Passage, load_model
from entropy_retriever.models import clear_model_cache
from tests.fixtures import tiny_llama


@pytest.fixture()
def own_tiny_folder(tmp_path, tokenizer):
    """A model folder of this test's own (the shared one is loaded and cached by other tests)."""
    model = tiny_llama(vocab_size=len(tokenizer))
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    return tmp_path


def test_load_model_returns_one_shared_instance_even_from_threads(own_tiny_folder, monkeypatch):
    import entropy_retriever.models as models

    loads = []
    real = models._load
    monkeypatch.setattr(models, "_load", lambda *a: loads.append(a) or real(*a))  # counts real loads
    got = []
    start = threading.Barrier(6)

    def worker():
        start.wait()
        got.append(load_model(own_tiny_folder, device="cpu"))

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(loads) == 1 and all(g.model is got[0].model and g.tokenizer is got[0].tokenizer for g in got)
    assert load_model(str(own_tiny_folder) + "/", device="cpu").model is got[0].model  # the same folder, spelled otherwise
    other = load_model(own_tiny_folder, device="cpu", dtype="bfloat16")
    assert other.model is not got[0].model and next(other.model.parameters()).dtype.is_floating_point
    private = load_model(own_tiny_folder, device="cpu", shared=False)
    assert private.model is not got[0].model and len(loads) == 3
    assert clear_model_cache() >= 2
    assert load_model(own_tiny_folder, device="cpu").model is not got[0].model


SCRIPT = textwrap.dedent(
    """
    import gc, json, sys, tempfile
    import torch, transformers
    from transformers.models.llama import modeling_llama  # the model's code, imported in both runs
    import entropy_retriever
    from llama_index.llms.entropy_retriever import LongContextLLM
    from langchain_entropy_retriever import ChatEntropyRetriever

    def rss():
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) * 1024

    gc.collect()
    base = rss()
    if sys.argv[1] == "one":
        models = [entropy_retriever.load_model().model]
    else:
        reader = entropy_retriever.LongContextReader()
        reranker = entropy_retriever.CertaintyReranker()
        tool = entropy_retriever.LongFileQA(roots=[tempfile.gettempdir()])
        llm = LongContextLLM()
        chat = ChatEntropyRetriever()
        models = [reader.scorer.model, reader.answer_lm.model, reranker.scorer.model, tool.reader.scorer.model,
                  llm.lm.model, chat.lm.model]
    with torch.inference_mode():  # run each component's model once: weights are memory-mapped until touched
        for m in models:
            m(torch.tensor([[1, 2, 3]]))
    gc.collect()
    print(json.dumps({"bytes": rss() - base, "distinct_models": len({id(m) for m in models})}))
    """
)


@pytest.mark.slow
def test_five_default_components_take_the_memory_of_one_model():
    def measure(mode):
        out = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr[-2000:]
        return json.loads(out.stdout.strip().splitlines()[-1])

    one, five = measure("one"), measure("five")
    assert five["distinct_models"] == 1
    ratio = five["bytes"] / one["bytes"]
    print(f"RSS growth: one model {one['bytes'] / 2**20:.0f} MiB, five components {five['bytes'] / 2**20:.0f} MiB, ratio {ratio:.2f}")
    assert one["bytes"] > 400 * 2**20  # the model really loaded and ran (538 MB of float32 weights)
    assert ratio <= 1.2


HARBOUR_LOG = "".join(
    f"Entry {i}. The harbour log notes calm water, {i % 7} boats and a crew of {i % 5 + 2}.\n"
    + ("The lighthouse keeper is named Ortega.\n" if i == 41 else "")
    for i in range(90)
)


HARBOUR_QUESTIONS = [f"How many boats were there on day {i}?" for i in range(8)] + [
    "Who keeps the lighthouse?", "What was the water like?", "How big was the crew?", "Which entry mentions Ortega?",
]


def test_32_concurrent_callers_on_one_reader_and_one_reranker_equal_sequential_calls(tiny, tokenizer):
    reader = LongContextReader(tiny, tokenizer, signals=("certainty", "bm25"), segment_tokens=48, top_k=2, progress=False)
    reranker = CertaintyReranker(tiny, tokenizer, signals=("certainty", "bm25"), top_n=3)
    passages = [Passage(line, "log", i) for i, line in enumerate(HARBOUR_LOG.splitlines()[:12])]
    text = "\n".join(HARBOUR_LOG.splitlines()[30:60])
    calls = [("select", HARBOUR_QUESTIONS[i % len(HARBOUR_QUESTIONS)]) if i % 2 else ("rerank", HARBOUR_QUESTIONS[i % len(HARBOUR_QUESTIONS)]) for i in range(32)]

    def run(call):
        kind, question = call
        if kind == "select":
            key = reader.select(text, question)
            return [(s.start, s.end, s.text) for s in key.spans], [s.score for s in key.segments]
        return [(p.index, p.score) for p in reranker.rerank(passages, question)]

    sequential = [run(call) for call in calls]
    assert len({repr(r) for r in sequential}) > 4  # the calls differ, so a mix-up would show

    with ThreadPoolExecutor(max_workers=32) as pool:
        threaded = list(pool.map(run, calls))
    assert threaded == sequential

    async def gathered():
        return await asyncio.gather(*(asyncio.to_thread(run, call) for call in calls))

    assert asyncio.run(gathered()) == sequential
