from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from entropy_retriever import ContextTooLongError, InputError, LMInfinite, LongContextLM, LongContextReader, SelfExtend
from tests.fixtures import tiny_llama


@pytest.fixture()
def tiny_lm(tokenizer):
    model = tiny_llama(vocab_size=len(tokenizer), window=512)
    yield model
    assert model.config._attn_implementation == "sdpa"  # no LM left its policy switched on


def test_context_window_is_the_policy_reach(tiny_lm, tokenizer):
    assert LongContextLM(tiny_lm, tokenizer).context_window == 512
    lm = LongContextLM(tiny_lm, tokenizer, SelfExtend(group_size=4, window=128))
    assert lm.context_window == (512 - 128) * 4 + 128


def test_generate_stream_and_chat_agree(tiny_lm, tokenizer):
    lm = LongContextLM(tiny_lm, tokenizer, SelfExtend(4, 128), max_new_tokens=12)
    prompt = "The quick brown fox " * 60  # ~300 tokens, beyond the 128 window
    whole = lm.generate(prompt)
    assert whole.new_tokens > 0
    assert "".join(lm.stream(prompt)).strip() == whole.text
    messages = [{"role": "user", "content": prompt}]
    assert "".join(lm.stream_chat(messages)).strip() == lm.chat(messages).text


def test_prompt_longer_than_the_reach_is_refused(tiny_lm, tokenizer):
    lm = LongContextLM(tiny_lm, tokenizer, max_new_tokens=4)
    with pytest.raises(ContextTooLongError, match="SelfExtend"):
        lm.generate("word " * 600)
    with pytest.raises(InputError, match="at least one message"):
        lm.chat([])


def test_bounded_cache_is_used_for_lminfinite(tiny_lm, tokenizer):
    bounded = LongContextLM(tiny_lm, tokenizer, LMInfinite(n_local=64, n_global=4), max_new_tokens=8)
    out_bounded = bounded.generate("one two three four " * 40)
    full = LongContextLM(tiny_lm, tokenizer, LMInfinite(n_local=64, n_global=4, bounded_cache=False), max_new_tokens=8)
    assert full.generate("one two three four " * 40).text == out_bounded.text


def test_streaming_surfaces_errors_from_the_worker(tiny_lm, tokenizer):
    lm = LongContextLM(tiny_lm, tokenizer, max_new_tokens=4)
    ids = lm.encode("hello")
    bad = ids + [len(tokenizer) + 10_000]  # an id beyond the vocabulary: the embedding lookup fails
    with pytest.raises((IndexError, RuntimeError)):
        list(lm.stream_ids(bad))


def test_reader_reads_a_key_context_beyond_the_window_with_selfextend(tiny_lm, tokenizer):

    text = "".join(f"Sentence number {i} talks about the weather today. " for i in range(400))
    reader = LongContextReader(tiny_lm, tokenizer, token_budget=900, segment_tokens=128, max_new_tokens=4, progress=False,
                               answer_focus=None)  # the whole key context, past the window
    answer = reader.answer(text, "What is sentence 7 about?")
    assert answer.prompt_tokens > 512  # longer than the tiny model's window
    assert tiny_lm.config._attn_implementation == "sdpa"  # SelfExtend was switched off again
    strict = LongContextReader(tiny_lm, tokenizer, token_budget=900, segment_tokens=128, extend=None, progress=False,
                               answer_focus=None)
    with pytest.raises(ContextTooLongError, match="SelfExtend"):
        strict.answer(text, "What is sentence 7 about?")


def _count_forwards(model):
    calls = []
    handle = model.register_forward_hook(lambda *_: calls.append(1))
    return calls, handle


def test_closing_a_stream_early_stops_generation(tokenizer):
    model = tiny_llama(vocab_size=len(tokenizer), window=4096)
    lm = LongContextLM(model, tokenizer, max_new_tokens=3000)
    calls, handle = _count_forwards(model)
    try:
        stream = lm.stream("The quick brown fox")
        pieces = [next(stream), next(stream)]
        stream.close()  # returns once the worker has stopped
        stopped_at = len(calls)
        assert pieces and stopped_at < 100  # not the 3,000 steps asked for
        assert len(calls) == stopped_at  # nothing runs after close()
    finally:
        handle.remove()


async def test_breaking_out_of_an_async_stream_stops_generation(tokenizer):

    from entropy_retriever.aio import iterate_in_thread

    model = tiny_llama(vocab_size=len(tokenizer), window=4096)
    lm = LongContextLM(model, tokenizer, max_new_tokens=3000)
    calls, handle = _count_forwards(model)
    try:
        pieces = []
        stream = iterate_in_thread(lambda: lm.stream("The quick brown fox"))
        async for piece in stream:
            pieces.append(piece)
            if len(pieces) == 2:
                break
        await stream.aclose()
        for _ in range(200):  # the worker notices at its next piece, then closes the stream
            before = len(calls)
            await asyncio.sleep(0.05)
            if len(calls) == before:
                break
        assert len(calls) < 200  # stopped long before the 3,000 steps asked for
    finally:
        handle.remove()


def test_lms_with_different_policies_share_one_model(tokenizer):
    """Two policies and none, on one model: alternating, then from threads, each gives what it gives alone."""
    import copy

    import torch

    model = tiny_llama(vocab_size=len(tokenizer), window=512)
    with torch.no_grad():  # sharper attention and logits than the random init, so that positions change the output
        for layer in model.model.layers:
            layer.self_attn.q_proj.weight.mul_(30)
            layer.mlp.down_proj.weight.mul_(5)
        model.lm_head.weight.mul_(10)
    policies = {"selfextend": SelfExtend(8, 16), "lminfinite": LMInfinite(n_local=16, n_global=2), "none": None}
    prompt = "The quick brown fox jumps over the lazy dog. " * 30  # ~300 tokens: past both near windows
    alone = {}
    for name, policy in policies.items():
        private = copy.deepcopy(model)
        alone[name] = LongContextLM(private, tokenizer, policy, max_new_tokens=10).generate(prompt).text
    assert len(set(alone.values())) == 3  # the three really differ, so a mix-up would show
    shared = {name: LongContextLM(model, tokenizer, policy, max_new_tokens=10) for name, policy in policies.items()}
    for name in ["selfextend", "none", "lminfinite", "none", "selfextend", "lminfinite"]:
        assert shared[name].generate(prompt).text == alone[name], name
    jobs = [name for name in policies for _ in range(3)]
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        results = list(pool.map(lambda name: (name, shared[name].generate(prompt).text), jobs))
    assert all(text == alone[name] for name, text in results)
    streamed = "".join(shared["selfextend"].stream(prompt)).strip()
    assert streamed == alone["selfextend"]
    assert model.config._attn_implementation == "sdpa"


def test_an_lm_without_policy_runs_plain_inside_another_policy_block(tiny_lm, tokenizer):
    from entropy_retriever import extend_context

    plain = LongContextLM(tiny_lm, tokenizer, max_new_tokens=6)
    prompt = "one two three four " * 40
    expected = plain.generate(prompt).text
    with extend_context(tiny_lm, LMInfinite(n_local=32, n_global=2)):
        assert plain.generate(prompt).text == expected


def test_max_new_tokens_must_be_positive(tiny_lm, tokenizer):
    lm = LongContextLM(tiny_lm, tokenizer, max_new_tokens=4)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(InputError, match="max_new_tokens"):
            lm.generate("hello", max_new_tokens=bad)
    with pytest.raises(InputError, match="max_new_tokens"):
        LongContextLM(tiny_lm, tokenizer, max_new_tokens=0)


def test_generation_reports_the_cache_it_held_and_lminfinite_keeps_it_flat(tiny_lm, tokenizer):
    bounded = LongContextLM(tiny_lm, tokenizer, LMInfinite(n_local=64, n_global=4), max_new_tokens=4)
    full = LongContextLM(tiny_lm, tokenizer, LMInfinite(n_local=64, n_global=4, bounded_cache=False), max_new_tokens=4)
    sizes = {n: (bounded.generate("word " * n).cache_bytes, full.generate("word " * n).cache_bytes) for n in (100, 200, 400)}
    assert sizes[100][0] == sizes[200][0] == sizes[400][0] > 0  # 4 + 64 keys a layer, whatever the length
    assert sizes[100][1] < sizes[200][1] < sizes[400][1]  # every key a layer
    assert sizes[400][1] / sizes[400][0] > 4


def _stop_after(lm, prompt: str, k: int) -> str:
    """A stop string completed by the k-th generated token (the text tokens k-1 and k add)."""
    ids = lm.encode(prompt)
    with torch.inference_mode():
        out = lm.model.generate(input_ids=torch.tensor([ids]), max_new_tokens=k + 1, do_sample=False, pad_token_id=0)
    new = out[0, len(ids):]
    before = lm.tokenizer.decode(new[: k - 2], skip_special_tokens=True)
    upto = lm.tokenizer.decode(new[:k], skip_special_tokens=True)
    stop = upto[len(before):]
    assert stop.strip() and stop not in before
    return stop


def test_a_stop_string_ends_generation_at_once(tiny, tokenizer):
    """Forward passes are counted: after the token that completes a stop string, none is run."""
    lm = LongContextLM(tiny, tokenizer, max_new_tokens=40)
    prompt = "The weather report for the harbour says"
    stop = _stop_after(lm, prompt, 12)
    passes = []
    hook = tiny.register_forward_hook(lambda *args: passes.append(1))
    try:
        plain = lm.generate(prompt)
        n_plain = len(passes)
        passes.clear()
        stopped = lm.generate(prompt, stop=[stop, "never-appears-anywhere"])
        n_stopped = len(passes)
        passes.clear()
        streamed = "".join(lm.stream(prompt, stop=stop))
        n_streamed = len(passes)
    finally:
        hook.remove()
    assert n_plain == 40 and plain.new_tokens == 40
    assert stopped.new_tokens <= 12 and n_stopped <= 12  # stopped where the stop string was completed
    assert stop not in stopped.text and plain.text.startswith(stopped.text.strip())
    assert streamed.strip() == stopped.text and n_streamed <= 12


def test_stop_strings_stop_both_frameworks_chat_models(tiny, tokenizer):
    from llama_index.core.base.llms.types import ChatMessage

    from langchain_entropy_retriever import ChatEntropyRetriever
    from llama_index.llms.entropy_retriever import LongContextLLM

    lm = LongContextLM(tiny, tokenizer, max_new_tokens=30)
    messages = [{"role": "user", "content": "Tell me about the harbour."}]
    ids = lm.chat_prompt(messages)
    with torch.inference_mode():
        out = tiny.generate(input_ids=torch.tensor([ids]), max_new_tokens=30, do_sample=False, pad_token_id=0)
    new = out[0, len(ids):]
    stop = tokenizer.decode(new[:10], skip_special_tokens=True)[len(tokenizer.decode(new[:8], skip_special_tokens=True)):]
    assert stop.strip()
    passes = []
    hook = tiny.register_forward_hook(lambda *args: passes.append(1))
    try:
        lc = ChatEntropyRetriever(lm=lm, max_tokens=30).invoke("Tell me about the harbour.", stop=[stop])
        n_lc = len(passes)
        passes.clear()
        li = LongContextLLM(lm=lm, max_new_tokens=30).chat([ChatMessage(role="user", content="Tell me about the harbour.")], stop=[stop])
        n_li = len(passes)
        passes.clear()
        lc_stream = "".join(c.content for c in ChatEntropyRetriever(lm=lm, max_tokens=30).stream("Tell me about the harbour.", stop=[stop]))
        n_lc_stream = len(passes)
    finally:
        hook.remove()
    assert n_lc <= 10 and n_li <= 10 and n_lc_stream <= 10
    assert stop not in lc.content and stop not in li.message.content and stop not in lc_stream
    assert lc.content == li.message.content == lc_stream.strip()


def test_selfextend_generation_past_the_window_warns_nothing(tiny, tokenizer, fresh_warnings):
    """transformers' "friendly reminder" about passing max_position_embeddings is dropped."""
    import logging

    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    handler = Keep()
    logging.getLogger("transformers").addHandler(handler)
    try:
        lm = LongContextLM(tiny, tokenizer, SelfExtend(group_size=4, window=128), max_new_tokens=4)
        assert lm.generate("word " * 700).prompt_tokens > 512
    finally:
        logging.getLogger("transformers").removeHandler(handler)
    assert not [m for m in records if "friendly reminder" in m], records
